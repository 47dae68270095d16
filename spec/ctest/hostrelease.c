/*
** hostrelease.c -- a host thread may release its last ref on a host
** channel while other host threads wait on it: the waits end as they
** would have (a timeout, or the value another thread sends), and the
** channel is freed after the last one.
*/
#include <uv.h>

#include "ctest.h"

static gr_chan *c;

static void waiter (void *arg) {
  gr_hostval v;
  int r = gr_chan_recv(c, &v, 0.3);
  *(int *)arg = r;
  if (r == GR_OK) gr_hostval_free(&v);
}

int main (void) {
  uv_thread_t t1, t2;
  int r1 = -1, r2 = -1;
  gr_hostval v;
  gr_chan *keep;
  c = gr_chan_new(0);
  CHECK(c != NULL);
  /* Both wait; the host's only ref is dropped meanwhile. */
  CHECK(uv_thread_create(&t1, waiter, &r1) == 0);
  CHECK(uv_thread_create(&t2, waiter, &r2) == 0);
  uv_sleep(50);
  gr_chan_release(c);
  uv_thread_join(&t1);
  uv_thread_join(&t2);
  printf("timeouts %d %d\n", r1 == GR_TIMEOUT, r2 == GR_TIMEOUT);
  /* A sender that keeps a ref completes one waiter after the release. */
  c = gr_chan_new(0);
  keep = c;
  gr_chan_retain(keep);
  CHECK(uv_thread_create(&t1, waiter, &r1) == 0);
  uv_sleep(50);
  gr_chan_release(c);
  v.type = GR_TINTEGER;
  v.u.i = 7;
  printf("send %d\n", gr_chan_send(keep, &v, 1.0) == GR_OK);
  uv_thread_join(&t1);
  printf("received %d\n", r1 == GR_OK);
  gr_chan_release(keep);
  return 0;
}
