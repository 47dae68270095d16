/*
** resume.c -- gr_resume: a coroutine that the host resumes yields to the
** host as with lua_resume, but when it blocks it becomes a goroutine and
** gr_resume returns GR_PARKED at once; gr_run then finishes it.
*/
#include <string.h>
#include <uv.h>

#include "ctest.h"

/* A new coroutine of L running the global function name. */
static lua_State *newco (lua_State *L, const char *name) {
  lua_State *co = lua_newthread(L);
  lua_setfield(L, LUA_REGISTRYINDEX, name);   /* anchors it */
  CHECK(lua_getglobal(co, name) == LUA_TFUNCTION);
  return co;
}

/* tryresume(): gr_resume from a goroutine, refused; returns its result. */
static int ltryresume (lua_State *L) {
  lua_State *co = lua_newthread(L);
  int nres;
  lua_getglobal(co, "print");
  lua_pushinteger(L, gr_resume(L, co, 0, &nres));
  return 1;
}

int main (void) {
  lua_State *L = ctest_newstate(), *co, *bad;
  uint64_t t0;
  int nres, r;
  ctest_run(L,
    "g = require 'goroutines'\n"
    "function job(x)\n"
    "  local a = coroutine.yield(x + 1)\n"  /* a yield of its own */
    "  g.time.sleep(0.5)\n"                  /* blocks: a goroutine now */
    "  print('woke with', a, g.id() > 1)\n"
    "end\n"
    "function failing() g.time.sleep(0.01) error('after the sleep', 0) end\n"
    "function ids()\n"
    "  local before = g.id()\n"
    "  coroutine.yield(before)\n"           /* a yield to the host */
    "  print('same id after a yield', g.id() == before, before > 1)\n"
    "  g.time.sleep(0.01)\n"
    "  print('same id after a park', g.id() == before)\n"
    "  g.chan():recv()\n"                   /* for ever: the report */
    "end\n");

  CHECK(gr_resume(NULL, NULL, 0, &nres) == GR_EINVAL);
  CHECK(gr_resume(L, L, 0, &nres) == GR_EINVAL);   /* the main thread */
  co = newco(L, "job");
  CHECK(gr_resume(L, co, 3, &nres) == GR_EINVAL);  /* no 3 arguments */
  {  /* a coroutine of another Lua state */
    lua_State *other = luaL_newstate(), *oco;
    CHECK(other != NULL);
    oco = lua_newthread(other);
    CHECK(gr_resume(L, oco, 0, &nres) == GR_EINVAL);
    lua_close(other);
  }

  lua_pushinteger(co, 41);
  CHECK(gr_resume(L, co, 1, &nres) == LUA_YIELD && nres == 1);
  printf("yielded %lld\n", (long long)lua_tointeger(co, -1));
  lua_pop(co, nres);

  lua_pushstring(co, "A");
  t0 = uv_hrtime();
  r = gr_resume(L, co, 1, &nres);
  printf("parked: %s, at once: %s\n", r == GR_PARKED ? "yes" : "no",
         uv_hrtime() - t0 < 400000000 ? "yes" : "no");
  CHECK(nres == 0);
  r = gr_resume(L, co, 0, &nres);                  /* the scheduler's now */
  printf("%d %s\n", r, lua_tostring(co, -1));
  lua_pop(co, 1);
  CHECK(gr_run(L, GR_RUN_DEFAULT) == GR_OK);        /* prints woke */
  CHECK(lua_status(co) == LUA_OK && lua_gettop(co) == 0);

  /* Its error is a goroutine's: gr_run returns it. */
  bad = newco(L, "failing");
  CHECK(gr_resume(L, bad, 0, NULL) == GR_PARKED);
  CHECK(gr_run(L, GR_RUN_DEFAULT) == GR_ERROR);
  printf("%.*s\n", (int)strcspn(lua_tostring(L, -1), "\n"),
         lua_tostring(L, -1));
  lua_pop(L, 1);

  /* Its id is given at its first gr_resume and kept: the same in g.id()
  ** before and after it blocks, and in the deadlock report. */
  co = newco(L, "ids");
  CHECK(gr_resume(L, co, 0, &nres) == LUA_YIELD && nres == 1);
  {
    char want[64];
    lua_Integer id = lua_tointeger(co, -1);
    lua_pop(co, 1);
    CHECK(gr_resume(L, co, 0, &nres) == GR_PARKED);
    CHECK(gr_run(L, GR_RUN_DEFAULT) == GR_ERROR);
    snprintf(want, sizeof(want), "goroutine %lld [chan receive]",
             (long long)id);
    printf("the report names it: %s\n",
           strstr(lua_tostring(L, -1), want) ? "yes" : "no");
    lua_pop(L, 1);
  }
  lua_close(L);

  /* From inside a goroutine: refused, as gr_run is. */
  L = ctest_newstate();
  lua_register(L, "tryresume", ltryresume);
  ctest_run(L, "g = require 'goroutines'\n"
               "g.go(function() print('from a goroutine', tryresume()) end)\n");
  CHECK(gr_run(L, GR_RUN_DEFAULT) == GR_OK);
  printf("GR_EINVAL is %d\n", GR_EINVAL);
  lua_close(L);
  return 0;
}
