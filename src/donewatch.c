/*
** donewatch.c -- a watch, from C, of a channel's close (see donewatch.h).
**
** Invariants:
**   While it watches, dw->w is in c's receive queue, protected by c's
**     lock. A close takes it out and calls its wake (any thread, under no
**     lock of ours), which rings dw->async and then sets rung: from then
**     on the closer touches dw no more.
**   Only the owner thread reads and writes fn: the async callback and
**     stop run there, so fn is NULL from the stop on.
**   stop frees nothing the closer may still touch: if w is no longer
**     queued, a closer took it and its wake follows at once, so stop
**     waits for rung before the handle is closed and dw freed.
** Lock order: c's lock only, never with another held.
*/
#include <sched.h>
#include <stddef.h>
#include <stdlib.h>

#include "donewatch.h"

struct gr_donewatch {
  gr_waiter w;          /* queued on c->recvq (protected by c's lock) */
  uv_async_t async;     /* rung by the wake, on the watching state's loop */
  gr_chan *c;           /* the done channel; one ref held */
  gr_donefn fn;         /* the watcher's, NULL once stopped (owner) */
  void *arg;
  atomic_int rung;      /* the wake has rung async: it touches w no more */
};

gr_donewatch *gr_donewatch_new (void) {
  return (gr_donewatch *)calloc(1, sizeof(gr_donewatch));
}

static void onwake (gr_state *cur, gr_waiter *w) {
  gr_donewatch *dw = (gr_donewatch *)((char *)w - offsetof(gr_donewatch, w));
  (void)cur;
  uv_async_send(&dw->async);
  atomic_store_explicit(&dw->rung, 1, memory_order_release);
}

static void onasync (uv_async_t *a) {
  gr_donewatch *dw = (gr_donewatch *)a->data;
  if (dw->fn) dw->fn(dw->arg);
}

static void onclosed (uv_handle_t *h) {
  free(h->data);
}

int gr_donewatch_start (gr_donewatch *dw, gr_state *S, gr_chan *c,
                        gr_donefn fn, void *arg) {
  int closed;
  if (uv_async_init(&S->loop, &dw->async, onasync) != 0) {
    free(dw);
    return -1;
  }
  dw->async.data = dw;
  dw->c = c;
  dw->fn = fn;
  dw->arg = arg;
  atomic_init(&dw->rung, 0);
  gr_chan_retain(c);
  dw->w.wake = onwake;
  dw->w.g = NULL;
  dw->w.obj = c;
  dw->w.isselect = 0;
  dw->w.dir = GR_DIRRECV;
  gr_value_setnil(&dw->w.val);
  gr_chan_lock(c);
  closed = c->closed;
  if (!closed) gr_waitq_push(&c->recvq, &dw->w);
  gr_chan_unlock(c);
  if (closed) {   /* never queued: no wake will come */
    dw->fn = NULL;
    atomic_store(&dw->rung, 1);
  }
  return closed;
}

void gr_donewatch_stop (gr_donewatch *dw) {
  int queued;
  dw->fn = NULL;
  gr_chan_lock(dw->c);
  queued = dw->w.inq;
  if (queued) gr_waitq_remove(&dw->c->recvq, &dw->w);
  gr_chan_unlock(dw->c);
  if (!queued)   /* the closer holds it: its wake follows at once */
    while (!atomic_load_explicit(&dw->rung, memory_order_acquire))
      sched_yield();
  gr__chan_release(NULL, dw->c);
  uv_close((uv_handle_t *)&dw->async, onclosed);
}
