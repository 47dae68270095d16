/*
** shutdown.c -- lua_close of an embedded state with goroutines blocked on
** a host channel, a sleeping one, and a parallel goroutine that computes
** for good: it returns soon, nothing is printed, the process goes on, and
** the host channel outlives the state (a host thread that waits on it is
** still served).
*/
#include <uv.h>

#include "ctest.h"

static gr_chan *c;

static void waiter (void *arg) {
  gr_hostval v;
  (void)arg;
  printf("host thread: %d\n", gr_chan_recv(c, &v, -1) == GR_OK &&
         v.type == GR_TINTEGER ? (int)v.u.i : -1);
}

int main (void) {
  lua_State *L = ctest_newstate();
  uv_thread_t t;
  uint64_t t0;
  gr_hostval v;
  c = gr_chan_new(0);
  CHECK(gr_chan_push(L, c) == GR_OK);
  lua_setglobal(L, "c");
  ctest_run(L,
    "local g = require 'goroutines'\n"
    "for i = 1, 100 do g.go(function() c:recv() end) end\n"
    "g.go(g.time.sleep, 3600)\n"
    "g.gomaxprocs(1)\n"
    "local started = g.chan()\n"
    "g.parallel(function() started:send(true) while true do end end)\n"
    "started:recv()\n");
  CHECK(gr_run(L, GR_RUN_NOWAIT) == GR_OK);   /* all of them wait now */
  CHECK(uv_thread_create(&t, waiter, NULL) == 0);
  t0 = uv_hrtime();
  lua_close(L);
  printf("closed within 5 s: %s\n", uv_hrtime() - t0 < 5000000000ULL ? "yes" : "no");
  v.type = GR_TINTEGER;
  v.u.i = 7;
  CHECK(gr_chan_send(c, &v, -1) == GR_OK);    /* to the host thread */
  uv_thread_join(&t);
  CHECK(gr_chan_recv(c, &v, 0) == GR_TIMEOUT);  /* no goroutine left */
  gr_chan_release(c);
  return 0;
}
