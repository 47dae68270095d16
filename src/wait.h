/*
** wait.h -- waiters and wait queues: the one protocol by which anything
** waits on a runtime object (a channel, a select, a sync object) and is
** woken by whoever completes its operation.
**
** A waiter is enqueued on its object under the object's lock; the waker
** dequeues it under that lock, fills in the outcome (success, val), drops
** the lock, and only then calls gr_wait_wake once: that call is the last
** time the waker touches the waiter. What waits is a goroutine (its
** wake readies it on its state, gr_wait_prepare) or, through another wake
** function, any other party such as a host thread on a condition
** variable (g is NULL then, and it takes part in no select).
*/
#ifndef GR_WAIT_H
#define GR_WAIT_H

#include "copy.h"

/* One party waiting on one object (Go's sudog). */
struct gr_waiter {
  void (*wake) (gr_state *cur, gr_waiter *w);  /* readies the party; called
                           once, by its single waker, with no lock held;
                           cur is the waker's state, or NULL */
  gr_g *g;              /* the waiting goroutine, or NULL (immutable while
                           queued) */
  void *obj;            /* the object it waits on (a gr_chan for chans) */
  /* protected by the lock of obj: */
  gr_waiter *next, *prev;
  /* written by the waker before wake, read by the party after: */
  gr_value val;         /* value to send, or slot for the value received */
  unsigned char success; /* 1: completed by a communication; 0: by close */
  /* protected by the lock of obj: */
  unsigned char inq;    /* 1 while in obj's queue */
  /* immutable while queued: */
  unsigned char isselect;  /* one of several waiters of a select (g's) */
  unsigned char dir;    /* chan: GR_DIRRECV or GR_DIRSEND, its queue */
  int caseidx;          /* select: index of the case (1-based) */
};

/* Intrusive FIFO of waiters, protected by the lock of its object. */
typedef struct gr_waitq {
  gr_waiter *first, *last;
} gr_waitq;

/* Appends w. Requires the object's lock. */
void gr_waitq_push (gr_waitq *q, gr_waiter *w);
/* Puts w first. Requires the object's lock. */
void gr_waitq_pushfront (gr_waitq *q, gr_waiter *w);
/* Removes w, which must be queued. Requires the object's lock. */
void gr_waitq_remove (gr_waitq *q, gr_waiter *w);
/* Takes the first waiter that may be completed (skipping select waiters
** whose select another case won), or NULL. Requires the object's lock. */
gr_waiter *gr_waitq_pop (gr_waitq *q);
/* The wake of a goroutine's waiter: its state's scheduler runs it. */
void gr_wait_wakeg (gr_state *cur, gr_waiter *w);
void gr_sched_ready (gr_state *S, gr_g *g);   /* sched.h, which needs
                           the waiter type from here */

/* Readies w's party. The caller is w's single waker and holds no lock.
** A goroutine's waiter, the common case, is readied by a direct call. */
static inline void gr_wait_wake (gr_state *cur, gr_waiter *w) {
  if (w->wake == gr_wait_wakeg) gr_sched_ready(cur, w->g);
  else w->wake(cur, w);
}

/* Makes w a waiter of goroutine g on obj, not yet queued. */
static inline void gr_wait_prepare (gr_waiter *w, gr_g *g, void *obj,
                                    int dir) {
  w->wake = gr_wait_wakeg;
  w->g = g;
  w->obj = obj;
  w->isselect = 0;
  w->success = 0;
  w->dir = dir;
  gr_value_setnil(&w->val);
}
/* Ends an in-place wait of g that must raise: withdrawn says whether g's
** waiters were taken back before any waker took one. If they were not,
** waits until that waker's wake has landed (it cannot then end a later
** wait of g). Returns withdrawn. */
int gr_wait_settle (gr_g *g, int withdrawn);

#endif
