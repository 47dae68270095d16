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
    "function failing() g.time.sleep(0.01) error('after the sleep', 0) end\n");

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
  lua_close(L);
  return 0;
}
