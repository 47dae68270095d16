/*
** frame.c -- a host with a frame loop (a game, a GUI): every frame it
** does its own work, then lets the goroutines run with
** gr_run(L, GR_RUN_NOWAIT), which runs what is ready and due and returns
** within about a millisecond. A 2 ms time slice keeps a goroutine that
** computes from spoiling the frame.
**
**   make && build/examples/frame
*/
#include <stdio.h>
#include <uv.h>

#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"

#include "goroutines.h"

#define FRAME_NS 16666667ULL   /* 60 frames a second */

static const char script[] =
  "local g = require 'goroutines'\n"
  "state = { pings = 0 }\n"
  /* a goroutine that computes for a while: preempted every 2 ms */
  "g.go(function()\n"
  "  local n = 0\n"
  "  for i = 2, 100000 do\n"
  "    local p = true\n"
  "    for d = 2, math.floor(math.sqrt(i)) do\n"
  "      if i % d == 0 then p = false break end\n"
  "    end\n"
  "    if p then n = n + 1 end\n"
  "  end\n"
  "  print('primes below 100000:', n)\n"
  "  state.primes = n\n"
  "end)\n"
  /* two goroutines that talk: many round trips per frame */
  "local ping, pong = g.chan(), g.chan()\n"
  "g.go(function() for v in ping:range() do pong:send(v) end end)\n"
  "g.go(function()\n"
  "  for i = 1, 5000 do ping:send(i) pong:recv() state.pings = i end\n"
  "  ping:close()\n"
  "end)\n"
  /* timers fire during the frames */
  "g.go(function()\n"
  "  for i = 1, 3 do g.time.sleep(0.1) print('tick', i) end\n"
  "  state.ticked = true\n"
  "end)\n";

int main (void) {
  lua_State *L = luaL_newstate();
  uint64_t next, worst = 0, longest = 0;
  int frame, late = 0;
  luaL_openlibs(L);
  if (gr_open(L) != GR_OK || gr_set_preempt_slice(L, 0.002) != GR_OK ||
      luaL_dostring(L, script) != LUA_OK) {
    fprintf(stderr, "frame: %s\n", lua_tostring(L, -1));
    return 1;
  }
  next = uv_hrtime();
  for (frame = 1; frame <= 600; frame++) {
    uint64_t now = uv_hrtime();
    int done;
    if (now > next + 2000000) late++;   /* started over 2 ms late */
    if (now > next && now - next > worst) worst = now - next;
    /* ... the host's own work for this frame ... */
    if (gr_run(L, GR_RUN_NOWAIT) != GR_OK) {
      fprintf(stderr, "frame: %s\n", lua_tostring(L, -1));
      return 1;
    }
    if (uv_hrtime() - now > longest) longest = uv_hrtime() - now;
    lua_getglobal(L, "state");
    lua_getfield(L, -1, "ticked");
    lua_getfield(L, -2, "primes");
    lua_getfield(L, -3, "pings");
    done = lua_toboolean(L, -3) && lua_toboolean(L, -2) &&
           lua_tointeger(L, -1) == 5000;
    lua_pop(L, 4);
    if (done) break;
    next += FRAME_NS;
    now = uv_hrtime();
    if (now < next) uv_sleep((unsigned)((next - now) / 1000000));
  }
  lua_getglobal(L, "state");
  lua_getfield(L, -1, "pings");
  printf("pings: %lld\n", (long long)lua_tointeger(L, -1));
  lua_pop(L, 2);
  printf("frames: %s\n", frame < 600 ? "under 600" : "600 or more");
  fprintf(stderr, "frames %d, started over 2 ms late: %d, latest by %.1f "
          "ms, longest gr_run %.1f ms\n", frame, late, worst / 1e6,
          longest / 1e6);
  lua_close(L);
  return 0;
}
