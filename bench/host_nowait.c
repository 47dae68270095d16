/*
** host_nowait.c -- the cost of gr_run(L, GR_RUN_NOWAIT) for a frame loop:
** on an idle state, and per frame with 1,000 goroutines asleep for an hour
** and 100 whose 1 ms timers are due at each frame. The Go side
** (go/host_nowait) measures runtime.Gosched() with nothing else ready,
** its nearest "run what is ready and come back".
**
** Output: RESULT host_nowait idle_ns_per_call <ns>, frame_us_100_due <us>
*/
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"

#include "goroutines.h"

int main (int argc, char **argv) {
  lua_State *L = luaL_newstate();
  int i, calls = argc > 1 ? atoi(argv[1]) : 1000000, frames = 200;
  uint64_t t0, spent = 0;
  luaL_openlibs(L);
  if (gr_open(L) != GR_OK) return 1;
  t0 = uv_hrtime();
  for (i = 0; i < calls; i++) gr_run(L, GR_RUN_NOWAIT);
  printf("RESULT host_nowait idle_ns_per_call %.1f\n",
         (double)(uv_hrtime() - t0) / calls);
  if (luaL_dostring(L,
        "local g = require 'goroutines'\n"
        "for i = 1, 1000 do g.go(g.time.sleep, 3600) end\n"
        "for i = 1, 100 do\n"
        "  g.go(function() while true do g.time.sleep(0.001) end end)\n"
        "end\n") != LUA_OK)
    return 1;
  gr_run(L, GR_RUN_NOWAIT);   /* they all start, and sleep */
  for (i = 0; i < frames; i++) {
    uv_sleep(2);              /* the frame's other work: the timers fall due */
    t0 = uv_hrtime();
    gr_run(L, GR_RUN_NOWAIT);
    spent += uv_hrtime() - t0;
  }
  printf("RESULT host_nowait frame_us_100_due %.1f\n",
         (double)spent / frames / 1000);
  lua_close(L);   /* with 1,100 goroutines asleep */
  return 0;
}
