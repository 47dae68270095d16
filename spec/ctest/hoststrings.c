/*
** hoststrings.c -- strings from host threads to goroutines, of every
** length around the small size that host channels recycle: each arrives
** byte-exact through range, recv and select, over two channels that
** share the recycled buffers, and a range iterator called with another
** handle receives from that one.
*/
#include <string.h>
#include <uv.h>

#include "ctest.h"

#define N 3000

static gr_chan *a, *b;

/* The i-th string: length i % 131, its bytes from i. */
static size_t make (int i, char *s) {
  size_t len = (size_t)(i % 131), k;
  for (k = 0; k < len; k++) s[k] = (char)('a' + (i + k * 7) % 26);
  return len;
}

/* Sends string i on a when i is even, on b when odd. */
static void sender (void *arg) {
  char s[256];
  int i;
  (void)arg;
  for (i = 0; i < N; i++) {
    gr_hostval v;
    v.type = GR_TSTRING;
    v.u.s.p = s;
    v.u.s.len = make(i, s);
    CHECK(gr_chan_send(i % 2 ? b : a, &v, -1) == GR_OK);
  }
  gr_chan_close(a);
  gr_chan_close(b);
}

int main (void) {
  lua_State *L = ctest_newstate();
  uv_thread_t t;
  a = gr_chan_new(16);
  b = gr_chan_new(0);
  CHECK(a != NULL && b != NULL);
  CHECK(gr_chan_push(L, a) == GR_OK);
  lua_setglobal(L, "a");
  CHECK(gr_chan_push(L, b) == GR_OK);
  lua_setglobal(L, "b");
  ctest_run(L,
    "local g = require 'goroutines'\n"
    "local function make(i)\n"
    "  local t = {}\n"
    "  for k = 0, i % 131 - 1 do\n"
    "    t[#t + 1] = string.char(97 + (i + k * 7) % 26)\n"
    "  end\n"
    "  return table.concat(t)\n"
    "end\n"
    "g.go(function()\n"
    "  local bad, got, i = 0, 0, 0\n"
    "  local ita = a:range()\n"
    "  local itb = b:range()\n"
    "  local function check(v)\n"
    "    if v ~= make(i) then bad = bad + 1 end\n"
    "    got = got + 1\n"
    "    i = i + 1\n"
    "  end\n"
    "  while i < " "3000" " do\n"
    "    local k = i % 8\n"
    "    if k == 0 then check(ita(a))\n"
    "    elseif k == 1 then check(b:recv())\n"
    "    elseif k == 2 then check((a:recv()))\n"
    "    elseif k == 3 then check(ita(b))\n"      /* another handle */
    "    elseif k == 4 then check(itb(a))\n"
    "    elseif k == 5 then check(itb(b))\n"
    "    elseif k == 6 then\n"
    "      local _, v = g.select{ a:on_recv(), g.chan():on_recv() }\n"
    "      check(v)\n"
    "    else\n"
    "      local _, v = g.select{ b:on_recv(), g.chan():on_recv() }\n"
    "      check(v)\n"
    "    end\n"
    "  end\n"
    "  print('received', got, 'wrong', bad)\n"
    "  print('then', a:recv(), b:recv())\n"
    "end)\n");
  CHECK(uv_thread_create(&t, sender, NULL) == 0);
  CHECK(gr_run(L, GR_RUN_DEFAULT) == GR_OK);
  uv_thread_join(&t);
  lua_close(L);
  gr_chan_release(a);
  gr_chan_release(b);
  return 0;
}
