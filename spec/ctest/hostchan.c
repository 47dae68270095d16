/*
** hostchan.c -- host channels: values of every host type both ways, the
** three ways to wait, host threads that feed goroutines and wait for
** them, close from either side, bad input, and a channel that outlives
** its state.
*/
#include <math.h>
#include <string.h>
#include <uv.h>

#include "ctest.h"

#define NTHREADS 3
#define PERTHREAD 2000

static gr_chan *inbox, *results, *answer;

static void producer (void *arg) {
  int i, base = (int)(intptr_t)arg;
  for (i = 1; i <= PERTHREAD; i++) {
    gr_hostval v;
    v.type = GR_TINTEGER;
    v.u.i = base + i;
    CHECK(gr_chan_send(inbox, &v, -1) == GR_OK);
  }
}

static void closer (void *arg) {
  uv_thread_t *t = (uv_thread_t *)arg;
  int i;
  for (i = 0; i < NTHREADS; i++) uv_thread_join(&t[i]);
  CHECK(gr_chan_close(inbox) == GR_OK);
  CHECK(gr_chan_close(inbox) == GR_CLOSED);
}

/* check(ch): whether gr_chan_check finds the channel `results`. */
static int lcheck (lua_State *L) {
  lua_pushboolean(L, gr_chan_check(L, 1) == results);
  return 1;
}

static void printval (const char *what, const gr_hostval *v) {
  switch (v->type) {
    case GR_TNIL: printf("%s nil\n", what); break;
    case GR_TBOOLEAN: printf("%s boolean %d\n", what, v->u.b); break;
    case GR_TINTEGER: printf("%s integer %lld\n", what, (long long)v->u.i); break;
    case GR_TNUMBER: printf("%s number %g\n", what, v->u.n); break;
    case GR_TSTRING:
      printf("%s string %zu [", what, v->u.s.len);
      fwrite(v->u.s.p, 1, v->u.s.len, stdout);
      printf("]\n");
      break;
  }
}

int main (void) {
  lua_State *L = ctest_newstate();
  gr_chan *c = gr_chan_new(0), *buf = gr_chan_new(8);
  gr_hostval v, bad;
  uv_thread_t t[NTHREADS], ct;
  uint64_t t0;
  int i;

  /* Bad input is refused, and changes nothing. */
  v.type = GR_TINTEGER;
  v.u.i = 1;
  bad.type = 99;
  CHECK(gr_chan_send(NULL, &v, 0) == GR_EINVAL);
  CHECK(gr_chan_send(c, NULL, 0) == GR_EINVAL);
  CHECK(gr_chan_send(c, &bad, 0) == GR_EINVAL);
  CHECK(gr_chan_send(c, &v, 0.0 / 0.0) == GR_EINVAL);
  CHECK(gr_chan_recv(c, NULL, 0) == GR_EINVAL);
  CHECK(gr_chan_recv(NULL, &v, 0) == GR_EINVAL && v.type == GR_TNIL);
  CHECK(gr_chan_close(NULL) == GR_EINVAL);
  CHECK(gr_chan_push(NULL, c) == GR_EINVAL);
  CHECK(gr_chan_push(L, NULL) == GR_EINVAL);
  gr_chan_retain(NULL);
  gr_chan_release(NULL);
  gr_hostval_free(NULL);

  /* Nobody on the other side: timeouts. */
  v.type = GR_TINTEGER;
  CHECK(gr_chan_send(c, &v, 0) == GR_TIMEOUT);
  CHECK(gr_chan_recv(c, &v, 0) == GR_TIMEOUT && v.type == GR_TNIL);
  t0 = uv_hrtime();
  CHECK(gr_chan_recv(c, &v, 0.05) == GR_TIMEOUT);
  CHECK(uv_hrtime() - t0 >= 50000000);
  v.type = GR_TINTEGER;
  CHECK(gr_chan_send(c, &v, 0.02) == GR_TIMEOUT);

  /* Every host type through a buffer, from the host to itself. */
  v.type = GR_TNIL; CHECK(gr_chan_send(buf, &v, 0) == GR_OK);
  v.type = GR_TBOOLEAN; v.u.b = 1; CHECK(gr_chan_send(buf, &v, 0) == GR_OK);
  v.type = GR_TINTEGER; v.u.i = -42; CHECK(gr_chan_send(buf, &v, 0) == GR_OK);
  v.type = GR_TNUMBER; v.u.n = 2.5; CHECK(gr_chan_send(buf, &v, 0) == GR_OK);
  v.type = GR_TSTRING; v.u.s.p = "a\0b"; v.u.s.len = 3;
  CHECK(gr_chan_send(buf, &v, 0) == GR_OK);
  v.type = GR_TSTRING; v.u.s.p = NULL; v.u.s.len = 0;
  CHECK(gr_chan_send(buf, &v, 0) == GR_OK);
  for (i = 0; i < 6; i++) {
    CHECK(gr_chan_recv(buf, &v, 0) == GR_OK);
    if (v.type == GR_TSTRING) {
      CHECK(v.u.s.p[v.u.s.len] == '\0');
      printf("self string %zu %s\n", v.u.s.len,
             v.u.s.len == 0 ? "(empty)" :
             v.u.s.len == 3 && memcmp(v.u.s.p, "a\0b", 3) == 0 ? "a\\0b" :
             "(wrong bytes)");
    }
    else printval("self", &v);
    gr_hostval_free(&v);
    CHECK(v.type == GR_TNIL);
  }

  /* Host threads feed a goroutine; it answers on another channel. */
  inbox = gr_chan_new(16);
  results = gr_chan_new(4);
  CHECK(inbox && results);
  CHECK(gr_chan_push(L, inbox) == GR_OK);
  lua_setglobal(L, "inbox");
  CHECK(gr_chan_push(L, results) == GR_OK);
  lua_setglobal(L, "results");
  answer = gr_chan_new(0);
  CHECK(gr_chan_push(L, answer) == GR_OK);
  lua_setglobal(L, "answer");
  lua_register(L, "check", lcheck);
  ctest_run(L,
    "local g = require 'goroutines'\n"
    "print(check(results), pcall(check, g.chan()))\n"
    "print(pcall(check, 42))\n"
    "print(pcall(results.send, results, {}))\n"
    "print(pcall(results.on_send, results, print))\n"
    "g.go(function()\n"
    "  local sum, n = 0, 0\n"
    "  for v in inbox:range() do sum, n = sum + v, n + 1 end\n"
    "  results:send(n)\n"
    "  results:send(sum)\n"
    "  results:send('dbl ' .. 3.0)\n"
    "  results:send(3.0)\n"
    "  print('lua got', answer:recv())\n"   /* the host's answer */
    "end)\n");
  for (i = 0; i < NTHREADS; i++)
    CHECK(uv_thread_create(&t[i], producer, (void *)(intptr_t)(i * 1000000)) == 0);
  CHECK(uv_thread_create(&ct, closer, t) == 0);
  /* The goroutine waits for host threads: no deadlock, it runs until the
  ** channel is closed, then waits for our answer. */
  while (1) {
    CHECK(gr_run(L, GR_RUN_ONCE) == GR_OK);
    if (gr_chan_recv(results, &v, 0) == GR_OK) break;
  }
  printval("count", &v);
  CHECK(gr_chan_recv(results, &v, 10) == GR_OK);
  printval("sum", &v);
  /* 1..2000 three times, plus 0, 1e6 and 2e6 each 2000 times */
  printf("expected %lld\n", (long long)(3LL * PERTHREAD * (PERTHREAD + 1) / 2 +
                                          (long long)PERTHREAD * 3000000));
  CHECK(gr_run(L, GR_RUN_NOWAIT) == GR_OK);
  CHECK(gr_chan_recv(results, &v, 10) == GR_OK);
  printval("from lua", &v);
  gr_hostval_free(&v);
  CHECK(gr_chan_recv(results, &v, 10) == GR_OK);
  printval("from lua", &v);
  v.type = GR_TSTRING; v.u.s.p = "thanks"; v.u.s.len = 6;
  /* Unbuffered: it goes through without waiting only because the
  ** goroutine waits on answer already (the buffer of results let it). */
  CHECK(gr_chan_send(answer, &v, 0) == GR_OK);
  CHECK(gr_run(L, GR_RUN_DEFAULT) == GR_OK);   /* prints lua got */
  uv_thread_join(&ct);

  /* A host close wakes a goroutine that waits. */
  ctest_run(L,
    "local g = require 'goroutines'\n"
    "g.go(function() print('closed:', results:recv()) end)\n");
  CHECK(gr_run(L, GR_RUN_NOWAIT) == GR_OK);
  CHECK(gr_chan_close(results) == GR_OK);
  CHECK(gr_run(L, GR_RUN_DEFAULT) == GR_OK);
  CHECK(gr_chan_recv(results, &v, -1) == GR_CLOSED);
  v.type = GR_TNIL;
  CHECK(gr_chan_send(results, &v, -1) == GR_CLOSED);

  /* Values buffered by the state outlive it. */
  ctest_run(L, "inbox, results, answer = nil\n");
  CHECK(gr_chan_push(L, buf) == GR_OK);
  lua_setglobal(L, "buf");
  ctest_run(L, "buf:send('kept') buf:send(7) buf = nil\n");
  lua_close(L);
  CHECK(gr_chan_recv(buf, &v, 0) == GR_OK);
  printval("after close", &v);
  gr_hostval_free(&v);
  CHECK(gr_chan_recv(buf, &v, 0) == GR_OK);
  printval("after close", &v);
  gr_chan_release(inbox);
  gr_chan_release(results);
  gr_chan_release(answer);
  gr_chan_release(buf);
  gr_chan_release(c);
  return 0;
}
