/*
** run.c -- a host drives the scheduler: gr_go, gr_run in its three modes,
** gr_backend_fd and gr_backend_timeout, and their refusals.
*/
#include <poll.h>
#include <string.h>

#include "ctest.h"

/* Pushes the global function `name` of L. */
static void getfn (lua_State *L, const char *name) {
  CHECK(lua_getglobal(L, name) == LUA_TFUNCTION);
}

int main (void) {
  lua_State *L = ctest_newstate(), *bare = luaL_newstate();
  int calls, id, fd, ms, top, polled = 0;

  CHECK(gr_run(NULL, GR_RUN_NOWAIT) == GR_EINVAL);
  CHECK(gr_run(bare, GR_RUN_NOWAIT) == GR_EINVAL);
  CHECK(gr_run(L, (gr_runmode)42) == GR_EINVAL);
  CHECK(gr_backend_fd(bare) == GR_EINVAL);
  CHECK(gr_backend_timeout(NULL) == GR_EINVAL);
  CHECK(gr_go(bare, 0) == GR_EINVAL);
  lua_close(bare);
  top = lua_gettop(L);
  lua_pushinteger(L, 1);
  lua_pushinteger(L, 2);
  CHECK(gr_go(L, 1) == GR_EINVAL);     /* 1 is no function: both popped */
  CHECK(lua_gettop(L) == top);
  CHECK(gr_go(L, 3) == GR_EINVAL);     /* fewer values than that */

  ctest_run(L,
    "g = require 'goroutines'\n"
    "function pingpong(n, done)\n"
    "  local ping, pong = g.chan(), g.chan()\n"
    "  g.go(function() for i = 1, n do pong:send(ping:recv() + 1) end end)\n"
    "  local v = 0\n"
    "  for i = 1, n do ping:send(v) v = pong:recv() end\n"
    "  done.v = v\n"
    "end\n"
    "done = {}\n"
    "function sleeper(d) g.time.sleep(d) print('slept') end\n"
    "function stuck() g.chan():recv() end\n"
    "function boom() error('boom', 0) end\n"
    "function fromworker(out)\n"
    "  g.gomaxprocs(1)\n"
    "  local ch = g.chan()\n"
    "  g.parallel(function() require('goroutines').time.sleep(0.02) ch:send('late') end)\n"
    "  out.v = ch:recv()\n"
    "end\n");

  /* A frame loop: many round trips per GR_RUN_NOWAIT. */
  getfn(L, "pingpong");
  lua_pushinteger(L, 20000);
  lua_getglobal(L, "done");
  id = gr_go(L, 2);
  CHECK(id > 1 && lua_gettop(L) == top);
  for (calls = 0; calls < 100000; calls++) {
    CHECK(gr_run(L, GR_RUN_NOWAIT) == GR_OK);
    lua_getglobal(L, "done");
    lua_getfield(L, -1, "v");
    if (!lua_isnil(L, -1)) break;
    lua_pop(L, 2);
  }
  printf("pingpong: %lld\n", (long long)lua_tointeger(L, -1));
  lua_pop(L, 2);
  /* 20000 round trips take ~10 ms; one per call would be 20000 calls. */
  printf("under 2000 calls: %s\n", calls < 2000 ? "yes" : "no");

  /* GR_RUN_DEFAULT returns once the other side of the pingpong ended
  ** too; then nothing is left: the timeout is -1. */
  CHECK(gr_run(L, GR_RUN_DEFAULT) == GR_OK);
  CHECK(gr_backend_timeout(L) == -1);

  /* A timer: the timeout says when; GR_RUN_ONCE waits for it. */
  getfn(L, "sleeper");
  lua_pushnumber(L, 0.05);
  CHECK(gr_go(L, 1) > 0);
  CHECK(gr_backend_timeout(L) == 0);   /* ready to start */
  CHECK(gr_run(L, GR_RUN_NOWAIT) == GR_OK);
  ms = gr_backend_timeout(L);
  printf("timer pending: %s\n", ms > 0 && ms <= 50 ? "yes" : "no");
  CHECK(gr_run(L, GR_RUN_ONCE) == GR_OK);   /* prints slept */
  CHECK(gr_backend_timeout(L) == -1);

  /* A poll loop: a worker thread wakes a goroutine of this state through
  ** the backend fd. */
  fd = gr_backend_fd(L);
  CHECK(fd >= 0);
  getfn(L, "fromworker");
  lua_getglobal(L, "done");
  CHECK(gr_go(L, 1) > 0);
  for (calls = 0; calls < 1000; calls++) {
    struct pollfd p;
    CHECK(gr_run(L, GR_RUN_NOWAIT) == GR_OK);
    lua_getglobal(L, "done");
    lua_getfield(L, -1, "v");
    if (lua_type(L, -1) == LUA_TSTRING) break;
    lua_pop(L, 2);
    p.fd = fd;
    p.events = POLLIN;
    /* No timer here: -1 (only the fd brings work), or 0 when the pool
    ** asked this state to look at its mailbox. */
    ms = gr_backend_timeout(L);
    CHECK(ms == -1 || ms == 0);
    CHECK(poll(&p, 1, ms == 0 ? 0 : 30000) >= 0);
    polled += ms == -1;
  }
  printf("from the worker: %s\n", lua_tostring(L, -1));
  printf("waited in poll: %s\n", polled > 0 ? "yes" : "no");
  lua_pop(L, 2);

  /* An uncaught error, without a handler: gr_run returns it. */
  getfn(L, "boom");
  id = gr_go(L, 0);
  CHECK(gr_run(L, GR_RUN_NOWAIT) == GR_ERROR);
  printf("%.*s\n", (int)strcspn(lua_tostring(L, -1), "\n"),
         lua_tostring(L, -1));
  lua_pop(L, 1);

  /* A goroutine nothing can wake: GR_RUN_DEFAULT reports the deadlock. */
  getfn(L, "stuck");
  CHECK(gr_go(L, 0) > 0);
  CHECK(gr_run(L, GR_RUN_DEFAULT) == GR_ERROR);
  printf("%.37s\n", lua_tostring(L, -1));
  CHECK(strstr(lua_tostring(L, -1), "[chan receive]:") != NULL);
  lua_pop(L, 1);
  CHECK(lua_gettop(L) == top);
  lua_close(L);
  return 0;
}
