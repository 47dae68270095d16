/*
** host_chan.c -- a host thread sends to a goroutine over a buffered(1024)
** host channel (gr_chan_send), without a Lua state; the goroutine, in the
** host state that the main thread runs (gr_run), receives. First N
** integers, then N 64-byte strings. The Go side (go/host_chan) sends from
** a locked OS thread to a goroutine.
**
** Output: RESULT host_chan ints_msgs_per_s <n>, strings_msgs_per_s <n>
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"

#include "goroutines.h"

static gr_chan *ch;
static int n, strings;

static void sender (void *arg) {
  static const char s64[65] =
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  int i;
  (void)arg;
  for (i = 0; i < n; i++) {
    gr_hostval v;
    if (strings) {
      v.type = GR_TSTRING;
      v.u.s.p = s64;
      v.u.s.len = 64;
    }
    else {
      v.type = GR_TINTEGER;
      v.u.i = i;
    }
    if (gr_chan_send(ch, &v, -1) != GR_OK) abort();
  }
  gr_chan_close(ch);
}

/* Messages a second for one run of n messages. */
static double run (lua_State *L) {
  uv_thread_t t;
  uint64_t t0;
  ch = gr_chan_new(1024);
  lua_getglobal(L, "drain");
  gr_chan_push(L, ch);
  if (gr_go(L, 1) <= 0) abort();
  t0 = uv_hrtime();
  if (uv_thread_create(&t, sender, NULL) != 0) abort();
  if (gr_run(L, GR_RUN_DEFAULT) != GR_OK) {
    fprintf(stderr, "%s\n", lua_tostring(L, -1));
    abort();
  }
  uv_thread_join(&t);
  gr_chan_release(ch);
  return n / ((uv_hrtime() - t0) / 1e9);
}

int main (int argc, char **argv) {
  lua_State *L = luaL_newstate();
  n = argc > 1 ? atoi(argv[1]) : 1000000;
  luaL_openlibs(L);
  if (gr_open(L) != GR_OK ||
      luaL_dostring(L, "local g = require 'goroutines'\n"
                       "function drain(ch)\n"
                       "  local k = 0\n"
                       "  for v in ch:range() do k = k + 1 end\n"
                       "  count = k\n"
                       "end\n") != LUA_OK)
    return 1;
  printf("RESULT host_chan ints_msgs_per_s %.0f\n", run(L));
  strings = 1;
  printf("RESULT host_chan strings_msgs_per_s %.0f\n", run(L));
  lua_close(L);
  return 0;
}
