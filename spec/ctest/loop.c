/*
** loop.c -- gr_set_loop: goroutines run from the host's own libuv loop
** (timers, a pingpong, a host thread's send, an error to the handler),
** next to a handle of the host's; uv_run returns once they are done, and
** the runtime's handles leave the loop at lua_close.
*/
#include <string.h>
#include <uv.h>

#include "ctest.h"

static gr_chan *c;
static int hostticks;

static void onerror (lua_State *L, const char *msg, void *ud) {
  (void)L;
  (void)ud;
  printf("handler: %.*s\n", (int)strcspn(msg, "\n"), msg);
}

static void hosttick (uv_timer_t *t) {
  (void)t;
  hostticks++;
}

static void feeder (void *arg) {
  gr_hostval v;
  (void)arg;
  uv_sleep(50);
  v.type = GR_TINTEGER;
  v.u.i = 99;
  CHECK(gr_chan_send(c, &v, -1) == GR_OK);
}

int main (void) {
  uv_loop_t loop;
  uv_timer_t tick;
  uv_thread_t t;
  lua_State *L = ctest_newstate();
  CHECK(uv_loop_init(&loop) == 0);
  CHECK(gr_set_loop(NULL, &loop) == GR_EINVAL);
  CHECK(gr_set_error_handler(L, onerror, NULL) == GR_OK);
  CHECK(gr_set_loop(L, NULL) == GR_EINVAL);
  CHECK(gr_loop(L) == NULL);
  CHECK(gr_set_loop(L, &loop) == GR_OK);
  CHECK(gr_loop(L) == &loop);
  CHECK(gr_set_loop(L, &loop) == GR_EINVAL);     /* set already */

  c = gr_chan_new(0);
  CHECK(gr_chan_push(L, c) == GR_OK);
  lua_setglobal(L, "c");
  ctest_run(L,
    "local g = require 'goroutines'\n"
    "g.go(function()\n"
    "  for i = 1, 3 do g.time.sleep(0.02) print('tick', i) end\n"
    "end)\n"
    "g.go(function()\n"
    "  local ping, pong = g.chan(), g.chan()\n"
    "  g.go(function() for v in ping:range() do pong:send(v + 1) end end)\n"
    "  local v = 0\n"
    "  for i = 1, 1000 do ping:send(v) v = pong:recv() end\n"
    "  ping:close()\n"
    "  print('pingpong', v)\n"
    "end)\n"
    "g.go(function() print('from the host thread', c:recv()) end)\n"
    "g.go(function() g.time.sleep(0.01) error('boom', 0) end)\n");
  CHECK(uv_timer_init(&loop, &tick) == 0);
  CHECK(uv_timer_start(&tick, hosttick, 5, 5) == 0);
  uv_unref((uv_handle_t *)&tick);   /* the host's: it keeps nothing alive */
  CHECK(uv_thread_create(&t, feeder, NULL) == 0);
  uv_run(&loop, UV_RUN_DEFAULT);    /* until every goroutine is done */
  printf("uv_run returned, the host's timer ran: %s\n",
         hostticks > 0 ? "yes" : "no");
  uv_thread_join(&t);
  lua_close(L);
  uv_close((uv_handle_t *)&tick, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);    /* the close callbacks */
  CHECK(uv_loop_close(&loop) == 0);
  gr_chan_release(c);
  printf("loop closed\n");
  return 0;
}
