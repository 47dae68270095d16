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

/* A mutex that knows, in debug builds, which thread holds it. */
typedef struct gr_mutex {
  pthread_mutex_t m;
#ifdef GR_DEBUG
  pthread_t owner;   /* valid while held != 0 */
  int held;
#endif
} gr_mutex;

/* Critical sections are a few dozen instructions: an adaptive mutex spins
** a little before it sleeps in the kernel. */
static inline void gr_mutex_init (gr_mutex *mu) {
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
#ifdef PTHREAD_MUTEX_ADAPTIVE_NP
  pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP);
#endif
  pthread_mutex_init(&mu->m, &attr);
  pthread_mutexattr_destroy(&attr);
#ifdef GR_DEBUG
  mu->held = 0;
#endif
}

static inline void gr_mutex_destroy (gr_mutex *mu) {
  pthread_mutex_destroy(&mu->m);
}

static inline void gr_mutex_lock (gr_mutex *mu) {
  pthread_mutex_lock(&mu->m);
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
  pthread_mutex_unlock(&mu->m);
}

#ifdef GR_DEBUG
static inline int gr_mutex_held (gr_mutex *mu) {
  return mu->held && pthread_equal(mu->owner, pthread_self());
}
#endif

/* Upvalues shared by every C function of the module (state.c sets them). */
#define GR_UV_STATE    lua_upvalueindex(1)  /* light userdata: gr_state */
#define GR_UV_CHANMT   lua_upvalueindex(2)  /* metatable of channels */
#define GR_UV_CASEMT   lua_upvalueindex(3)  /* metatable of select cases */
#define GR_NUPVALUES   3

static inline gr_state *gr_getstate (lua_State *L) {
  return (gr_state *)lua_touserdata(L, GR_UV_STATE);
}

#endif
