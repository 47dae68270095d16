/*
** sync.c -- g.sync.waitgroup, mutex and once: reference-counted C objects
** with a lock and a FIFO of parked goroutines, so that goroutines of any
** state may share them.
**
** Invariants (o->lock held):
**   waitgroup: o->n >= 0 is the counter; waiters are queued only while
**     o->n > 0, and all of them are woken when it reaches 0;
**   mutex: o->n is 1 while locked; waiters are queued only while locked;
**     unlock hands the lock to the first waiter (o->n stays 1);
**   once: o->n is 0 (not run), 1 (running: callers wait) or 2 (done).
** A queued waiter holds a ref on its object.
** Lock order: one object lock, never with a chan lock; wake after unlock.
*/
#include <sched.h>
#include <stdlib.h>

#include "copy.h"
#include "errors.h"
#include "sched.h"
#include "state.h"
#include "sync.h"
#include "wait.h"

enum { WAITGROUP, MUTEX, ONCE };
static const char *const mtnames[] = {
  "goroutines.waitgroup", "goroutines.mutex", "goroutines.once"
};

typedef struct gr_sync {
  gr_mutex lock;
  atomic_int refs;      /* handles and queued waiters */
  /* protected by lock: */
  lua_Integer n;        /* counter, locked flag or once state (above) */
  gr_waitq waiters;
} gr_sync;

typedef struct gr_syncud {
  gr_sync *o;           /* holds one ref, dropped by __gc; NULL after */
  int kind;             /* WAITGROUP, MUTEX or ONCE (its metatable's) */
} gr_syncud;

static void release (gr_sync *o) {
  if (atomic_fetch_sub_explicit(&o->refs, 1, memory_order_acq_rel) == 1) {
    gr_mutex_destroy(&o->lock);
    free(o);
  }
}

/* Returns the object of the live handle of kind at index 1; raises for
** another value or a handle already finalized. */
static gr_sync *check (lua_State *L, int kind) {
  gr_syncud *u = (gr_syncud *)luaL_checkudata(L, 1, mtnames[kind]);
  if (u->o == NULL)
    luaL_error(L, "attempt to use a finalized %s", mtnames[kind]);
  return u->o;
}

/* Wakes a list of waiters linked through w->next (collected under the
** lock, woken after it was dropped). */
static void wakelist (gr_state *S, gr_waiter *w) {
  while (w) {
    gr_waiter *next = w->next;   /* read before the goroutine runs */
    gr_wait_wake(S, w);
    w = next;
  }
}

/* Takes every waiter of o into a list. Requires o->lock. */
static gr_waiter *takeall (gr_sync *o) {
  gr_waiter *w, *list = NULL, **tail = &list;
  GR_ASSERT(gr_mutex_held(&o->lock));
  while ((w = gr_waitq_pop(&o->waiters)) != NULL) {
    w->success = 1;
    *tail = w;
    tail = &w->next;
  }
  *tail = NULL;
  return list;
}

static int unqueue (gr_waiter *w) {
  gr_sync *o = (gr_sync *)w->obj;
  int was;
  gr_mutex_lock(&o->lock);
  was = w->inq;
  if (was) gr_waitq_remove(&o->waiters, w);
  gr_mutex_unlock(&o->lock);
  return was;
}

static void cancel (gr_g *g) {
  if (g->w.obj == NULL) return;
  unqueue(&g->w);
  release((gr_sync *)g->w.obj);
  g->w.obj = NULL;
}

/* Continuation of every sync wait (as chan.c's endwait): after an
** in-place wait that must raise, the waiter is removed and the error
** raised, unless a waker took it first: then the wait completes (a mutex
** is owned) and the error waits for the next blocking call. */
static int wait_k (lua_State *L, int status, lua_KContext ctx) {
  gr_state *S = gr_getstate(L);
  gr_g *g = S->current;
  gr_sync *o = (gr_sync *)g->w.obj;
  (void)ctx;
  if (status < 0 && gr_wait_settle(g, unqueue(&g->w))) {
    g->w.obj = NULL;
    g->cancel = NULL;
    release(o);
    gr_errors_raisewait(L, S, status);
  }
  g->w.obj = NULL;
  g->cancel = NULL;
  release(o);
  return 0;
}

/* Parks the current goroutine on o. Requires o->lock; drops it. */
static int park (lua_State *L, gr_state *S, gr_sync *o, int mode,
                 int reason) {
  gr_g *g = S->current;
  gr_waiter *w = &g->w;
  GR_ASSERT(gr_mutex_held(&o->lock));
  gr_wait_prepare(w, g, o, 0);
  gr_sched_prepark(g, mode, reason, cancel);
  gr_waitq_push(&o->waiters, w);
  atomic_fetch_add_explicit(&o->refs, 1, memory_order_relaxed);
  gr_mutex_unlock(&o->lock);
  return gr_sched_park(L, S, g, 0, wait_k);
}

/* Decides how to block before o's lock is taken; raises for GR_BLOCK_NO
** only when blocking turns out to be needed (then o->lock is dropped). */
static int cannotblock (lua_State *L, gr_sync *o, int reason) {
  gr_mutex_unlock(&o->lock);
  return gr_sched_cannotblock(L, reason);
}


/* --- waitgroup ------------------------------------------------------------ */

/* Adds delta to the counter, which stays in [0, LUA_MAXINTEGER]: a sum
** out of that range raises and changes nothing. As o->n >= 0, only a
** positive delta can overflow, and o->n + delta with delta < 0 cannot. */
static int add (lua_State *L, gr_sync *o, lua_Integer delta) {
  gr_waiter *wake = NULL;
  gr_mutex_lock(&o->lock);
  if (delta > 0 && o->n > LUA_MAXINTEGER - delta) {
    gr_mutex_unlock(&o->lock);
    return luaL_error(L, "sync: WaitGroup counter overflow");
  }
  if (delta < 0 && o->n + delta < 0) {
    gr_mutex_unlock(&o->lock);
    return luaL_error(L, "sync: negative WaitGroup counter");
  }
  o->n += delta;
  if (o->n == 0) wake = takeall(o);
  gr_mutex_unlock(&o->lock);
  wakelist(gr_getstate(L), wake);
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
  gr_mutex_lock(&o->lock);
  if (o->n == 0) {
    gr_mutex_unlock(&o->lock);
    return 0;
  }
  if (mode == GR_BLOCK_NO) return cannotblock(L, o, GR_WWAITGROUP);
  return park(L, S, o, mode, GR_WWAITGROUP);
}


/* --- mutex ---------------------------------------------------------------- */

static int lmu_lock (lua_State *L) {
  gr_state *S = gr_getstate(L);
  gr_sync *o = check(L, MUTEX);
  int mode = gr_sched_blockmode(L, S);
  gr_mutex_lock(&o->lock);
  if (o->n == 0) {
    o->n = 1;
    gr_mutex_unlock(&o->lock);
    return 0;
  }
  if (mode == GR_BLOCK_NO) return cannotblock(L, o, GR_WMUTEX);
  return park(L, S, o, mode, GR_WMUTEX);
}

static int lmu_unlock (lua_State *L) {
  gr_sync *o = check(L, MUTEX);
  gr_waiter *w;
  gr_mutex_lock(&o->lock);
  if (o->n == 0) {
    gr_mutex_unlock(&o->lock);
    return luaL_error(L, "sync: unlock of unlocked mutex");
  }
  w = gr_waitq_pop(&o->waiters);
  if (w == NULL) o->n = 0;    /* else the lock passes to w: n stays 1 */
  gr_mutex_unlock(&o->lock);
  if (w) gr_wait_wake(gr_getstate(L), w);
  return 0;
}


/* --- once ----------------------------------------------------------------- */

/* After f returned or raised: once is done either way (as Go's Once);
** callers that waited are released, and an error goes on to the caller. */
static int once_k (lua_State *L, int status, lua_KContext ctx) {
  gr_sync *o = (gr_sync *)ctx;
  gr_waiter *wake;
  gr_mutex_lock(&o->lock);
  o->n = 2;
  wake = takeall(o);
  gr_mutex_unlock(&o->lock);
  wakelist(gr_getstate(L), wake);
  if (status != LUA_OK && status != LUA_YIELD) return lua_error(L);
  return 0;
}

/* Pushes a second handle of o, out of the user's reach, so that o
** outlives f even if f finalizes the handle it was called through. */
static void pin (lua_State *L, gr_sync *o) {
  gr_syncud *u = (gr_syncud *)lua_newuserdatauv(L, sizeof(*u), 0);
  u->o = NULL;
  u->kind = ONCE;
  luaL_setmetatable(L, mtnames[ONCE]);
  atomic_fetch_add_explicit(&o->refs, 1, memory_order_relaxed);
  u->o = o;
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
    gr_mutex_lock(&o->lock);
    if (o->n == 2) {
      gr_mutex_unlock(&o->lock);
      return 0;
    }
    if (o->n == 1) {
      if (mode == GR_BLOCK_NO) return cannotblock(L, o, GR_WONCE);
      return park(L, S, o, mode, GR_WONCE);
    }
    if (lua_gettop(L) == 3) break;   /* pinned: run f */
    gr_mutex_unlock(&o->lock);
    pin(L, o);   /* may raise: without the lock, then look again */
  }
  o->n = 1;
  gr_mutex_unlock(&o->lock);
  lua_pushvalue(L, 2);
  /* The pinned handle at index 3 keeps o alive until once_k runs. */
  return once_k(L, lua_pcallk(L, 0, 0, 0, (lua_KContext)o, once_k),
                (lua_KContext)o);
}


/* --- transfer (copy.c) ------------------------------------------------------ */

/* A handle in a pack (copy.c): the object crosses with a new ref; its
** kind is the type's (one type per kind, whose aux it is). */
static void *synctake (lua_State *L, int idx, int *aux) {
  gr_syncud *u = (gr_syncud *)lua_touserdata(L, idx);
  if (u->o == NULL) return NULL;
  atomic_fetch_add_explicit(&u->o->refs, 1, memory_order_relaxed);
  *aux = u->kind;
  return u->o;
}

static void syncpush (lua_State *L, void *obj, int kind) {
  gr_syncud *u = (gr_syncud *)lua_newuserdatauv(L, sizeof(*u), 0);
  u->o = (gr_sync *)obj;   /* the pack's ref is the handle's now */
  u->kind = kind;
  luaL_setmetatable(L, mtnames[kind]);
}

static void syncdrop (lua_State *L, void *obj) {
  (void)L;
  release((gr_sync *)obj);
}

static const gr_objtype synctypes[] = {
  { "goroutines.waitgroup", synctake, syncpush, syncdrop, NULL },
  { "goroutines.mutex", synctake, syncpush, syncdrop, NULL },
  { "goroutines.once", synctake, syncpush, syncdrop, NULL },
};


/* --- handles -------------------------------------------------------------- */

static int newobj (lua_State *L, int kind) {
  gr_syncud *u;
  gr_getstate(L);   /* raises once closed: no finalizer would free it */
  u = (gr_syncud *)lua_newuserdatauv(L, sizeof(*u), 0);
  u->kind = kind;
  u->o = (gr_sync *)calloc(1, sizeof(gr_sync));
  if (u->o == NULL) return luaL_error(L, "not enough memory");
  gr_mutex_init(&u->o->lock, GR_LSYNC);
  atomic_init(&u->o->refs, 1);
  luaL_setmetatable(L, mtnames[kind]);
  return 1;
}

static int lwaitgroup (lua_State *L) { return newobj(L, WAITGROUP); }
static int lmutex (lua_State *L) { return newobj(L, MUTEX); }
static int lonce (lua_State *L) { return newobj(L, ONCE); }

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
** every state that holds a handle of it). */
static int tostr (lua_State *L, int kind) {
  gr_syncud *u = (gr_syncud *)luaL_checkudata(L, 1, mtnames[kind]);
  if (u->o) lua_pushfstring(L, "%s: %p", mtnames[kind], (void *)u->o);
  else lua_pushfstring(L, "%s: finalized", mtnames[kind]);
  return 1;
}

static int lwg_gc (lua_State *L) { return gc(L, WAITGROUP); }
static int lmu_gc (lua_State *L) { return gc(L, MUTEX); }
static int lonce_gc (lua_State *L) { return gc(L, ONCE); }
static int lwg_tostring (lua_State *L) { return tostr(L, WAITGROUP); }
static int lmu_tostring (lua_State *L) { return tostr(L, MUTEX); }
static int lonce_tostring (lua_State *L) { return tostr(L, ONCE); }

static const luaL_Reg wgmethods[] = {
  {"add", lwg_add}, {"done", lwg_done}, {"wait", lwg_wait}, {NULL, NULL}
};
static const luaL_Reg mumethods[] = {
  {"lock", lmu_lock}, {"unlock", lmu_unlock}, {NULL, NULL}
};
static const luaL_Reg oncemethods[] = {
  {"call", lonce_call}, {NULL, NULL}
};
static const luaL_Reg *const methods[] = { wgmethods, mumethods, oncemethods };

static const luaL_Reg funcs[] = {
  {"waitgroup", lwaitgroup}, {"mutex", lmutex}, {"once", lonce},
  {NULL, NULL}
};

static const luaL_Reg metamethods[][3] = {
  {{"__gc", lwg_gc}, {"__tostring", lwg_tostring}, {NULL, NULL}},
  {{"__gc", lmu_gc}, {"__tostring", lmu_tostring}, {NULL, NULL}},
  {{"__gc", lonce_gc}, {"__tostring", lonce_tostring}, {NULL, NULL}}
};

/* Registers g.sync in the module table at the top of L. */
void gr_sync_open (lua_State *L) {
  int kind;
  for (kind = WAITGROUP; kind <= ONCE; kind++) {
    luaL_newmetatable(L, mtnames[kind]);
    gr_objtype_set(L, -1, &synctypes[kind]);
    gr_state_setfuncs(L, metamethods[kind]);
    lua_newtable(L);
    gr_state_setfuncs(L, methods[kind]);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
  }
  lua_newtable(L);
  gr_state_setfuncs(L, funcs);
  lua_setfield(L, -2, "sync");
}
