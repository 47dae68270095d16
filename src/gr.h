/*
** gr.h -- definitions shared by every file of the runtime: the forward
** types, the error codes, assertions and the mutex wrapper.
**
** Lock order (written once here, checked by GR_DEBUG builds through
** gr_mutex_held): a goroutine never holds more than the locks of one
** operation.
**   chan locks (several only in select, taken in ascending address order)
**   < sync object lock (waitgroup, mutex, once; never together with a chan)
**   < state remote-queue lock (leaf: taken only to hand a goroutine to its
**     state; never held while taking another lock)
** Waking is always done after the object lock is dropped: collect the
** waiters under the lock, unlock, then gr_sched_ready each one.
*/
#ifndef GR_H
#define GR_H

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "lua.h"
#include "lauxlib.h"

typedef struct gr_state gr_state;   /* per Lua state scheduler (state.c) */
typedef struct gr_g gr_g;           /* one goroutine (sched.c) */
typedef struct gr_waiter gr_waiter; /* a goroutine parked on an object */
typedef struct gr_chan gr_chan;     /* channel (chan.c) */
typedef struct gr_timer gr_timer;   /* timer (timer.c) */

/* Internal error codes: 0 is success, failures are negative (libuv). */
#define GR_EDEADLOCK  (-1)  /* nothing can ever wake the blocked goroutine */
#define GR_EGOERR     (-2)  /* a goroutine died; main must raise its error */

#ifdef GR_DEBUG
#include <assert.h>
#define GR_ASSERT(c)  assert(c)
#else
#define GR_ASSERT(c)  ((void)0)
#endif

/* The lock of channels, sync objects, run queues and the pool: critical
** sections are a few dozen instructions, so a spinlock beats a mutex that
** sleeps and wakes through the kernel when two threads meet (a waiter
** whose holder was descheduled yields its core after a few spins). Debug
** builds know which thread holds it. */
typedef struct gr_mutex {
  atomic_int locked;
#ifdef GR_DEBUG
  pthread_t owner;   /* valid while held != 0 */
  int held;
#endif
} gr_mutex;

#if defined(__x86_64__) || defined(__i386__)
#define GR_PAUSE()  __builtin_ia32_pause()
#else
#define GR_PAUSE()  ((void)0)
#endif

static inline void gr_mutex_init (gr_mutex *mu) {
  atomic_init(&mu->locked, 0);
#ifdef GR_DEBUG
  mu->held = 0;
#endif
}

static inline void gr_mutex_destroy (gr_mutex *mu) {
  (void)mu;
}

static inline void gr_mutex_lock (gr_mutex *mu) {
  unsigned spins = 0;
  while (atomic_exchange_explicit(&mu->locked, 1, memory_order_acquire)) {
    while (atomic_load_explicit(&mu->locked, memory_order_relaxed)) {
      if (++spins < 100) GR_PAUSE();
      else sched_yield();
    }
  }
#ifdef GR_DEBUG
  mu->owner = pthread_self();
  mu->held = 1;
#endif
}

static inline void gr_mutex_unlock (gr_mutex *mu) {
#ifdef GR_DEBUG
  assert(mu->held && pthread_equal(mu->owner, pthread_self()));
  mu->held = 0;
#endif
  atomic_store_explicit(&mu->locked, 0, memory_order_release);
}

#ifdef GR_DEBUG
static inline int gr_mutex_held (gr_mutex *mu) {
  return mu->held && pthread_equal(mu->owner, pthread_self());
}
#endif

/* Upvalues shared by every C function of the module (state.c sets them). */
#define GR_UV_STATE    lua_upvalueindex(1)  /* gr_statebox (full userdata) */
#define GR_UV_CHANMT   lua_upvalueindex(2)  /* metatable of channels */
#define GR_UV_CASEMT   lua_upvalueindex(3)  /* metatable of select cases */
#define GR_NUPVALUES   3

/* The anchor of a state's scheduler (state.c): S is cleared when the
** scheduler closes, and a function that lua_close's late finalizers call
** must not reach the freed record; the host also clears it, from its
** thread, in the state of a worker it abandons at shutdown. */
typedef struct gr_statebox {
  _Atomic(gr_state *) S;  /* NULL once closed or abandoned */
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

#endif
