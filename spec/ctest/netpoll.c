/*
** netpoll.c -- g.net in a state that a poll-loop host drives: goroutines
** blocked on sockets of the runtime's loop wake through gr_backend_fd and
** gr_run(L, GR_RUN_NOWAIT), with no blocking call in the main chunk.
*/
#include <poll.h>
#include <uv.h>

#include "ctest.h"

int main (void) {
  lua_State *L = ctest_newstate();
  int i, fd, done = 0;
  ctest_run(L,
    "local g = require 'goroutines'\n"
    "result = nil\n"
    "local ln = assert(g.net.listen('tcp', '127.0.0.1:0'))\n"
    "g.go(function()\n"
    "  local s = assert(ln:accept())\n"
    "  local msg = s:read(5)\n"
    "  s:write(msg:upper())\n"
    "  s:close()\n"
    "end)\n"
    "g.go(function()\n"
    "  local c = assert(g.net.dial('tcp', ln:addr()))\n"
    "  c:write('hello')\n"
    "  result = c:read(5)\n"
    "  c:close()\n"
    "  ln:close()\n"
    "end)\n");
  fd = gr_backend_fd(L);
  CHECK(fd >= 0);
  for (i = 0; i < 10000 && !done; i++) {
    struct pollfd p;
    uint64_t t0 = uv_hrtime();
    int ms;
    CHECK(gr_run(L, GR_RUN_NOWAIT) == GR_OK);
    lua_getglobal(L, "result");
    if (lua_isstring(L, -1)) {
      printf("echoed: %s\n", lua_tostring(L, -1));
      done = 1;
    }
    lua_pop(L, 1);
    if (done) break;
    ms = gr_backend_timeout(L);
    p.fd = fd;
    p.events = POLLIN;
    /* Every wake comes through the fd or the timeout: a poll that waited
    ** out its whole second would mean a missed one. */
    CHECK(poll(&p, 1, ms < 0 || ms > 1000 ? 1000 : ms) >= 0);
    CHECK(uv_hrtime() - t0 < 900000000ULL);
  }
  CHECK(done);
  lua_close(L);
  return 0;
}
