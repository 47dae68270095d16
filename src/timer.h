/*
** timer.h -- timers: a heap per state with one libuv timer armed at its
** earliest entry, a heap for the process fired by the timer thread; the
** functions g.time (gtime.c) builds on.
*/
#ifndef GR_TIMER_H
#define GR_TIMER_H

#include "sched.h"

#define NOHEAP ((size_t)-1)   /* gr_timer.idx of an inactive timer */

/* Kinds: a sleep, a send on a channel (after, tick, timer, ticker), an
** after_func, a call (a context deadline). */
enum { GR_TSLEEP, GR_TSEND, GR_TFUNC, GR_TCALL };

/* One timer; timer.c's opening comment states who owns each kind. */

struct gr_timer {
  uint64_t when;        /* deadline, uv_hrtime() ns */
  uint64_t seq;         /* insertion order: ties fire in FIFO order */
  uint64_t period;      /* ns between ticks; 0 for a one-shot timer */
  size_t idx;           /* heap position, NOHEAP when inactive */
  int kind;             /* GR_T* (immutable) */
  int global;           /* in the process heap (see the invariants) */
  int reserved;         /* GR_TSEND: holds a slot of gt.heap (gt.lock) */
  int ud;               /* GR_TFUNC: a Lua handle owns this timer */
  int firing;           /* GR_TFUNC: fire() runs it; a collected handle
                           leaves the free to fire() */
  gr_state *S;          /* local timer: its state; NULL once it closed
                           (only for the timers in its heap then) */
  gr_g *g;              /* GR_TSLEEP: the sleeper */
  gr_chan *c;           /* GR_TSEND: its channel, which owns it */
  int fref;             /* GR_TFUNC: registry ref of the function */
  void (*call) (void *arg, int fired);  /* GR_TCALL */
  gr_timer **slot;      /* GR_TCALL: where its caller keeps it (or NULL),
                           cleared under gt.lock before the call */
  void *arg;
};


/* Whether a timer of S can still wake something by itself. */
int gr_timer_pending (gr_state *S);
/* Calls call(arg, 1) on the timer thread d seconds from now, or
** call(arg, 0) if the process's last state closes first. */
void gr_timer_callsafe (lua_State *L, double d,
                        void (*call) (void *arg, int fired), void *arg,
                        gr_timer **slot);
/* Takes back the call that *slot holds, if it is still pending: then
** call(arg, 0) runs here. Never from a call (the timer thread). */
void gr_timer_uncall (gr_timer **slot);
/* Makes S's timer heap and installs S->timerops; 0 or -1. */
int gr_timer_init (gr_state *S);
/* Before S frees its goroutines: the timer thread wakes none of them. */
void gr_timer_pause (gr_state *S);
/* At S's close: frees or detaches its timers. */
void gr_timer_closeall (gr_state *S);
/* For g.time (time.c): a new inactive timer of kind; raises without
** memory. */
gr_timer *gr_timer_new (lua_State *L, gr_state *S, int kind);
/* Makes t, a channel timer, its channel's (c's hook owns and frees it). */
void gr_timer_attach (gr_timer *t, gr_chan *c);
/* Arms the inactive t d seconds from now; raises without memory (then
** frees a timer nothing else owns). */
void gr_timer_start (lua_State *L, gr_state *S, gr_timer *t, double d);
/* A period of d seconds in ns, at least 1. */
uint64_t gr_timer_period (double d);
/* Stops t: whether it was active or had an unreceived value. */
int gr_timer_stop (gr_state *S, gr_timer *t);
/* Stops t and arms it d seconds from now: as gr_timer_stop, or -1. */
int gr_timer_reset (gr_state *S, gr_timer *t, double d);
/* The handle of t was collected. */
void gr_timer_dropud (lua_State *L, gr_timer *t);
/* Takes back g's sleep timer when its in-place sleep must raise. */
void gr_timer_cancelsleep (gr_state *S, gr_g *g);
/* Whether t belongs to no closed state. */
int gr_timer_usable (gr_timer *t);

#endif
