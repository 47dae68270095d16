/*
** hostwait.c -- deadlock detection next to host channels: a goroutine
** parked on a host channel waits (a host thread may wake it), while a
** state whose goroutines wait on nothing a host can reach still reports
** its deadlock, whatever host channels live elsewhere in the process.
*/
#include <string.h>
#include <uv.h>

#include "ctest.h"

/* The first line of the message on top of L's stack, popped. */
static void printtop (const char *what, int r, lua_State *L) {
  printf("%s: %s", what, r == GR_OK ? "ok" : r == GR_ERROR ? "error" : "?");
  if (r == GR_ERROR) {
    const char *msg = lua_tostring(L, -1);
    printf(": %.*s", (int)strcspn(msg, "\n"), msg);
    lua_pop(L, 1);
  }
  printf("\n");
}

/* After 50 ms, sends 7 on the channel arg. */
static void sendlater (void *arg) {
  gr_hostval v;
  uv_sleep(50);
  v.type = GR_TINTEGER;
  v.u.i = 7;
  CHECK(gr_chan_send((gr_chan *)arg, &v, -1) == GR_OK);
}

/* A new state with the host channel c as the global hc. */
static lua_State *withchan (gr_chan *c) {
  lua_State *L = ctest_newstate();
  CHECK(gr_chan_push(L, c) == GR_OK);
  lua_setglobal(L, "hc");
  ctest_run(L, "g = require 'goroutines'");
  return L;
}

/* Runs src in a new state with hc, and gr_run(GR_RUN_DEFAULT) while a
** host thread sends 7 on hc after 50 ms. */
static void withsend (gr_chan *hc, const char *what, const char *src) {
  lua_State *L = withchan(hc);
  uv_thread_t t;
  ctest_run(L, src);
  CHECK(uv_thread_create(&t, sendlater, hc) == 0);
  printtop(what, gr_run(L, GR_RUN_DEFAULT), L);
  uv_thread_join(&t);
  lua_close(L);
}

int main (void) {
  gr_chan *unrelated = gr_chan_new(0), *other = gr_chan_new(0),
          *hc = gr_chan_new(0);
  lua_State *L, *L2;
  uv_thread_t t;
  CHECK(unrelated != NULL && other != NULL && hc != NULL);
  /* L2 holds a handle of a host channel that L never sees; L has one of
  ** hc, on which nothing waits. */
  L2 = withchan(other);
  gr_chan_release(other);
  L = withchan(hc);
  ctest_run(L, "g.go(function() g.chan():recv() end)\n");
  CHECK(gr_run(L, GR_RUN_DEFAULT) == GR_ERROR);
  /* The host's gr_run is no goroutine: the report lists goroutine 2. */
  printf("report lists goroutine 1: %s, goroutine 2: %s\n",
         strstr(lua_tostring(L, -1), "goroutine 1 [") ? "yes" : "no",
         strstr(lua_tostring(L, -1), "goroutine 2 [chan receive]") ? "yes"
                                                                   : "no");
  printtop("plain wait, host channels elsewhere", GR_ERROR, L);
  /* The main chunk blocking in place, too. */
  ctest_run(L, "local ok, err = pcall(function() g.chan():recv() end)\n"
               "print('main:', ok, (err:match('^[^\\n]*')))");
  lua_close(L);

  /* On the host channel: it waits until the host thread sends, then ends:
  ** GR_RUN_DEFAULT returns once no goroutine is left. */
  withsend(hc, "host channel wait",
           "g.go(function() print('received', hc:recv()) end)\n");
  /* Once received, a wait on a plain channel is a deadlock again: the
  ** goroutine no longer counts as waiting on the host. */
  withsend(hc, "received, then a plain wait",
           "g.go(function() print('received', hc:recv())\n"
           "  g.chan():recv() end)\n");
  /* The same through select, one case of which is the host channel. */
  withsend(hc, "selected, then a plain wait",
           "g.go(function()\n"
           "  local plain = g.chan()\n"
           "  g.select{ hc:on_recv(function(v) print('selected', v) end),\n"
           "            plain:on_recv(function() end) }\n"
           "  plain:recv() end)\n");

  /* The main chunk blocking in place on the host channel, then on a
  ** plain one. */
  L = withchan(hc);
  CHECK(uv_thread_create(&t, sendlater, hc) == 0);
  ctest_run(L, "print('main received', hc:recv())\n"
               "local ok, err = pcall(function() g.chan():recv() end)\n"
               "print('main:', ok, (err:match('^[^\\n]*')))");
  uv_thread_join(&t);
  lua_close(L);

  lua_close(L2);
  gr_chan_release(hc);
  gr_chan_release(unrelated);
  return 0;
}
