/*
** wait.c -- waiters and wait queues (wait.h): queue operations, the wake
** of a goroutine, and the end of a wait that is abandoned.
**
** Invariants: a waiter is in at most one queue (w->inq); it is woken at
**   most once, by the party that dequeued it (for a select, the party that
**   also won the CAS 0 -> 1 on g->seldone).
** Lock order: the functions that take a queue run under its object's
**   lock; gr_wait_wake runs under none (it may take a state's mailbox
**   lock, a leaf).
*/
#include <sched.h>

#include "sched.h"
#include "wait.h"

void gr_waitq_push (gr_waitq *q, gr_waiter *w) {
  w->next = NULL;
  w->prev = q->last;
  if (q->last) q->last->next = w;
  else q->first = w;
  q->last = w;
  w->inq = 1;
}

void gr_waitq_pushfront (gr_waitq *q, gr_waiter *w) {
  w->prev = NULL;
  w->next = q->first;
  if (q->first) q->first->prev = w;
  else q->last = w;
  q->first = w;
  w->inq = 1;
}

void gr_waitq_remove (gr_waitq *q, gr_waiter *w) {
  GR_ASSERT(w->inq);
  if (w->prev) w->prev->next = w->next;
  else q->first = w->next;
  if (w->next) w->next->prev = w->prev;
  else q->last = w->prev;
  w->next = w->prev = NULL;
  w->inq = 0;
}

/* A select waiter whose goroutine was already won by another case is
** dropped on the way: its goroutine removes its other waiters itself. */
gr_waiter *gr_waitq_pop (gr_waitq *q) {
  gr_waiter *w;
  while ((w = q->first) != NULL) {
    gr_waitq_remove(q, w);
    if (w->isselect) {
      int expected = 0;
      if (!atomic_compare_exchange_strong(&w->g->seldone, &expected, 1))
        continue;
      w->g->selwin = w->caseidx;
    }
    return w;
  }
  return NULL;
}

void gr_wait_wakeg (gr_state *cur, gr_waiter *w) {
  gr_sched_ready(cur, w->g);
}

/* The window is short: the waker dequeued the waiter under the object's
** lock and wakes it as soon as it has dropped that lock. */
int gr_wait_settle (gr_g *g, int withdrawn) {
  if (!withdrawn)
    while (!atomic_load_explicit(&g->woken, memory_order_acquire))
      sched_yield();
  return withdrawn;
}
