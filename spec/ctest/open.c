/*
** open.c -- gr_open: a state the host owns finds the module without any
** search path, in the host state and in worker states; a bad argument is
** refused.
*/
#include "ctest.h"

int main (void) {
  lua_State *L;
  CHECK(gr_open(NULL) == GR_EINVAL);
  L = ctest_newstate();
  CHECK(gr_open(L) == GR_OK);   /* a second call does nothing */
  ctest_run(L,
    "package.path, package.cpath = '', ''\n"
    "local g = require 'goroutines'\n"
    "print(g == require 'goroutines', type(g.go), type(g.chan))\n"
    "local ch = g.chan()\n"
    "g.go(function() for i = 1, 3 do ch:send(i * 10) end ch:close() end)\n"
    "for v in ch:range() do print('got', v) end\n"
    "g.gomaxprocs(2)\n"
    "local res = g.chan()\n"
    "g.parallel(function(out)\n"
    "  local g = require 'goroutines'\n"
    "  out:send(('parallel %d'):format(g.id()))\n"
    "end, res)\n"
    "print(res:recv())\n");
  lua_close(L);
  printf("closed\n");
  return 0;
}
