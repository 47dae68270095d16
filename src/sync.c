/*
** sync.c -- g.sync: waitgroup, mutex, once, rwmutex (and its rlocker),
** cond and semaphore: reference-counted C objects with a lock and FIFOs
** of parked goroutines, so that goroutines of any state may share them.
**
** Invariants (o->lock held, or for an unshared object its one thread):
**   waitgroup: o->n >= 0 is the counter; waiters are queued only while
**     o->n > 0, and all of them are woken when it reaches 0;
**   mutex: o->n is 1 while locked. Unlock hands the lock to the first
**     waiter (o->n stays 1) when waking it is cheap: a goroutine of the
**     unlocker's state, or a cond's waiter. One of another state, whose
**     wake crosses threads, is woken to retry instead, the lock left
**     free (Go's normal mode: who comes meanwhile may take it); if it
**     loses, it queues first and sets o->starving, so that the next
**     unlock hands the lock to it. So waiters are queued only while
**     locked, or while the one woken to retry has yet to run (a cancel
**     of it passes its turn on: passon);
**   once: o->n is 0 (not run), 1 (running: callers wait) or 2 (done);
**   rwmutex: o->n readers hold it, or a writer (o->wlocked, then o->n is
**     0); o->waiters are writers, o->readers readers. Writer preference
**     as Go's: o->wpending means the first queued writer has claimed the
**     lock and waits only for the o->n readers to leave, and a reader
**     that comes meanwhile queues. So waiters is non-empty only while
**     wlocked or wpending, readers only while wlocked or wpending, and
**     wpending implies !wlocked and n > 0. A writer's unlock admits every
**     queued reader first, then the next writer claims the lock (or takes
**     it when no reader came);
**   cond: o->waiters (FIFO) are its waiters; o->locker is the mutex or
**     rwmutex it waits with, whose lock guards the cond's queue too, so
**     that a wait unlocks and queues at once and a signal moves the waiter
**     straight into the locker's queue (or gives it the lock);
**   semaphore: o->n units of o->size are held; waiters are served in
**     FIFO order (as x/sync/semaphore): none is passed over, so a waiter
**     for a large weight blocks those after it.
** A queued waiter holds a ref on its object (w->obj; a cond holds one on
** its locker); w->dir names the queue it is in (Q*).
** Lock order: one object lock, never with a chan lock; wake after unlock.
** Leak detection (leak.c): a goroutine parked on an object that only its
**   state holds (o->shared unset, and its locker's for a cond) may be
**   anchored by the object's root handle, the one g.sync made: its other
**   handles in the state (an rlocker, a pinned once) hold the root in
**   their user value 2, and a cond's handle holds its locker's handle in
**   user value 1. Sharing an object pins its waiters (gr_sched_leakpin),
**   and so does a signal that moves a cond's waiter to a shared locker.
*/
#include <sched.h>
#include <stdlib.h>

#include "copy.h"
#include "errors.h"
#include "sched.h"
#include "state.h"
#include "sync.h"
#include "wait.h"

/* Kinds of handle. An rlocker is a handle of an rwmutex that locks it
** for reading (Go's RWMutex.RLocker). */
enum { WAITGROUP, MUTEX, ONCE, RWMUTEX, RLOCKER, COND, SEMAPHORE, NKINDS };
static const char *const mtnames[NKINDS] = {
  "goroutines.waitgroup", "goroutines.mutex", "goroutines.once",
  "goroutines.rwmutex", "goroutines.rlocker", "goroutines.cond",
  "goroutines.semaphore"
};

/* A mutex held by another thread is tried SPINS more times, SPINPAUSES
** pauses apart, before its locker parks (spin). */
#define SPINS       8
#define SPINPAUSES  30

/* How a lock is taken: a mutex, an rwmutex for writing or for reading. */
enum { LMUTEX, LWRITE, LREAD };

/* The queue a waiter is in (its w->dir): the waiters of the object whose
** lock guards it, the readers of an rwmutex, a cond's own queue. */
enum { QMAIN, QREAD, QCOND };

typedef struct gr_sync {
  gr_mutex lock;
  atomic_int refs;      /* handles and queued waiters (and conds on it) */
  int kind;             /* WAITGROUP ... SEMAPHORE, never RLOCKER
                           (immutable) */
  struct gr_sync *locker;  /* cond: its mutex or rwmutex, ref held; else
                           NULL (immutable) */
  int lmode;            /* cond: how it locks locker, L* (immutable) */
  atomic_int shared;    /* a handle crossed to another state: set once, by
                           the thread of the only state that held it */
  lua_Integer size;     /* semaphore: its size (immutable) */
  /* protected by lock (a cond's by locker->lock): */
  lua_Integer n;        /* counter, locked flag, once state, readers or
                           units held (above) */
  int wlocked;          /* rwmutex: a writer holds it */
  int starving;         /* mutex: the next unlock hands over (above) */
  int wpending;         /* rwmutex: the first writer waits for readers */
  gr_waitq waiters;
  gr_waitq readers;     /* rwmutex: readers waiting */
} gr_sync;

typedef struct gr_syncud {
  gr_sync *o;           /* holds one ref, dropped by __gc; NULL after */
  int kind;             /* the handle's kind (its metatable's) */
} gr_syncud;

/* The object whose lock guards o's queues. */
static gr_sync *lockof (gr_sync *o) {
  return o->locker ? o->locker : o;
}

static void release (gr_sync *o) {
  if (atomic_fetch_sub_explicit(&o->refs, 1, memory_order_acq_rel) == 1) {
    gr_sync *locker = o->locker;
    gr_mutex_destroy(&o->lock);
    free(o);
    if (locker) release(locker);
  }
}

static int isshared (gr_sync *o) {
  return atomic_load_explicit(&o->shared, memory_order_relaxed);
}

/* Takes the lock of o, whose lock guards queues (lockof): only once o is
** shared, as chan.c's gr_chan_lock. Before, the thread of the one state
** that holds o is the only one to touch it, and o->shared changes (in
** share, on that thread) only between two C calls, never inside a
** critical section; a handle reaches another state only through a pack,
** after share, so that state's thread sees it set. */
static void olock (gr_sync *o) {
  if (isshared(o)) gr_mutex_lock(&o->lock);
}

static void ounlock (gr_sync *o) {
  if (isshared(o)) gr_mutex_unlock(&o->lock);
}

#ifdef GR_DEBUG
/* Whether the caller may touch what o->lock guards. */
static int oheld (gr_sync *o) {
  return !isshared(o) || gr_mutex_held(&o->lock);
}
#endif

/* Returns the object of the live handle of kind at index 1, leaving the
** handle's metatable pushed; raises for another value or a handle already
** finalized. Only for the methods of kind (their GR_UV_OWNMT is its
** metatable) that read no optional argument (the metatable would stand
** for an absent one) and return nothing or values they push: the locks
** and unlocks, which so make three calls of Lua's API, not four. */
static gr_sync *checkmt (lua_State *L, int kind) {
  gr_syncud *u = (gr_syncud *)lua_touserdata(L, 1);
  if (u == NULL || !lua_getmetatable(L, 1) ||
      !lua_rawequal(L, -1, GR_UV_OWNMT))
    luaL_typeerror(L, 1, mtnames[kind]);
  if (u->o == NULL)
    luaL_error(L, "attempt to use a finalized %s", mtnames[kind]);
  return u->o;
}

/* As checkmt, for every method: the stack is left as it was. */
static gr_sync *check (lua_State *L, int kind) {
  gr_sync *o = checkmt(L, kind);
  lua_pop(L, 1);
  return o;
}

/* A list of waiters to wake, linked through w->next: collected under a
** lock, woken after it was dropped. */
typedef struct wakes {
  gr_waiter *first, **tail;
} wakes;

static void wakes_init (wakes *k) {
  k->first = NULL;
  k->tail = &k->first;
}

/* Adds w, which completed its wait (it holds what it waited for), or
** with success 0 (a mutex's waiter woken to retry) did not. */
static void wakes_put (wakes *k, gr_waiter *w, int success) {
  w->success = (unsigned char)success;
  w->next = NULL;
  *k->tail = w;
  k->tail = &w->next;
}

static void wakes_add (wakes *k, gr_waiter *w) {
  wakes_put(k, w, 1);
}

/* Wakes the list (S: the caller's state, or NULL). While the state
** closing runs its cancels (closing set), its own goroutines are not
** woken: they are freed next. */
static void wakelist (gr_state *S, wakes *k, gr_state *closing) {
  gr_waiter *w = k->first;
  while (w) {
    gr_waiter *next = w->next;   /* read before the goroutine runs */
    if (closing == NULL || w->g == NULL || w->g->S != closing)
      gr_wait_wake(S, w);
    w = next;
  }
  wakes_init(k);
}

/* Takes every waiter of q into k. Requires the queue's lock. */
static void takeall (gr_waitq *q, wakes *k) {
  gr_waiter *w;
  while ((w = gr_waitq_pop(q)) != NULL) wakes_add(k, w);
}


/* --- locks: mutex and rwmutex ----------------------------------------- */

/* Takes o in lmode if it is free for that at once. Requires o->lock. */
static int tryenter (gr_sync *o, int lmode) {
  GR_ASSERT(oheld(o));
  switch (lmode) {
    case LMUTEX:
      if (o->n != 0) return 0;
      o->n = 1;
      return 1;
    case LWRITE:
      if (o->wlocked || o->wpending || o->n != 0) return 0;
      o->wlocked = 1;
      return 1;
    default:
      if (o->wlocked || o->wpending) return 0;
      o->n++;
      return 1;
  }
}

/* Queues w for o in lmode, once tryenter failed. A writer that finds
** only readers claims the lock: readers that come after it wait.
** Requires o->lock. */
static void enqueue (gr_sync *o, gr_waiter *w, int lmode) {
  GR_ASSERT(oheld(o));
  if (lmode == LREAD) {
    w->dir = QREAD;
    gr_waitq_push(&o->readers, w);
    return;
  }
  w->dir = QMAIN;
  gr_waitq_push(&o->waiters, w);
  if (lmode == LWRITE && !o->wlocked) o->wpending = 1;
}

/* The first queued writer claims the rwmutex o (nobody writes): it takes
** it if no reader holds it, else waits for them. Requires o->lock. */
static void nextwriter (gr_sync *o, wakes *k) {
  o->wpending = o->waiters.first != NULL;
  if (o->wpending && o->n == 0) {
    o->wpending = 0;
    o->wlocked = 1;
    wakes_add(k, gr_waitq_pop(&o->waiters));
  }
}

/* Gives the rwmutex o to every queued reader. Requires o->lock. */
static void admitreaders (gr_sync *o, wakes *k) {
  gr_waiter *w;
  while ((w = gr_waitq_pop(&o->readers)) != NULL) {
    o->n++;
    wakes_add(k, w);
  }
}

/* Whether the mutex o passes to its first waiter w, woken by a thread
** that runs state cur (NULL: none, or unknown), rather than w retrying
** (see the invariants). Requires o->lock. */
static int handover (gr_sync *o, gr_waiter *w, gr_state *cur) {
  return o->starving || w->obj != (void *)o ||
         (w->g != NULL && w->g->S == cur);
}

/* The mutex o is free: its first waiter, if any, is woken to retry. For
** the cancel of a waiter that was woken so, whose turn it passes on.
** Requires o->lock. */
static void passon (gr_sync *o, wakes *k) {
  gr_waiter *w;
  if (o->n == 0 && (w = gr_waitq_pop(&o->waiters)) != NULL) {
    if (o->starving || w->obj != (void *)o) {
      o->starving = 0;
      o->n = 1;
      wakes_add(k, w);
    }
    else wakes_put(k, w, 0);
  }
}

/* Unlocks o held in lmode: the waiters that get it, or for a mutex retry
** for it, go to k (cur: the unlocker's state, or NULL). Returns 0, or -1
** when o is not held in lmode (nothing changed). Requires o->lock. */
static int leave (gr_sync *o, int lmode, gr_state *cur, wakes *k) {
  gr_waiter *w;
  GR_ASSERT(oheld(o));
  switch (lmode) {
    case LMUTEX:
      if (o->n == 0) return -1;
      w = gr_waitq_pop(&o->waiters);
      if (w == NULL) o->n = 0;
      else if (handover(o, w, cur)) {   /* the lock passes: n stays 1 */
        o->starving = 0;
        wakes_add(k, w);
      }
      else {
        o->n = 0;
        wakes_put(k, w, 0);
      }
      return 0;
    case LWRITE:
      if (!o->wlocked) return -1;
      o->wlocked = 0;
      admitreaders(o, k);         /* those who waited for this writer */
      nextwriter(o, k);
      return 0;
    default:
      if (o->n == 0) return -1;
      o->n--;
      if (o->n == 0 && o->wpending) nextwriter(o, k);
      return 0;
  }
}

static const char *const unlockerr[] = {
  "sync: unlock of unlocked mutex", "sync: Unlock of unlocked RWMutex",
  "sync: RUnlock of unlocked RWMutex"
};

/* Gives the queued semaphore waiters, in order, the units they wait for
** while there are enough for the first. Requires o->lock. */
static void semnotify (gr_sync *o, wakes *k) {
  gr_waiter *w;
  while ((w = o->waiters.first) != NULL && o->size - o->n >= w->val.u.i) {
    gr_waitq_remove(&o->waiters, w);
    o->n += w->val.u.i;
    wakes_add(k, w);
  }
}

/* Takes the queued w out of its queue, and lets the waiters that it held
** back go (to k): readers behind a pending writer that was the last
** writer, semaphore waiters behind the first one. Requires the lock of
** lockof(w->obj). */
static void withdraw (gr_waiter *w, wakes *k) {
  gr_sync *o = (gr_sync *)w->obj;
  int first;
  if (w->dir == QCOND) {
    gr_waitq_remove(&o->waiters, w);
    return;
  }
  o = lockof(o);
  if (w->dir == QREAD) {
    gr_waitq_remove(&o->readers, w);
    return;
  }
  first = o->waiters.first == w;
  gr_waitq_remove(&o->waiters, w);
  if (!first) return;
  if (o->kind == RWMUTEX && o->wpending) {
    if (o->waiters.first == NULL) {   /* the claim goes with w */
      o->wpending = 0;
      admitreaders(o, k);
    }
  }
  else if (o->kind == SEMAPHORE && o->size > o->n)
    semnotify(o, k);
}

/* Takes w back if it is still queued (closing: the state whose close
** runs this, or NULL). Returns whether it was. */
static int unqueue (gr_waiter *w, gr_state *S, gr_state *closing) {
  gr_sync *lk = lockof((gr_sync *)w->obj);
  wakes k;
  int was;
  wakes_init(&k);
  olock(lk);
  was = w->inq;
  if (was) withdraw(w, &k);
  ounlock(lk);
  wakelist(S, &k, closing);
  return was;
}

/* Pushes the root handle of the sync handle at idx. */
static void pushroot (lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  if (lua_getiuservalue(L, idx, 2) != LUA_TUSERDATA) {
    lua_pop(L, 1);
    lua_pushvalue(L, idx);
  }
}

/* leakops->roots: the handle is argument 1 of every wait; a cond's
** waiter may also be moved to its locker's queue. */
static int leakroots (lua_State *L, gr_g *g) {
  gr_sync *o = (gr_sync *)g->w.obj;
  luaL_checkstack(L, 4, NULL);
  lua_pushvalue(g->co, 1);
  lua_xmove(g->co, L, 1);
  pushroot(L, -1);
  if (o->kind != COND) {
    lua_remove(L, -2);
    return 1;
  }
  lua_getiuservalue(L, -2, 1);   /* the locker's handle */
  pushroot(L, -1);
  lua_remove(L, -2);
  lua_remove(L, -3);
  return 2;
}

/* Takes back the wait of g for good (closing: as unqueue). A mutex's
** waiter already woken to retry passes its turn on. */
static void dropwait (gr_g *g, gr_state *S, gr_state *closing) {
  gr_waiter *w = &g->w;
  gr_sync *o = (gr_sync *)w->obj;
  if (!unqueue(w, S, closing) && !w->success && o->kind == MUTEX) {
    wakes k;
    wakes_init(&k);
    olock(o);
    passon(o, &k);
    ounlock(o);
    wakelist(S, &k, closing);
  }
  release(o);
  w->obj = NULL;
}

/* leakops->drop: g was found leaked. */
static void leakdrop (lua_State *L, gr_g *g) {
  (void)L;
  if (g->w.obj == NULL) return;
  dropwait(g, g->S, NULL);   /* may let others go: they run */
  g->cancel = NULL;
}

static const gr_leakops leakops = { leakroots, leakdrop };

/* At the close of g's state. */
static void cancel (gr_g *g) {
  if (g->w.obj == NULL) return;
  dropwait(g, NULL, g->S);
}

static gr_waiter *begin (gr_state *S, gr_sync *o, int mode, int reason);
static int parkon (lua_State *L, gr_state *S, gr_sync *lk, int ret,
                   wakes *k);

/* Continuation of every sync wait (as chan.c's endwait): after an
** in-place wait that must raise, the waiter is removed and the error
** raised, unless a waker took it first: then the wait completes (a lock
** is owned) and the error waits for the next blocking call. A wait that
** completes returns the value at index ctx (a guard), or nothing (0).
** A mutex's waiter woken to retry (success 0) takes the lock if it is
** free, else queues first, where the next unlock hands it the lock (so
** an in-place wait nests at most once more); with an error to raise, it
** raises instead of waiting again. */
static int wait_k (lua_State *L, int status, lua_KContext ctx) {
  gr_state *S = gr_getstate(L);
  gr_g *g = S->current;
  gr_sync *o = (gr_sync *)g->w.obj;
  int mode;
  gr_waiter *w;
  if (status < 0 && gr_wait_settle(g, unqueue(&g->w, S, NULL))) {
    g->w.obj = NULL;
    g->cancel = NULL;
    release(o);
    gr_errors_raisewait(L, S, status);
  }
  g->w.obj = NULL;
  g->cancel = NULL;
  if (g->w.success || o->kind != MUTEX) {
    release(o);
    if (ctx == 0) return 0;
    lua_pushvalue(L, (int)ctx);
    return 1;
  }
  olock(o);
  if (tryenter(o, LMUTEX)) {
    ounlock(o);
    release(o);
    lua_pushvalue(L, (int)ctx);
    return 1;
  }
  mode = status < 0 ? GR_BLOCK_NO : gr_sched_blockmode(L, S);
  if (mode == GR_BLOCK_NO) {   /* o is held: no turn to pass on */
    ounlock(o);
    release(o);
    if (status < 0) gr_errors_raisewait(L, S, status);
    return gr_sched_cannotblock(L, GR_WMUTEX);
  }
  w = begin(S, o, mode, GR_WMUTEX);   /* a ref of its own */
  release(o);                          /* the first wait's: not the last */
  w->dir = QMAIN;
  gr_waitq_pushfront(&o->waiters, w);
  o->starving = 1;
  return parkon(L, S, o, (int)ctx, NULL);
}

/* Makes the current goroutine a waiter on o, not yet queued, holding a
** ref on o. Requires the lock of lockof(o). */
static gr_waiter *begin (gr_state *S, gr_sync *o, int mode, int reason) {
  gr_g *g = S->current;
  gr_waiter *w = &g->w;
  gr_wait_prepare(w, g, o, QMAIN);
  gr_sched_prepark(g, mode, reason, cancel);
  if (!isshared(o) && !(o->locker && isshared(o->locker)))
    gr_sched_leakpark(S, g, mode, &leakops);
  atomic_fetch_add_explicit(&o->refs, 1, memory_order_relaxed);
  return w;
}

/* Parks the current goroutine, queued by begin and a queue function on
** an object whose lock is lk's: drops that lock, wakes k, parks; then
** returns the value at index ret (0: nothing). */
static int parkon (lua_State *L, gr_state *S, gr_sync *lk, int ret,
                  wakes *k) {
  GR_ASSERT(oheld(lk));
  ounlock(lk);
  if (k) wakelist(S, k, NULL);
  return gr_sched_park(L, S, S->current, ret, wait_k);
}

/* Raises for GR_BLOCK_NO, with o->lock held: it drops it first. */
static int cannotblock (lua_State *L, gr_sync *o, int reason) {
  ounlock(o);
  return gr_sched_cannotblock(L, reason);
}

/* The caller's state, or NULL once its runtime is closed (a late
** finalizer); never raises. Wakes take NULL as a caller from elsewhere: an
** unlock that handed its lock over must wake the new holder even then. */
static gr_state *callerstate (lua_State *L) {
  gr_statebox *box = (gr_statebox *)lua_touserdata(L, GR_UV_STATE);
  return atomic_load_explicit(&box->S, memory_order_acquire);
}

/* Tries a little longer to lock the mutex o held by another thread: its
** holder may be about to unlock (as Go's sync.Mutex spins), and parking
** costs a wake across threads. Only while nobody queues (they come
** first) and o is shared (else its holder is parked on this thread).
** Returns whether it took o. Requires o->lock; holds it on return. */
static int spin (gr_sync *o) {
  int i, j;
  for (i = 0; i < SPINS && isshared(o) && o->waiters.first == NULL; i++) {
    ounlock(o);
    for (j = 0; j < SPINPAUSES; j++) GR_PAUSE();
    olock(o);
    if (tryenter(o, LMUTEX)) return 1;
  }
  return 0;
}

/* Locks o in lmode for the caller, waiting as long as it takes, then
** returns the guard: the value at index ret (the handle whose __close
** unlocks), or with ret 0 the value at the top, pushed by the caller. A
** lock taken at once needs no scheduler. */
static int lockin (lua_State *L, gr_sync *o, int lmode, int reason,
                   int ret) {
  gr_state *S;
  int mode;
  olock(o);
  if (tryenter(o, lmode)) {
    ounlock(o);
    if (ret != 0) lua_pushvalue(L, ret);
    return 1;
  }
  if ((S = callerstate(L)) == NULL) {   /* closed: as gr_getstate */
    ounlock(o);
    return gr_state_closederror(L);
  }
  if (ret == 0) ret = lua_gettop(L);
  mode = gr_sched_blockmode(L, S);   /* takes no lock, raises nothing */
  if (mode == GR_BLOCK_NO) return cannotblock(L, o, reason);
  if (lmode == LMUTEX && spin(o)) {
    ounlock(o);
    lua_pushvalue(L, ret);
    return 1;
  }
  enqueue(o, begin(S, o, mode, reason), lmode);
  return parkon(L, S, o, ret, NULL);
}

/* Unlocks o held in lmode, or raises Go's text when it is not. */
static int unlockin (lua_State *L, gr_sync *o, int lmode) {
  wakes k;
  int r;
  wakes_init(&k);
  olock(o);
  r = leave(o, lmode, o->waiters.first ? callerstate(L) : NULL, &k);
  ounlock(o);
  if (r < 0) return luaL_error(L, "%s", unlockerr[lmode]);
  if (k.first) wakelist(callerstate(L), &k, NULL);
  return 0;
}


/* --- waitgroup ------------------------------------------------------------ */

/* Adds delta to the counter, which stays in [0, LUA_MAXINTEGER]: a sum
** out of that range raises and changes nothing. As o->n >= 0, only a
** positive delta can overflow, and o->n + delta with delta < 0 cannot. */
static int add (lua_State *L, gr_sync *o, lua_Integer delta) {
  wakes k;
  wakes_init(&k);
  olock(o);
  if (delta > 0 && o->n > LUA_MAXINTEGER - delta) {
    ounlock(o);
    return luaL_error(L, "sync: WaitGroup counter overflow");
  }
  if (delta < 0 && o->n + delta < 0) {
    ounlock(o);
    return luaL_error(L, "sync: negative WaitGroup counter");
  }
  o->n += delta;
  if (o->n == 0) takeall(&o->waiters, &k);
  ounlock(o);
  if (k.first) wakelist(callerstate(L), &k, NULL);
  return 0;
}

static int lwg_add (lua_State *L) {
  gr_sync *o = check(L, WAITGROUP);
  return add(L, o, luaL_checkinteger(L, 2));
}

static int lwg_done (lua_State *L) {
  return add(L, check(L, WAITGROUP), -1);
}

static int lwg_wait (lua_State *L) {
  gr_state *S = gr_getstate(L);
  gr_sync *o = check(L, WAITGROUP);
  int mode = gr_sched_blockmode(L, S);
  olock(o);
  if (o->n == 0) {
    ounlock(o);
    return 0;
  }
  if (mode == GR_BLOCK_NO) return cannotblock(L, o, GR_WWAITGROUP);
  gr_waitq_push(&o->waiters, begin(S, o, mode, GR_WWAITGROUP));
  return parkon(L, S, o, 0, NULL);
}


/* --- mutex ---------------------------------------------------------------- */

/* mu:lock() -> mu, the guard: its __close unlocks */
static int lmu_lock (lua_State *L) {
  return lockin(L, checkmt(L, MUTEX), LMUTEX, GR_WMUTEX, 1);
}

static int lmu_unlock (lua_State *L) {
  return unlockin(L, checkmt(L, MUTEX), LMUTEX);
}


/* --- rwmutex -------------------------------------------------------------- */

static gr_syncud *newhandle (lua_State *L, gr_sync *o, int kind);

/* Pushes the rlocker of the rwmutex o of the handle at index 1, made at
** its first use and kept as the handle's user value. */
static void pushrlocker (lua_State *L, gr_sync *o) {
  if (lua_getiuservalue(L, 1, 1) == LUA_TUSERDATA) return;
  lua_pop(L, 1);
  newhandle(L, o, RLOCKER);
  pushroot(L, 1);
  lua_setiuservalue(L, -2, 2);
  lua_pushvalue(L, -1);
  lua_setiuservalue(L, 1, 1);
}

/* rw:lock() -> rw, the guard: its __close unlocks */
static int lrw_lock (lua_State *L) {
  return lockin(L, checkmt(L, RWMUTEX), LWRITE, GR_WRWLOCK, 1);
}

static int lrw_unlock (lua_State *L) {
  return unlockin(L, checkmt(L, RWMUTEX), LWRITE);
}

/* rw:rlock() -> rw:rlocker(), the guard: its __close runlocks */
static int lrw_rlock (lua_State *L) {
  gr_sync *o = checkmt(L, RWMUTEX);
  if (lua_getiuservalue(L, 1, 1) != LUA_TUSERDATA) {   /* the first */
    lua_settop(L, 1);
    pushrlocker(L, o);   /* may raise: before the lock */
  }
  return lockin(L, o, LREAD, GR_WRWRLOCK, 0);
}

static int lrw_runlock (lua_State *L) {
  return unlockin(L, checkmt(L, RWMUTEX), LREAD);
}

/* rw:rlocker(): a lock whose lock and unlock are rw's rlock and runlock
** (Go's RWMutex.RLocker), for a cond that waits holding a read lock. */
static int lrw_rlocker (lua_State *L) {
  gr_sync *o = check(L, RWMUTEX);
  lua_settop(L, 1);
  pushrlocker(L, o);
  return 1;
}

/* rl:lock() -> rl, the guard: its __close runlocks */
static int lrl_lock (lua_State *L) {
  return lockin(L, checkmt(L, RLOCKER), LREAD, GR_WRWRLOCK, 1);
}

static int lrl_unlock (lua_State *L) {
  return unlockin(L, checkmt(L, RLOCKER), LREAD);
}


/* --- cond ----------------------------------------------------------------- */

/* c:wait(): unlocks c's lock and waits for a signal, atomically; holds
** the lock again when it returns, as Go's Cond.Wait. A wait on a lock the
** caller does not hold raises the lock's unlock error, and waits not. */
static int lcond_wait (lua_State *L) {
  gr_state *S = gr_getstate(L);
  gr_sync *c = check(L, COND), *lk = c->locker;
  int mode = gr_sched_blockmode(L, S);
  wakes k;
  gr_waiter *w;
  if (mode == GR_BLOCK_NO) return gr_sched_cannotblock(L, GR_WCOND);
  wakes_init(&k);
  olock(lk);
  if (leave(lk, c->lmode, S, &k) < 0) {
    ounlock(lk);
    return luaL_error(L, "%s", unlockerr[c->lmode]);
  }
  w = begin(S, c, mode, GR_WCOND);
  w->dir = QCOND;
  gr_waitq_push(&c->waiters, w);
  return parkon(L, S, lk, 0, &k);
}

/* Wakes the first waiter of c (all with all): each goes on to lock c's
** lock, from c's queue straight into the lock's, or holding it. */
static int notify (lua_State *L, int all) {
  gr_sync *c = check(L, COND), *lk = c->locker;
  gr_waiter *w;
  wakes k;
  wakes_init(&k);
  olock(lk);
  while ((w = gr_waitq_pop(&c->waiters)) != NULL) {
    if (tryenter(lk, c->lmode)) wakes_add(&k, w);
    else {
      enqueue(lk, w, c->lmode);
      if (isshared(lk) && w->g) gr_sched_leakpin(w->g->S, w->g);
    }
    if (!all) break;
  }
  ounlock(lk);
  wakelist(gr_getstate(L), &k, NULL);
  return 0;
}

static int lcond_signal (lua_State *L) { return notify(L, 0); }
static int lcond_broadcast (lua_State *L) { return notify(L, 1); }


/* --- semaphore ------------------------------------------------------------ */

/* The weight at idx: an integer >= 0, 1 when absent. */
static lua_Integer weight (lua_State *L, int idx) {
  int isnum;
  lua_Integer k = lua_tointegerx(L, idx, &isnum);
  if (!isnum) k = luaL_optinteger(L, idx, 1);   /* absent, or raises */
  luaL_argcheck(L, k >= 0, idx, "weight must be a non-negative integer");
  return k;
}

/* The weight at 2, which a semaphore o of its size can ever grant: x/sync
** blocks until the context is done, here there is none. */
static lua_Integer checkweight (lua_State *L, gr_sync *o) {
  lua_Integer k = weight(L, 2);
  if (k > o->size)
    luaL_error(L, "semaphore: acquire of %I exceeds the size %I", k,
               o->size);
  return k;
}

/* Takes k units at once if they are free and nobody waits before us.
** Requires o->lock. */
static int semtry (gr_sync *o, lua_Integer k) {
  if (o->size - o->n < k || o->waiters.first != NULL) return 0;
  o->n += k;
  return 1;
}

static int lsem_acquire (lua_State *L) {
  gr_sync *o = check(L, SEMAPHORE);
  lua_Integer k = checkweight(L, o);
  gr_state *S;
  int mode;
  gr_waiter *w;
  olock(o);
  if (semtry(o, k)) {   /* no scheduler needed */
    ounlock(o);
    return 0;
  }
  if ((S = callerstate(L)) == NULL) {   /* closed: as gr_getstate */
    ounlock(o);
    return gr_state_closederror(L);
  }
  mode = gr_sched_blockmode(L, S);   /* takes no lock, raises nothing */
  if (mode == GR_BLOCK_NO) return cannotblock(L, o, GR_WSEMACQUIRE);
  w = begin(S, o, mode, GR_WSEMACQUIRE);
  w->val.type = GR_VINT;   /* the weight it waits for */
  w->val.u.i = k;
  gr_waitq_push(&o->waiters, w);
  return parkon(L, S, o, 0, NULL);
}

static int lsem_tryacquire (lua_State *L) {
  gr_sync *o = check(L, SEMAPHORE);
  lua_Integer k = checkweight(L, o);
  int r;
  olock(o);
  r = semtry(o, k);
  ounlock(o);
  lua_pushboolean(L, r);
  return 1;
}

static int lsem_release (lua_State *L) {
  gr_sync *o = check(L, SEMAPHORE);
  lua_Integer k = weight(L, 2);
  wakes q;
  wakes_init(&q);
  olock(o);
  if (k > o->n) {
    ounlock(o);
    return luaL_error(L, "semaphore: released more than held");
  }
  o->n -= k;
  semnotify(o, &q);
  ounlock(o);
  if (q.first) wakelist(callerstate(L), &q, NULL);
  return 0;
}


/* --- once ----------------------------------------------------------------- */

/* After f returned or raised: once is done either way (as Go's Once);
** callers that waited are released, and an error goes on to the caller. */
static int once_k (lua_State *L, int status, lua_KContext ctx) {
  gr_sync *o = (gr_sync *)ctx;
  wakes k;
  wakes_init(&k);
  olock(o);
  o->n = 2;
  takeall(&o->waiters, &k);
  ounlock(o);
  wakelist(gr_getstate(L), &k, NULL);
  if (status != LUA_OK && status != LUA_YIELD) return lua_error(L);
  return 0;
}

static int lonce_call (lua_State *L) {
  gr_state *S = gr_getstate(L);
  gr_sync *o = check(L, ONCE);
  int mode;
  gr_sched_checkcallable(L, 2);   /* before o is marked running: a bad
                                     argument does not use it up */
  lua_settop(L, 2);
  mode = gr_sched_blockmode(L, S);
  for (;;) {
    olock(o);
    if (o->n == 2) {
      ounlock(o);
      return 0;
    }
    if (o->n == 1) {
      if (mode == GR_BLOCK_NO) return cannotblock(L, o, GR_WONCE);
      gr_waitq_push(&o->waiters, begin(S, o, mode, GR_WONCE));
      return parkon(L, S, o, 0, NULL);
    }
    if (lua_gettop(L) == 3) break;   /* pinned: run f */
    ounlock(o);
    /* A second handle of o, out of the user's reach, so that o outlives
    ** f even if f finalizes the handle it was called through. May raise:
    ** without the lock, then look again. */
    newhandle(L, o, ONCE);
    pushroot(L, 1);   /* waiters hang from the root: the pin reaches it */
    lua_setiuservalue(L, -2, 2);
  }
  o->n = 1;
  ounlock(o);
  lua_pushvalue(L, 2);
  /* The pinned handle at index 3 keeps o alive until once_k runs. */
  return once_k(L, lua_pcallk(L, 0, 0, 0, (lua_KContext)o, once_k),
                (lua_KContext)o);
}


/* --- transfer (copy.c) ------------------------------------------------------ */

/* Marks o shared, once: its waiters, all of this state's until now, may
** be woken by another state from now on. */
static void share (gr_sync *o) {
  gr_waiter *w;
  int q;
  if (isshared(o)) return;
  gr_mutex_lock(&o->lock);
  for (q = 0; q < 2; q++)
    for (w = q ? o->readers.first : o->waiters.first; w; w = w->next)
      if (w->g) gr_sched_leakpin(w->g->S, w->g);
  atomic_store_explicit(&o->shared, 1, memory_order_relaxed);
  gr_mutex_unlock(&o->lock);
}

/* A handle in a pack (copy.c): the object crosses with a new ref; its
** kind is the type's (one type per kind, whose aux it is). */
static void *synctake (lua_State *L, int idx, int *aux) {
  gr_syncud *u = (gr_syncud *)lua_touserdata(L, idx);
  (void)L;
  if (u->o == NULL) return NULL;
  share(u->o);
  if (u->o->locker) share(u->o->locker);   /* a cond's wait unlocks it */
  atomic_fetch_add_explicit(&u->o->refs, 1, memory_order_relaxed);
  *aux = u->kind;
  return u->o;
}

/* A handle of o of kind, empty until it holds its ref (so that a failed
** allocation strands none); an rwmutex's keeps its rlocker (user value
** 1), a cond's its locker's handle (user value 1), a second handle of
** an object in this state its root (user value 2). May raise before it
** takes the ref. */
static gr_syncud *pushud (lua_State *L, int kind) {
  gr_syncud *u = (gr_syncud *)lua_newuserdatauv(L, sizeof(*u), 2);
  u->o = NULL;
  u->kind = kind;
  luaL_setmetatable(L, mtnames[kind]);
  return u;
}

/* Pushes a new handle of o of kind, with a ref of its own. */
static gr_syncud *newhandle (lua_State *L, gr_sync *o, int kind) {
  gr_syncud *u = pushud(L, kind);
  atomic_fetch_add_explicit(&o->refs, 1, memory_order_relaxed);
  u->o = o;
  return u;
}

static void syncpush (lua_State *L, void *obj, int kind) {
  pushud(L, kind)->o = (gr_sync *)obj;   /* the pack's ref is the
                                             handle's now */
}

static void syncdrop (lua_State *L, void *obj) {
  (void)L;
  release((gr_sync *)obj);
}

static const gr_objtype synctypes[NKINDS] = {
  { "goroutines.waitgroup", synctake, syncpush, syncdrop, NULL },
  { "goroutines.mutex", synctake, syncpush, syncdrop, NULL },
  { "goroutines.once", synctake, syncpush, syncdrop, NULL },
  { "goroutines.rwmutex", synctake, syncpush, syncdrop, NULL },
  { "goroutines.rlocker", synctake, syncpush, syncdrop, NULL },
  { "goroutines.cond", synctake, syncpush, syncdrop, NULL },
  { "goroutines.semaphore", synctake, syncpush, syncdrop, NULL },
};


/* --- handles -------------------------------------------------------------- */

/* Pushes a handle of a new object of kind (locker: a cond's, with a ref
** taken here). */
static gr_sync *newobj (lua_State *L, int kind, gr_sync *locker) {
  gr_syncud *u;
  gr_sync *o;
  gr_getstate(L);   /* raises once closed: no finalizer would free it */
  u = pushud(L, kind);
  o = (gr_sync *)calloc(1, sizeof(gr_sync));
  if (o == NULL) luaL_error(L, "not enough memory");
  gr_mutex_init(&o->lock, GR_LSYNC);
  atomic_init(&o->refs, 1);
  o->kind = kind;
  if (locker) {
    atomic_fetch_add_explicit(&locker->refs, 1, memory_order_relaxed);
    o->locker = locker;
  }
  u->o = o;
  return o;
}

static int lwaitgroup (lua_State *L) {
  newobj(L, WAITGROUP, NULL);
  return 1;
}
static int lmutex (lua_State *L) {
  newobj(L, MUTEX, NULL);
  return 1;
}
static int lonce (lua_State *L) {
  newobj(L, ONCE, NULL);
  return 1;
}
static int lrwmutex (lua_State *L) {
  newobj(L, RWMUTEX, NULL);
  return 1;
}

/* g.sync.cond(l): l is a mutex, an rwmutex (locked for writing) or an
** rlocker (for reading), as Go's NewCond(l Locker). */
static int lcond (lua_State *L) {
  static const int kinds[] = { MUTEX, RWMUTEX, RLOCKER };
  static const int lmodes[] = { LMUTEX, LWRITE, LREAD };
  int i;
  for (i = 0; i < 3; i++) {
    gr_syncud *u = (gr_syncud *)luaL_testudata(L, 1, mtnames[kinds[i]]);
    if (u == NULL) continue;
    if (u->o == NULL)
      return luaL_error(L, "attempt to use a finalized %s", mtnames[u->kind]);
    newobj(L, COND, u->o)->lmode = lmodes[i];
    lua_pushvalue(L, 1);   /* its waiters may move to the locker's queue */
    lua_setiuservalue(L, -2, 1);
    return 1;
  }
  return luaL_typeerror(L, 1, "goroutines.mutex, rwmutex or rlocker");
}

/* g.sync.semaphore(n): Go's semaphore.NewWeighted(n) */
static int lsemaphore (lua_State *L) {
  lua_Integer n = luaL_checkinteger(L, 1);
  luaL_argcheck(L, n >= 0, 1, "size must be a non-negative integer");
  newobj(L, SEMAPHORE, NULL)->size = n;
  return 1;
}

/* __gc of every kind: drops the handle's ref; idempotent. */
static int gc (lua_State *L, int kind) {
  gr_syncud *u = (gr_syncud *)luaL_checkudata(L, 1, mtnames[kind]);
  if (u->o) {
    gr_sync *o = u->o;
    u->o = NULL;
    release(o);
  }
  return 0;
}

/* "goroutines.mutex: 0x...", the address of the C object (the same in
** every state that holds a handle of it; an rwmutex's for its rlocker). */
static int tostr (lua_State *L, int kind) {
  gr_syncud *u = (gr_syncud *)luaL_checkudata(L, 1, mtnames[kind]);
  if (u->o) lua_pushfstring(L, "%s: %p", mtnames[kind], (void *)u->o);
  else lua_pushfstring(L, "%s: finalized", mtnames[kind]);
  return 1;
}

#define KINDFUNCS(k, name) \
  static int name##_gc (lua_State *L) { return gc(L, k); } \
  static int name##_tostring (lua_State *L) { return tostr(L, k); }
KINDFUNCS(WAITGROUP, lwg)
KINDFUNCS(MUTEX, lmu)
KINDFUNCS(ONCE, lonce)
KINDFUNCS(RWMUTEX, lrw)
KINDFUNCS(RLOCKER, lrl)
KINDFUNCS(COND, lcond)
KINDFUNCS(SEMAPHORE, lsem)

static const luaL_Reg wgmethods[] = {
  {"add", lwg_add}, {"done", lwg_done}, {"wait", lwg_wait}, {NULL, NULL}
};
static const luaL_Reg mumethods[] = {
  {"lock", lmu_lock}, {"unlock", lmu_unlock}, {NULL, NULL}
};
static const luaL_Reg oncemethods[] = {
  {"call", lonce_call}, {NULL, NULL}
};
static const luaL_Reg rwmethods[] = {
  {"lock", lrw_lock}, {"unlock", lrw_unlock}, {"rlock", lrw_rlock},
  {"runlock", lrw_runlock}, {"rlocker", lrw_rlocker}, {NULL, NULL}
};
static const luaL_Reg rlmethods[] = {
  {"lock", lrl_lock}, {"unlock", lrl_unlock}, {NULL, NULL}
};
static const luaL_Reg condmethods[] = {
  {"wait", lcond_wait}, {"signal", lcond_signal},
  {"broadcast", lcond_broadcast}, {NULL, NULL}
};
static const luaL_Reg semmethods[] = {
  {"acquire", lsem_acquire}, {"try_acquire", lsem_tryacquire},
  {"release", lsem_release}, {NULL, NULL}
};
static const luaL_Reg *const methods[NKINDS] = {
  wgmethods, mumethods, oncemethods, rwmethods, rlmethods, condmethods,
  semmethods
};

static const luaL_Reg funcs[] = {
  {"waitgroup", lwaitgroup}, {"mutex", lmutex}, {"once", lonce},
  {"rwmutex", lrwmutex}, {"cond", lcond}, {"semaphore", lsemaphore},
  {NULL, NULL}
};

/* A lock's guard is its handle: __close unlocks it (so that
** `local _ <close> = mu:lock()` is Go's `defer mu.Unlock()`). */
static const luaL_Reg metamethods[NKINDS][4] = {
  {{"__gc", lwg_gc}, {"__tostring", lwg_tostring}, {NULL, NULL}},
  {{"__gc", lmu_gc}, {"__tostring", lmu_tostring},
   {"__close", lmu_unlock}, {NULL, NULL}},
  {{"__gc", lonce_gc}, {"__tostring", lonce_tostring}, {NULL, NULL}},
  {{"__gc", lrw_gc}, {"__tostring", lrw_tostring},
   {"__close", lrw_unlock}, {NULL, NULL}},
  {{"__gc", lrl_gc}, {"__tostring", lrl_tostring},
   {"__close", lrl_unlock}, {NULL, NULL}},
  {{"__gc", lcond_gc}, {"__tostring", lcond_tostring}, {NULL, NULL}},
  {{"__gc", lsem_gc}, {"__tostring", lsem_tostring}, {NULL, NULL}},
};

/* Registers g.sync in the module table at the top of L. */
void gr_sync_open (lua_State *L) {
  int kind;
  for (kind = 0; kind < NKINDS; kind++) {
    luaL_newmetatable(L, mtnames[kind]);
    gr_objtype_set(L, -1, &synctypes[kind]);
    gr_state_setmethods(L, metamethods[kind], -1);
    lua_newtable(L);
    gr_state_setmethods(L, methods[kind], -2);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
  }
  lua_newtable(L);
  gr_state_setfuncs(L, funcs);
  lua_setfield(L, -2, "sync");
}
