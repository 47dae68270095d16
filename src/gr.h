/*
** gr.h -- definitions shared by every file of the runtime: the forward
** types, the result codes, assertions and the two kinds of lock.
**
** Every lock of the runtime has a rank; a thread takes locks in strictly
** ascending rank, or, where the rank allows several, in ascending
** address order. GR_DEBUG builds check this at every lock (gr.c).
**   rank          the lock                      held
**   GR_LPOOLSTOP  P->stopmu of a worker pool    the pool's shutdown
**                 (gr_lock, with a condition)   handshake; before P->lock
**   GR_LPOOL      P->lock of a worker pool      before the monitor's or a
**                 (gr_lock: it is held across   mailbox at most; the
**                 thread creation and           monitor only tries it
**                 uv_async_send)                (gr_lock_trylock)
**   GR_LMONITOR   monlock of the preemption     the monitor, the preemption
**                 monitor (gr_lock)             hook, an interrupt at stop
**   GR_LTIMERLIFE gt.life (timer.c): start and  before gt.lock
**                 stop of the timer thread
**   GR_LTIMERS    gt.lock (timer.c): the        the timer thread fires
**                 process's timer heap          under it: before a
**                 (gr_lock)                     context, a channel, a
**                                               mailbox
**   GR_LCTX       c->mu of a context            one at a time
**   GR_LSYNC      o->lock of a sync object      one at a time
**   GR_LCHAN      c->lock of a shared channel   several only in select, in
**                                               ascending address order
**   GR_LMAILBOX   S->rlock, a state's mailbox   under the monitor's at
**                                               most (a dump request)
**   GR_LDUMP      the dump request (stack.c,    leaf
**                 gr_lock, with a condition)
**   GR_LWORKERINIT the host's worker set-up     leaf
**                 (embed.c: gr_set_worker_init)
**   GR_LTRACELIFE start and stop of the trace   before the trace's
**                 (trace.c, gr_lock)
**   GR_LTRACE     the trace's thread records    leaf: under any other
**                 and names (trace.c, gr_lock)  (a thread's first event)
** Nothing that can raise a Lua error runs under any of them, and a waiter
** is woken only after its object's lock is dropped: collect the waiters
** under the lock, unlock, then gr_wait_wake each one.
*/
#ifndef GR_H
#define GR_H

/* System and library headers come before the pragma below: what they
** declare is defined elsewhere and must keep default visibility. A .c
** file includes its own system headers before the runtime's (or they
** are listed here); one included after would be taken as hidden, and the
** link fails with "hidden symbol ... isn't defined". */
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "lua.h"
#include "lauxlib.h"

#include "goroutines.h"   /* the public API: GR_API, GR_OK, GR_CLOSED... */

/* Every name the runtime defines is hidden from the shared objects it is
** linked into, except the public API (GR_API in goroutines.h) and
** luaopen_*: set here, in the sources, because LuaRocks' builtin build
** passes no compiler flags. */
#pragma GCC visibility push(hidden)

typedef struct gr_state gr_state;   /* per Lua state scheduler (state.c) */
typedef struct gr_g gr_g;           /* one goroutine (sched.c) */
typedef struct gr_waiter gr_waiter; /* a goroutine parked on an object */
typedef struct gr_chan gr_chan;     /* channel (chan.c) */
typedef struct gr_timer gr_timer;   /* timer (timer.c) */

/* Results of the runtime's operations: GR_OK (0) or another outcome that
** is no failure; failures are negative (libuv's convention). */
/* GR_OK (0) and GR_CLOSED (1) are goroutines.h's. */
#define GR_WOULDBLOCK  2    /* it cannot complete without waiting */
#define GR_EDEADLOCK  (-1)  /* nothing can ever wake the blocked goroutine */
#define GR_EGOERR     (-2)  /* a goroutine died; main must raise its error */

#ifdef GR_DEBUG
#define GR_ASSERT(c)  assert(c)
#else
#define GR_ASSERT(c)  ((void)0)
#endif

enum {
  GR_LPOOLSTOP = 1, GR_LPOOL, GR_LMONITOR, GR_LTIMERLIFE, GR_LTIMERS,
  GR_LCTX, GR_LSYNC, GR_LCHAN, GR_LMAILBOX, GR_LDUMP, GR_LWORKERINIT,
  GR_LTRACELIFE, GR_LTRACE
};

#ifdef GR_DEBUG
/* Lock-rank bookkeeping of the calling thread (gr.c). */
void gr_rank_acquire (const void *lock, int rank);
void gr_rank_release (const void *lock);
/* A lock taken by a try, which never waits: no order to check. */
void gr_rank_tried (const void *lock, int rank);
#define GR_RANK_ACQUIRE(lock, rank)  gr_rank_acquire(lock, rank)
#define GR_RANK_RELEASE(lock)        gr_rank_release(lock)
#define GR_RANK_TRIED(lock, rank)    gr_rank_tried(lock, rank)
#else
#define GR_RANK_ACQUIRE(lock, rank)  ((void)0)
#define GR_RANK_RELEASE(lock)        ((void)0)
#define GR_RANK_TRIED(lock, rank)    ((void)0)
#endif

#ifdef GR_DEBUG
/* Which thread holds a lock, in debug builds (gr_mutex_held, gr_lock_held
** and the rank check read it). */
typedef struct gr_owner {
  int rank;             /* GR_L* */
  int held;             /* 1 while a thread holds the lock */
  pthread_t thread;     /* that thread, while held */
} gr_owner;

static inline void gr_owner_take (gr_owner *o) {
  o->thread = pthread_self();
  o->held = 1;
}

static inline int gr_owner_mine (const gr_owner *o) {
  return o->held && pthread_equal(o->thread, pthread_self());
}

static inline void gr_owner_drop (gr_owner *o) {
  assert(gr_owner_mine(o));
  o->held = 0;
}
#define GR_OWNER_INIT(o, r)  ((o)->rank = (r), (o)->held = 0)
#define GR_OWNER_TAKE(o)     gr_owner_take(o)
#define GR_OWNER_DROP(o)     gr_owner_drop(o)
#else
#define GR_OWNER_INIT(o, r)  ((void)(r))
#define GR_OWNER_TAKE(o)     ((void)0)
#define GR_OWNER_DROP(o)     ((void)0)
#endif

/* The lock of channels, sync objects, contexts and mailboxes: critical
** sections are a few dozen instructions, so a spinlock beats a mutex that
** sleeps and wakes through the kernel when two threads meet (a waiter
** whose holder was descheduled yields its core after a few spins). */
typedef struct gr_mutex {
  atomic_int locked;
#ifdef GR_DEBUG
  gr_owner own;
#endif
} gr_mutex;

#if defined(__x86_64__) || defined(__i386__)
#define GR_PAUSE()  __builtin_ia32_pause()
#else
#define GR_PAUSE()  ((void)0)
#endif

static inline void gr_mutex_init (gr_mutex *mu, int rank) {
  atomic_init(&mu->locked, 0);
  GR_OWNER_INIT(&mu->own, rank);
}

static inline void gr_mutex_destroy (gr_mutex *mu) {
  (void)mu;
}

static inline void gr_mutex_lock (gr_mutex *mu) {
  unsigned spins = 0;
  GR_RANK_ACQUIRE(mu, mu->own.rank);
  while (atomic_exchange_explicit(&mu->locked, 1, memory_order_acquire)) {
    while (atomic_load_explicit(&mu->locked, memory_order_relaxed)) {
      if (++spins < 100) GR_PAUSE();
      else sched_yield();
    }
  }
  GR_OWNER_TAKE(&mu->own);
}

static inline void gr_mutex_unlock (gr_mutex *mu) {
  GR_OWNER_DROP(&mu->own);
  atomic_store_explicit(&mu->locked, 0, memory_order_release);
  GR_RANK_RELEASE(mu);
}

#ifdef GR_DEBUG
static inline int gr_mutex_held (gr_mutex *mu) {
  return gr_owner_mine(&mu->own);
}
#endif

/* The lock of sections that may take long or sleep (thread creation, a
** libuv call): a mutex that sleeps, with the same rank checks. */
typedef struct gr_lock {
  uv_mutex_t m;
#ifdef GR_DEBUG
  gr_owner own;
#endif
} gr_lock;

static inline int gr_lock_init (gr_lock *lk, int rank) {
  GR_OWNER_INIT(&lk->own, rank);
  return uv_mutex_init(&lk->m);
}

static inline void gr_lock_destroy (gr_lock *lk) {
  uv_mutex_destroy(&lk->m);
}

static inline void gr_lock_lock (gr_lock *lk) {
  GR_RANK_ACQUIRE(lk, lk->own.rank);
  uv_mutex_lock(&lk->m);
  GR_OWNER_TAKE(&lk->own);
}

/* Takes lk only if it is free: returns 1 then, 0 without waiting. A try
** may be made under locks of any rank: a thread that never waits for it
** closes no cycle of waits. */
static inline int gr_lock_trylock (gr_lock *lk) {
  if (uv_mutex_trylock(&lk->m) != 0) return 0;
  GR_RANK_TRIED(lk, lk->own.rank);
  GR_OWNER_TAKE(&lk->own);
  return 1;
}

static inline void gr_lock_unlock (gr_lock *lk) {
  GR_OWNER_DROP(&lk->own);
  uv_mutex_unlock(&lk->m);
  GR_RANK_RELEASE(lk);
}

/* Waits on cond, releasing lk meanwhile (held again on return). */
static inline void gr_lock_wait (gr_lock *lk, uv_cond_t *cond) {
  GR_OWNER_DROP(&lk->own);
  uv_cond_wait(cond, &lk->m);
  GR_OWNER_TAKE(&lk->own);
}

/* Waits on cond for up to timeout ns, releasing lk meanwhile (it is held
** again on return), as uv_cond_timedwait. */
static inline void gr_lock_timedwait (gr_lock *lk, uv_cond_t *cond,
                                      uint64_t timeout) {
  GR_OWNER_DROP(&lk->own);
  (void)uv_cond_timedwait(cond, &lk->m, timeout);
  GR_OWNER_TAKE(&lk->own);
}

#ifdef GR_DEBUG
static inline int gr_lock_held (gr_lock *lk) {
  return gr_owner_mine(&lk->own);
}
#endif

/* Upvalues shared by every C function of the module (state.c sets them). */
#define GR_UV_STATE    lua_upvalueindex(1)  /* gr_statebox (its address) */
#define GR_UV_CHANMT   lua_upvalueindex(2)  /* metatable of channels */
#define GR_UV_CASEMT   lua_upvalueindex(3)  /* metatable of select cases */
#define GR_NUPVALUES   3
/* Methods registered with gr_state_setmethods have one more: the
** metatable of their kind of handle, so that checking a handle compares
** two tables instead of looking the metatable up by name. */
#define GR_UV_OWNMT    lua_upvalueindex(GR_NUPVALUES + 1)

/* The anchor of a state's scheduler (state.c): S is cleared when the
** scheduler closes, and a function that lua_close's late finalizers call
** must not reach the freed record; the host also clears it, from its
** thread, in the state of a worker it abandons at shutdown. */
typedef struct gr_statebox {
  _Atomic(gr_state *) S;  /* NULL once closed or abandoned */
  void (*close) (gr_state *S);  /* closes S when the Lua state closes */
} gr_statebox;

int gr_state_closederror (lua_State *L);

/* The scheduler of the state running a module function; raises once the
** scheduler is closed. */
static inline gr_state *gr_getstate (lua_State *L) {
  gr_statebox *box = (gr_statebox *)lua_touserdata(L, GR_UV_STATE);
  gr_state *S = atomic_load_explicit(&box->S, memory_order_acquire);
  if (S == NULL) gr_state_closederror(L);
  return S;
}

/* The userdata at idx if its metatable is the running function's upvalue
** mtup (GR_UV_CHANMT, GR_UV_OWNMT), else NULL. Two tables are the same
** if their addresses are: lua_topointer costs a third of lua_rawequal,
** and this check runs at every method call. */
static inline void *gr_testud (lua_State *L, int idx, int mtup) {
  void *u = lua_touserdata(L, idx);
  if (u != NULL && lua_getmetatable(L, idx)) {
    int same = lua_topointer(L, -1) == lua_topointer(L, mtup);
    lua_pop(L, 1);
    if (same) return u;
  }
  return NULL;
}

#endif
