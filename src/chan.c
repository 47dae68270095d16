/*
** chan.c -- channels: send, recv, close, range, len, cap and views; the
** wait queues are shared with select.c, after Go's runtime/chan.go.
**
** The buffer is a ring of slots with a turn each (chan.h): an unshared
** channel's thread and the holder of a shared channel's lock own it whole;
** without the lock, the fast path of a shared buffered channel sends into
** it and receives from it while no waiter is queued (fastsend, fastrecv).
**
** Invariants (c->lock held, or for an unshared channel its one thread):
**   at least one of c->recvq, c->sendq is empty;
**   count(c) > 0 implies c->recvq is empty;
**   count(c) < c->cap implies c->sendq is empty;
**   c->closed implies both queues are empty (close wakes every waiter);
**   c->slow (GR_CHAN_SLOW in tail and head) when c is shared and buffered
**     and a queue is not empty, or c is closed or a host channel: the
**     fast path then leaves the ring alone, so that a waiter is never left
**     behind a value (or a free slot) that a fast operation made.
** The fast path keeps the first three too: it sends only into a ring with
**   no receiver queued, and frees a slot only with no sender queued.
** A queued waiter holds a ref on its channel, dropped by its goroutine in
**   the continuation (or by the cancel at state close), so a channel
**   outlives every waiter that points to it.
** Lock order: one chan lock here (select.c takes several in address
**   order). Waiters are readied only after the lock is dropped. The fast
**   path takes no lock; a lock holder waits for the fast operations under
**   way to end (gr__chan_exclude), which take nothing and never wait.
** Leak detection (leak.c): a goroutine parked on a channel that only its
**   state holds (not shared, no timer behind it) may be anchored by the
**   channel's root handle, the one g.chan made: every view holds it (its
**   user value 2). Sharing the channel pins its waiters first.
*/
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "chan.h"
#include "errors.h"
#include "state.h"
#include "wait.h"

static atomic_llong livechans = 0;   /* gr_chan objects not yet freed */


/* --- the C object ------------------------------------------------------ */

/* Returns a channel with one ref (the caller's), or NULL without memory. */
gr_chan *gr__chan_new (size_t cap) {
  void *mem = calloc(1, sizeof(gr_chan) + GR_CACHELINE);
  gr_chan *c;
  if (mem == NULL) return NULL;
  /* The lines of gr_chan are lines of memory only from a line boundary. */
  c = (gr_chan *)(((uintptr_t)mem + GR_CACHELINE - 1) &
                  ~(uintptr_t)(GR_CACHELINE - 1));
  c->mem = mem;
  if (cap > 0) {
    c->buf = (gr_chanslot *)calloc(cap, sizeof(gr_chanslot));
    if (c->buf == NULL) {
      free(mem);
      return NULL;
    }
  }
  c->cap = cap;
  for (c->onelap = 1; c->onelap <= cap; c->onelap <<= 1) {}
  atomic_init(&c->tail, 0);
  atomic_init(&c->head, 0);
  gr_mutex_init(&c->lock, GR_LCHAN);
  atomic_init(&c->refs, 1);
  atomic_init(&c->packrefs, 0);
  atomic_fetch_add_explicit(&livechans, 1, memory_order_relaxed);
  return c;
}

void gr_chan_retain (gr_chan *c) {
  if (c == NULL) return;   /* the embedding API's: a host's NULL */
  atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
}

/* --- the ring ---------------------------------------------------------- */

/* The position after pos: the next index, or index 0 of the next lap. */
static inline uint64_t nextpos (const gr_chan *c, uint64_t pos) {
  uint64_t idx = pos & (c->onelap - 1);
  return idx + 1 < c->cap ? pos + 1 : (pos - idx) + c->onelap;
}

static inline gr_chanslot *slotat (const gr_chan *c, uint64_t pos) {
  return &c->buf[pos & (c->onelap - 1)];
}

static inline uint64_t lapof (const gr_chan *c, uint64_t pos) {
  return pos & ~(uint64_t)(c->onelap - 1) & ~GR_CHAN_SLOW;
}

/* Values between positions h (the head) and t (the tail). */
static size_t ringcount (const gr_chan *c, uint64_t h, uint64_t t) {
  uint64_t hi = h & (c->onelap - 1), ti = t & (c->onelap - 1);
  h &= ~GR_CHAN_SLOW;
  t &= ~GR_CHAN_SLOW;
  if (hi < ti) return (size_t)(ti - hi);
  if (hi > ti) return (size_t)(c->cap - hi + ti);
  return t == h ? 0 : c->cap;
}

/* The owner of the ring (the holder of the lock, or the one state's
** thread) reads and writes tail and head alone: the fast path cannot
** claim a position meanwhile. */
static inline uint64_t ownpos (_Atomic uint64_t *pos) {
  return atomic_load_explicit(pos, memory_order_relaxed);
}

/* The ring's values, for its owner; they include the values of sends
** that claimed their slot without the lock and may not have filled it. */
static size_t count (const gr_chan *c) {
  return ringcount(c, ownpos((_Atomic uint64_t *)&c->head),
                   ownpos((_Atomic uint64_t *)&c->tail));
}

/* Waits until the turn of s is want: a fast operation that claimed s
** before the lock closed the fast path ends within a few instructions
** (unless its thread is descheduled, hence the yield). */
static void waitturn (gr_chanslot *s, uint64_t want) {
  unsigned spins = 0;
  while (atomic_load_explicit(&s->turn, memory_order_acquire) != want) {
    if (++spins < 100) GR_PAUSE();
    else sched_yield();
  }
}

/* The value at position pos, for the owner, once its send has filled it. */
static gr_value *valueat (gr_chan *c, uint64_t pos) {
  gr_chanslot *s = slotat(c, pos);
  waitturn(s, lapof(c, pos) + 1);
  return &s->v;
}

/* Appends *v, for the owner; the ring must have room. */
static void ringput (gr_chan *c, const gr_value *v) {
  uint64_t t = ownpos(&c->tail);
  gr_chanslot *s = slotat(c, t);
  waitturn(s, lapof(c, t));   /* a fast receive may still read it */
  s->v = *v;
  atomic_store_explicit(&s->turn, lapof(c, t) + 1, memory_order_release);
  atomic_store_explicit(&c->tail, nextpos(c, t), memory_order_relaxed);
}

/* Takes the oldest value into *v, for the owner; the ring must have one. */
static void ringtake (gr_chan *c, gr_value *v) {
  uint64_t h = ownpos(&c->head);
  *v = *valueat(c, h);
  atomic_store_explicit(&slotat(c, h)->turn, lapof(c, h) + c->onelap,
                        memory_order_release);
  atomic_store_explicit(&c->head, nextpos(c, h), memory_order_relaxed);
}

/* Sends *v into the ring of the shared buffered channel c without the
** lock: returns 1 when sent (the ring owns *v now), 0 when the fast path
** is closed or the ring looks full (the locked path decides then). The
** CAS that claims the position fails once the lock has set GR_CHAN_SLOW
** in tail; the slot is written, then its turn published, for the
** receiver that acquires it. */
static int fastsend (gr_chan *c, const gr_value *v) {
  uint64_t t = atomic_load_explicit(&c->tail, memory_order_relaxed);
  for (;;) {
    gr_chanslot *s;
    uint64_t lap, turn;
    if (t & GR_CHAN_SLOW) return 0;
    s = slotat(c, t);
    lap = lapof(c, t);
    turn = atomic_load_explicit(&s->turn, memory_order_acquire);
    if (turn == lap) {
      if (atomic_compare_exchange_weak_explicit(&c->tail, &t, nextpos(c, t),
            memory_order_relaxed, memory_order_relaxed)) {
        s->v = *v;
        atomic_store_explicit(&s->turn, lap + 1, memory_order_release);
        return 1;
      }
    }
    else if (turn + c->onelap == lap + 1)
      return 0;   /* the value of the lap before: full, or being received */
    else   /* another sender took position t */
      t = atomic_load_explicit(&c->tail, memory_order_relaxed);
  }
}

/* Receives from the ring of the shared buffered channel c without the
** lock, as fastsend sends: returns 1 with the value in *v, 0 when the fast
** path is closed or the ring looks empty. */
static int fastrecv (gr_chan *c, gr_value *v) {
  uint64_t h = atomic_load_explicit(&c->head, memory_order_relaxed);
  for (;;) {
    gr_chanslot *s;
    uint64_t lap, turn;
    if (h & GR_CHAN_SLOW) return 0;
    s = slotat(c, h);
    lap = lapof(c, h);
    turn = atomic_load_explicit(&s->turn, memory_order_acquire);
    if (turn == lap + 1) {
      if (atomic_compare_exchange_weak_explicit(&c->head, &h, nextpos(c, h),
            memory_order_relaxed, memory_order_relaxed)) {
        *v = s->v;
        atomic_store_explicit(&s->turn, lap + c->onelap,
                              memory_order_release);
        return 1;
      }
    }
    else if (turn == lap)
      return 0;   /* empty, or its value being sent */
    else   /* another receiver took position h */
      h = atomic_load_explicit(&c->head, memory_order_relaxed);
  }
}

/* Whether c has a fast path: shared and buffered, not a host's. */
static inline int hasfast (gr_chan *c) {
  return c->cap > 0 && !c->host &&
         atomic_load_explicit(&c->shared, memory_order_relaxed);
}

/* Sets GR_CHAN_SLOW in tail and head: a CAS of the fast path that
** claims a position after this fails. */
static void closefast (gr_chan *c) {
  c->slow = 1;
  atomic_fetch_or_explicit(&c->tail, GR_CHAN_SLOW, memory_order_relaxed);
  atomic_fetch_or_explicit(&c->head, GR_CHAN_SLOW, memory_order_relaxed);
}

void gr__chan_exclude (gr_chan *c) {
  if (!c->slow) closefast(c);
}

/* While GR_CHAN_SLOW is set only the holder writes tail and head. */
void gr__chan_reopen (gr_chan *c) {
  c->slow = 0;
  atomic_store_explicit(&c->tail, ownpos(&c->tail) & ~GR_CHAN_SLOW,
                        memory_order_relaxed);
  atomic_store_explicit(&c->head, ownpos(&c->head) & ~GR_CHAN_SLOW,
                        memory_order_relaxed);
}

/* Drops the caller's ref on the shared, buffered c when the packed values
** in c's own buffer may hold all the others (a channel sent on itself):
** under c's lock, so that its buffer cannot change, counts their refs and
** drops the ref; if theirs are all that is left, nothing else can reach c
** and they are taken over. Returns 1 if c must be freed. */
static int releaseheld (gr_chan *c) {
  uint64_t pos, tail;
  int held = 0, left;
  gr_chan_lock(c);
  tail = ownpos(&c->tail) & ~GR_CHAN_SLOW;
  pos = ownpos(&c->head) & ~GR_CHAN_SLOW;
  for (; pos != tail; pos = nextpos(c, pos)) {
    gr_value *v = valueat(c, pos);
    if (v->type == GR_VPACK) held += gr_pack_objrefs(v->u.p, c, 0);
  }
  left = atomic_fetch_sub(&c->refs, 1) - 1;
  if (left > 0 && left == held) {
    pos = ownpos(&c->head) & ~GR_CHAN_SLOW;
    for (; pos != tail; pos = nextpos(c, pos)) {
      gr_value *v = valueat(c, pos);
      if (v->type == GR_VPACK)   /* their refs are among those dropped */
        atomic_fetch_sub(&c->packrefs, gr_pack_objrefs(v->u.p, c, 1));
    }
    atomic_store(&c->refs, 0);
    left = 0;
  }
  gr_chan_unlock(c);
  return left == 0;
}

/* Drops one ref; the last frees the channel and the values still in its
** buffer, and so do the last refs that are not its buffer's own (the
** values in the buffer of a shared channel may hold handles of it: a
** refcount cycle). L is the releasing state (NULL while it closes).
** The check costs a lock only while packs may hold every other ref
** (packrefs), which a channel that is not sent in a value never has. */
void gr__chan_releaseslow (lua_State *L, gr_chan *c) {
  uint64_t pos, tail;
  int r;
  if (!atomic_load_explicit(&c->shared, memory_order_relaxed))
    goto freeit;   /* the last ref: see gr__chan_release */
  /* No pack holds a ref: no buffer can hold the last ones (a pack that
  ** takes one meanwhile leaves the check to a later release). */
  if (atomic_load_explicit(&c->packrefs, memory_order_relaxed) == 0) {
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
      return;
    goto freeit;
  }
  r = atomic_load(&c->refs);
  for (;;) {
    if (r > 1 && c->cap > 0 && r - 1 <= atomic_load(&c->packrefs) &&
        atomic_load_explicit(&c->shared, memory_order_acquire)) {
      if (!releaseheld(c)) return;
      break;
    }
    if (atomic_compare_exchange_weak(&c->refs, &r, r - 1)) {
      if (r != 1) return;
      break;
    }
  }
freeit:
  /* A releaseheld on another thread that left c with our ref may still
  ** hold c's lock: wait for it to let go. */
  gr_chan_lock(c);
  gr_chan_unlock(c);
  GR_ASSERT(c->recvq.first == NULL && c->sendq.first == NULL);
  if (c->hook) c->hook(L, c, GR_CHAN_FREED);   /* a timer goes with c */
  tail = ownpos(&c->tail) & ~GR_CHAN_SLOW;
  pos = ownpos(&c->head) & ~GR_CHAN_SLOW;
  for (; pos != tail; pos = nextpos(c, pos))
    gr_value_discard(L, valueat(c, pos));
  while (c->spare != NULL) gr_pack_free(gr_chan_takespare(c));
  gr_mutex_destroy(&c->lock);
  free(c->buf);
  free(c->mem);
  atomic_fetch_sub_explicit(&livechans, 1, memory_order_relaxed);
}

lua_Integer gr_chan_live (void) {
  return atomic_load_explicit(&livechans, memory_order_relaxed);
}

/* Receives without blocking. Requires c->lock. Returns GR_OK with a
** value in *v, GR_CLOSED when closed and drained (*v nil), GR_WOULDBLOCK.
** *wake is a sender to wake once the lock is dropped, or NULL. */
int gr_chan_recvlocked (gr_chan *c, gr_value *v, gr_waiter **wake) {
  gr_waiter *w;
  GR_ASSERT(!atomic_load(&c->shared) || gr_mutex_held(&c->lock));
  *wake = NULL;
  if ((w = gr_waitq_pop(&c->sendq)) != NULL) {
    if (c->cap == 0)
      *v = w->val;
    else {  /* buffer full: take the oldest, the sender's value goes last */
      ringtake(c, v);
      ringput(c, &w->val);
    }
    gr_value_setnil(&w->val);
    w->success = 1;
    *wake = w;
    return GR_OK;
  }
  if (count(c) > 0) {
    ringtake(c, v);
    return GR_OK;
  }
  gr_value_setnil(v);
  return c->closed ? GR_CLOSED : GR_WOULDBLOCK;
}

/* Sends *v without blocking. Requires c->lock. Returns GR_OK when sent
** (*v is then owned by the channel or the receiver), GR_CLOSED,
** GR_WOULDBLOCK. *wake is a receiver to wake after unlocking, or NULL. */
int gr_chan_sendlocked (gr_chan *c, gr_value *v, gr_waiter **wake) {
  gr_waiter *w;
  GR_ASSERT(!atomic_load(&c->shared) || gr_mutex_held(&c->lock));
  *wake = NULL;
  if (c->closed) return GR_CLOSED;
  if ((w = gr_waitq_pop(&c->recvq)) != NULL) {
    w->val = *v;
    w->success = 1;
    *wake = w;
    return GR_OK;
  }
  if (count(c) < c->cap) {
    ringput(c, v);
    return GR_OK;
  }
  return GR_WOULDBLOCK;
}

/* Non-blocking send from C (timers): as gr_chan_sendlocked, taking the
** lock; unless GR_OK, *v stays with the caller. */
int gr_chan_trysend (gr_state *cur, gr_chan *c, gr_value *v) {
  gr_waiter *wake;
  int r;
  gr_chan_lock(c);
  r = gr_chan_sendlocked(c, v, &wake);
  gr_chan_unlock(c);
  if (wake) gr_wait_wake(cur, wake);
  return r;
}

/* Non-blocking receive from C: as gr_chan_recvlocked, taking the lock. */
int gr_chan_tryrecv (gr_state *cur, gr_chan *c, gr_value *v) {
  gr_waiter *wake;
  int r;
  gr_chan_lock(c);
  r = gr_chan_recvlocked(c, v, &wake);
  gr_chan_unlock(c);
  if (wake) gr_wait_wake(cur, wake);
  return r;
}


/* --- handles ------------------------------------------------------------ */

/* Pushes a new handle of c with direction dir and takes a ref for it. */
void gr_chan_pushud (lua_State *L, gr_chan *c, int dir) {
  gr_chanud *u = (gr_chanud *)lua_newuserdatauv(L, sizeof(*u), 1);
  u->c = NULL;
  u->dir = dir;
  luaL_setmetatable(L, "goroutines.chan");
  gr__chan_retain(c);
  u->c = c;
}

/* Raises the error for a handle whose __gc was called by hand. */
int gr_chan_finalized (lua_State *L) {
  return luaL_error(L, "attempt to use a finalized goroutines.chan");
}

/* Returns the handle at idx if it is one (finalized or not), else NULL. */
static gr_chanud *testud (lua_State *L, int idx) {
  return (gr_chanud *)gr_testud(L, idx, GR_UV_CHANMT);
}

/* Returns the handle at idx or raises: a type error, or the error of a
** finalized handle. */
gr_chanud *gr_chan_checkud (lua_State *L, int idx) {
  gr_chanud *u = testud(L, idx);
  if (u == NULL) luaL_typeerror(L, idx, "goroutines.chan");
  if (u->c == NULL) gr_chan_finalized(L);
  return u;
}

static const char *direrror (int dir) {
  return dir == GR_DIRSEND ? "send to receive-only channel"
                           : "receive from send-only channel";
}

/* Returns the channel of the handle at idx, which must allow dir. */
gr_chan *gr_chan_checkdir (lua_State *L, int idx, int dir) {
  gr_chanud *u = gr_chan_checkud(L, idx);
  if (!(u->dir & dir)) luaL_error(L, "%s", direrror(dir));
  return u->c;
}


/* Marks the unshared c shared, on its one state's thread: the mode its
** waiters and close require first (gr_chan_unlock keeps it after). */
static void makeshared (gr_chan *c) {
  if (c->cap > 0 &&
      (c->closed || c->recvq.first != NULL || c->sendq.first != NULL))
    closefast(c);
  atomic_store_explicit(&c->shared, 1, memory_order_release);
}

/* The state's set of channels (light userdata) whose values packheld is
** packing: a channel that holds a handle of itself, or channels that hold
** each other's, are not entered twice. */
static const char packingkey = 0;

/* Packs the values that the unshared channel c holds (its buffer, then its
** parked senders'): with share false only to see that they can cross;
** with share true for good, and then c is shared. lua_pcall'd. */
static int lpackheld (lua_State *L) {
  gr_chan *c = (gr_chan *)lua_touserdata(L, 1);
  int share = lua_toboolean(L, 2), pass;
  gr_waiter *w;
  uint64_t pos, tail = ownpos(&c->tail) & ~GR_CHAN_SLOW;
  for (pass = 0; pass < 2; pass++) {
    const char *where = pass ? "value being sent" : "buffered value";
    w = c->sendq.first;
    pos = ownpos(&c->head) & ~GR_CHAN_SLOW;
    while (pass ? w != NULL : pos != tail) {
      gr_value *v = pass ? &w->val : valueat(c, pos);
      if (pass) w = w->next;
      else pos = nextpos(c, pos);
      if (share)
        gr_value_share(L, v, where);
      else if (v->type == GR_VREF) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, v->u.ref);
        gr_pack_free(gr_pack_values(L, -1, 1, where, -1));
        lua_pop(L, 1);
      }
    }
  }
  if (share) makeshared(c);
  return 0;
}

/* Runs lpackheld for c, unless a run for c is under way further up the
** stack (which does the work). Raises what it raised, with the position
** of the send or spawn in Lua. */
static void packheld (lua_State *L, gr_chan *c, int share) {
  int set, status;
  if (atomic_load_explicit(&c->shared, memory_order_acquire)) return;
  if (count(c) == 0 && c->sendq.first == NULL) {
    if (share) makeshared(c);
    return;
  }
  luaL_checkstack(L, 8, "too many values to copy");
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &packingkey) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &packingkey);
  }
  set = lua_gettop(L);
  if (lua_rawgetp(L, set, c) != LUA_TNIL) {
    lua_pop(L, 2);
    return;
  }
  lua_pop(L, 1);
  lua_pushboolean(L, 1);
  lua_rawsetp(L, set, c);
  lua_pushcfunction(L, lpackheld);
  lua_pushlightuserdata(L, c);
  lua_pushboolean(L, share);
  status = lua_pcall(L, 2, 0, 0);
  lua_pushnil(L);
  lua_rawsetp(L, set, c);   /* removes a key: cannot raise */
  if (status != LUA_OK) {
    if (lua_type(L, -1) == LUA_TSTRING) {
      luaL_where(L, 1);
      lua_insert(L, -2);
      lua_concat(L, 2);
    }
    lua_error(L);
  }
  lua_pop(L, 1);
}

/* Raises, naming the value, if a value c holds could not cross states.
** Changes nothing: a failed pack leaves c as it was. */
static void checkshare (lua_State *L, gr_chan *c) {
  if (atomic_load_explicit(&c->shared, memory_order_acquire)) return;
  if (c->hook) c->hook(L, c, GR_CHAN_WILLSHARE);
  packheld(L, c, 0);
}

/* Makes c able to cross states, once a handle of it has been packed: the
** values it holds become packed values. Runs on the thread of the only
** state that holds c, so nothing else touches c meanwhile; checkshare
** made sure that every value can cross. */
static void share (lua_State *L, gr_chan *c) {
  gr_waiter *w;
  int q;
  if (atomic_load_explicit(&c->shared, memory_order_acquire)) return;
  for (q = 0; q < 2; q++)   /* another state may wake them soon */
    for (w = q ? c->sendq.first : c->recvq.first; w; w = w->next)
      if (w->g != NULL) gr_sched_leakpin(w->g->S, w->g);
  packheld(L, c, 1);
  if (c->hook) c->hook(L, c, GR_CHAN_SHARED);   /* its timer moves */
}

static int isshared (gr_chan *c) {
  return atomic_load_explicit(&c->shared, memory_order_acquire);
}


/* --- send and receive ----------------------------------------------------- */

/* The queue of c that w waits in. */
static gr_waitq *queueof (gr_chan *c, gr_waiter *w) {
  return w->dir == GR_DIRRECV ? &c->recvq : &c->sendq;
}

/* Removes w from its channel if it is still queued. Returns 1 if it was,
** 0 if a waker took it first. */
static int unqueue (gr_waiter *w) {
  gr_chan *c = (gr_chan *)w->obj;
  int was;
  gr_chan_lock(c);
  was = w->inq;
  if (was) gr_waitq_remove(queueof(c, w), w);
  gr_chan_unlock(c);
  return was;
}

/* Undoes a parked single operation for good: at state close (L NULL),
** or when g was found leaked. */
static void dropwait (lua_State *L, gr_g *g) {
  gr_waiter *w = &g->w;
  gr_chan *c = (gr_chan *)w->obj;
  if (c == NULL) return;
  unqueue(w);
  gr_value_discard(L, &w->val);
  w->obj = NULL;
  g->cancel = NULL;
  gr__chan_release(L, c);
}

/* g->cancel. */
static void cancel (gr_g *g) {
  dropwait(NULL, g);
}

/* Pushes the root handle of the handle at idx (its own root unless it
** is a view). */
void gr_chan_pushroot (lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  if (lua_getiuservalue(L, idx, 2) != LUA_TUSERDATA) {
    lua_pop(L, 1);
    lua_pushvalue(L, idx);
  }
}

/* The handle is argument 1 of every parked operation (send, recv, the
** range iterator). */
static int leakroots (lua_State *L, gr_g *g) {
  luaL_checkstack(L, 2, NULL);
  lua_pushvalue(g->co, 1);
  lua_xmove(g->co, L, 1);
  gr_chan_pushroot(L, -1);
  lua_remove(L, -2);
  return 1;
}

static const gr_leakops leakops = { leakroots, dropwait };

/* Finishes the parked operation of g in its continuation: after an
** in-place wait that must raise (status < 0), the waiter is removed and
** the error raised, unless a waker completed it first, in which case the
** operation completes and the error waits for the next blocking call.
** Returns with w->obj released and cleared. */
static void endwait (lua_State *L, gr_state *S, gr_g *g, int status) {
  gr_waiter *w = &g->w;
  gr_chan *c = (gr_chan *)w->obj;
  if (status < 0 && gr_wait_settle(g, unqueue(w))) {
    gr_value_discard(L, &w->val);
    w->obj = NULL;
    g->cancel = NULL;
    gr__chan_release(L, c);
    gr_errors_raisewait(L, S, status);
  }
  w->obj = NULL;
  g->cancel = NULL;
  gr__chan_release(L, c);
}

/* Parks g on c's queue for dir with value v (sends). Requires c->lock;
** drops it. */
static int parkon (lua_State *L, gr_state *S, gr_chan *c, int dir, int mode,
                   gr_value *v, lua_KContext ctx, lua_KFunction k) {
  gr_g *g = S->current;
  gr_waiter *w = &g->w;
  GR_ASSERT(!atomic_load(&c->shared) || gr_mutex_held(&c->lock));
  gr_wait_prepare(w, g, c, dir);
  w->val = *v;
  gr_sched_prepark(g, mode, dir == GR_DIRRECV ? GR_WCHANRECV : GR_WCHANSEND,
                   cancel);
  if (c->host) gr_sched_hostwait(g);
  if (!isshared(c) && c->hook == NULL)
    gr_sched_leakpark(S, g, mode, &leakops);
  gr_waitq_push(queueof(c, w), w);
  gr__chan_retain(c);  /* the waiter's ref, dropped in endwait/cancel */
  gr_chan_unlock(c);
  return gr_sched_park(L, S, g, ctx, k);
}

static int send_k (lua_State *L, int status, lua_KContext ctx) {
  gr_state *S = gr_getstate(L);
  gr_g *g = S->current;
  int ok;
  (void)ctx;
  endwait(L, S, g, status);
  ok = g->w.success;
  if (!ok) {  /* woken by close: the value was not delivered */
    gr_value_discard(L, &g->w.val);
    return luaL_error(L, "send on closed channel");
  }
  return 0;
}

/* A host thread reads what a host channel carries without a Lua state:
** the values it can copy out are these. */
void gr_chan_hostvalue (lua_State *L, int idx) {
  int t = lua_type(L, idx);
  if (t > LUA_TNIL && t != LUA_TBOOLEAN && t != LUA_TNUMBER &&
      t != LUA_TSTRING)
    luaL_error(L, "cannot send a %s on a host channel (it carries nil, "
               "booleans, numbers and strings)", luaL_typename(L, idx));
}

static int lchan_send (lua_State *L) {
  gr_state *S = gr_getstate(L);
  gr_chan *c = gr_chan_checkdir(L, 1, GR_DIRSEND);
  gr_waiter *wake;
  gr_value v;
  int r, mode;
  gr_chan_checkvalue(L, c, 2);
  gr_value_capture(L, 2, isshared(c), &v);  /* may raise: before the lock */
  if ((v.type == GR_VREF || v.type == GR_VPACK) &&
      ((gr_chanud *)lua_touserdata(L, 1))->c == NULL) {
    /* A finalizer that ran during the capture (it allocated) finalized
    ** the handle. */
    gr_value_discard(L, &v);
    return gr_chan_finalized(L);
  }
  if (hasfast(c) && fastsend(c, &v)) return 0;
  mode = gr_sched_quickmode(L, S);
  gr_chan_lock(c);
  r = gr_chan_sendlocked(c, &v, &wake);
  if (r == GR_WOULDBLOCK && mode == GR_BLOCK_ASK)
    mode = gr_sched_blockmode(L, S);
  if (r == GR_WOULDBLOCK && mode != GR_BLOCK_NO)
    return parkon(L, S, c, GR_DIRSEND, mode, &v, 0, send_k);
  gr_chan_unlock(c);
  if (r == GR_OK) {
    if (wake) gr_wait_wake(S, wake);
    return 0;
  }
  gr_value_discard(L, &v);
  if (r == GR_CLOSED) return luaL_error(L, "send on closed channel");
  return gr_sched_cannotblock(L, GR_WCHANSEND);
}

/* Pushes v, as gr_value_push does. A small pack of one string (a host's,
** from a host channel) is pushed as that string, and kept in
** S->sparepack meanwhile (so that it is not lost if the push raises):
** the next receive gives it back to a host channel. */
static void pushvalue (lua_State *L, gr_state *S, gr_value *v) {
  const char *s;
  size_t len;
  gr_pack *p;
  if (v->type != GR_VPACK || !gr_pack_issmall(v->u.p) ||
      (s = gr_pack_tostring(v->u.p, &len)) == NULL) {
    gr_value_push(L, v);
    return;
  }
  p = v->u.p;
  v->type = GR_VNIL;
  gr_pack_free(S->sparepack);
  S->sparepack = p;
  lua_pushlstring(L, s, len);
}

/* Pushes the outcome of a receive: for ch:recv() v, ok; for the range
** iterator v alone, or nothing at the end. */
static int pushrecv (lua_State *L, gr_state *S, gr_value *v, int ok,
                     int forrange) {
  if (!forrange) {
    pushvalue(L, S, v);
    lua_pushboolean(L, ok);
    return 2;
  }
  if (!ok) return 0;
  if (v->type == GR_VNIL)
    return luaL_error(L, "range: received nil (use ch:recv() on channels "
                      "that carry nil)");
  pushvalue(L, S, v);
  return 1;
}

static int recv_k (lua_State *L, int status, lua_KContext ctx) {
  gr_state *S = gr_getstate(L);
  gr_g *g = S->current;
  endwait(L, S, g, status);
  return pushrecv(L, S, &g->w.val, g->w.success, (int)ctx);
}

/* Receives from c, the channel of the handle at index 1. */
static int dorecv (lua_State *L, gr_chan *c, int forrange) {
  gr_state *S = gr_getstate(L);
  gr_waiter *wake;
  gr_value v;
  int r, mode;
  if (hasfast(c) && fastrecv(c, &v)) return pushrecv(L, S, &v, 1, forrange);
  mode = gr_sched_quickmode(L, S);
  gr_chan_lock(c);
  /* The string pack of the last receive goes back for a host to refill,
  ** under the lock taken anyway. */
  if (c->host && S->sparepack != NULL && gr_chan_givespare(c, S->sparepack))
    S->sparepack = NULL;
  r = gr_chan_recvlocked(c, &v, &wake);
  if (r == GR_WOULDBLOCK && mode == GR_BLOCK_ASK)
    mode = gr_sched_blockmode(L, S);
  if (r == GR_WOULDBLOCK && mode != GR_BLOCK_NO)
    return parkon(L, S, c, GR_DIRRECV, mode, &v, forrange, recv_k);
  gr_chan_unlock(c);
  if (r == GR_WOULDBLOCK) return gr_sched_cannotblock(L, GR_WCHANRECV);
  if (wake) gr_wait_wake(S, wake);
  return pushrecv(L, S, &v, r == GR_OK, forrange);
}

static int lchan_recv (lua_State *L) {
  return dorecv(L, gr_chan_checkdir(L, 1, GR_DIRRECV), 0);
}

/* The iterator of ch:range(); its last upvalue is the handle it was made
** for, checked then: the for loop passes it back on every call. */
static int lchan_rangeiter (lua_State *L) {
  gr_chanud *u = (gr_chanud *)lua_touserdata(L, 1);
  if (u == NULL ||
      u != lua_touserdata(L, lua_upvalueindex(GR_NUPVALUES + 1)))
    return dorecv(L, gr_chan_checkdir(L, 1, GR_DIRRECV), 1);
  if (u->c == NULL) return gr_chan_finalized(L);
  return dorecv(L, u->c, 1);
}

static int lchan_range (lua_State *L) {
  gr_chan_checkdir(L, 1, GR_DIRRECV);
  lua_pushvalue(L, GR_UV_STATE);
  lua_pushvalue(L, GR_UV_CHANMT);
  lua_pushvalue(L, GR_UV_CASEMT);
  lua_pushvalue(L, 1);
  lua_pushcclosure(L, lchan_rangeiter, GR_NUPVALUES + 1);
  lua_pushvalue(L, 1);
  return 2;
}

/* Closes c and wakes every waiter; cur is the caller's state (NULL for
** none). Returns GR_OK, or GR_CLOSED if c was closed already. */
int gr__chan_close (gr_state *cur, gr_chan *c) {
  gr_waiter *w, *wake = NULL;
  gr_chan_lock(c);
  if (c->closed) {
    gr_chan_unlock(c);
    return GR_CLOSED;
  }
  c->closed = 1;
  /* Collect every waiter, linked through w->next, to wake after unlock. */
  while ((w = gr_waitq_pop(&c->recvq)) != NULL ||
         (w = gr_waitq_pop(&c->sendq)) != NULL) {
    w->success = 0;
    w->next = wake;
    wake = w;
  }
  gr_chan_unlock(c);
  while (wake) {
    w = wake;
    wake = w->next;   /* read before the goroutine may run again */
    gr_wait_wake(cur, w);
  }
  return GR_OK;
}

static int lchan_close (lua_State *L) {
  gr_chanud *u = gr_chan_checkud(L, 1);
  if (!(u->dir & GR_DIRSEND))
    return luaL_error(L, "close of receive-only channel");
  if (gr__chan_close(gr_getstate(L), u->c) != GR_OK)
    return luaL_error(L, "close of closed channel");
  return 0;
}

/* Without the lock, as Go's len: a tail that has not moved while head was
** read bounds a count that was true at some instant of the read. */
static int lchan_len (lua_State *L) {
  gr_chan *c = gr_chan_checkud(L, 1)->c;
  uint64_t h, t;
  do {
    t = atomic_load_explicit(&c->tail, memory_order_acquire);
    h = atomic_load_explicit(&c->head, memory_order_acquire);
  } while (atomic_load_explicit(&c->tail, memory_order_acquire) != t);
  lua_pushinteger(L, (lua_Integer)ringcount(c, h, t));
  return 1;
}

static int lchan_cap (lua_State *L) {
  lua_pushinteger(L, (lua_Integer)gr_chan_checkud(L, 1)->c->cap);
  return 1;
}

static int view (lua_State *L, int dir, const char *what) {
  gr_chanud *u = gr_chan_checkud(L, 1), *nu;
  if (!(u->dir & dir))
    return luaL_error(L, "cannot make a %s view of a %s channel", what,
                      u->dir == GR_DIRSEND ? "send-only" : "receive-only");
  nu = (gr_chanud *)lua_newuserdatauv(L, sizeof(*nu), 2);
  nu->c = NULL;
  nu->dir = dir;
  lua_pushvalue(L, GR_UV_CHANMT);
  lua_setmetatable(L, -2);
  gr_chan_pushroot(L, 1);   /* a view reaches its root (leak.c) */
  lua_setiuservalue(L, -2, 2);
  /* The allocation may have run a finalizer that finalized u. */
  if (u->c == NULL) return gr_chan_finalized(L);
  gr__chan_retain(u->c);   /* the view's ref, dropped by its __gc */
  nu->c = u->c;
  return 1;
}

static int lchan_sender (lua_State *L) {
  return view(L, GR_DIRSEND, "sender");
}

static int lchan_receiver (lua_State *L) {
  return view(L, GR_DIRRECV, "receiver");
}

static int lchan_gc (lua_State *L) {
  gr_chanud *u = testud(L, 1);
  if (u == NULL) return luaL_typeerror(L, 1, "goroutines.chan");
  if (u->c) {   /* idempotent */
    gr_chan *c = u->c;
    u->c = NULL;
    gr__chan_release(L, c);
  }
  return 0;
}

static int lchan_tostring (lua_State *L) {
  gr_chanud *u = testud(L, 1);
  if (u == NULL) return luaL_typeerror(L, 1, "goroutines.chan");
  if (u->c == NULL) lua_pushliteral(L, "goroutines.chan (finalized)");
  else lua_pushfstring(L, "goroutines.chan: %p", (void *)u->c);
  return 1;
}

/* Two handles are equal when they are views of the same channel, as a
** directional channel compares equal to its source in Go. */
static int lchan_eq (lua_State *L) {
  gr_chanud *a = (gr_chanud *)lua_touserdata(L, 1);
  gr_chanud *b = (gr_chanud *)lua_touserdata(L, 2);
  int eq = 0;
  if (a && b && lua_getmetatable(L, 1) && lua_getmetatable(L, 2))
    eq = lua_rawequal(L, -1, -2) && lua_rawequal(L, -1, GR_UV_CHANMT) &&
         a->c != NULL && a->c == b->c;
  lua_pushboolean(L, eq);
  return 1;
}

static int lchan_new (lua_State *L) {
  lua_Integer cap = 0;
  gr_chan *c;
  gr_getstate(L);   /* raises once closed: no finalizer would free c */
  if (!lua_isnoneornil(L, 1)) {
    int isint;
    cap = lua_tointegerx(L, 1, &isint);
    luaL_argcheck(L, isint && cap >= 0, 1,
                  "capacity must be a non-negative integer");
    luaL_argcheck(L, (size_t)cap <= ((size_t)1 << 40) / sizeof(gr_value), 1,
                  "capacity too large");
  }
  c = gr__chan_new((size_t)cap);
  if (c == NULL) return luaL_error(L, "not enough memory");
  gr_chan_pushud(L, c, GR_DIRBOTH);
  gr__chan_release(L, c);  /* the handle holds the only ref now */
  return 1;
}

static int lstats (lua_State *L) {
  lua_createtable(L, 0, 2);
  lua_pushinteger(L, gr_chan_live());
  lua_setfield(L, -2, "chans");
  lua_pushinteger(L, gr_sched_numgoroutine());
  lua_setfield(L, -2, "goroutines");
  return 1;
}

static const luaL_Reg methods[] = {
  {"send", lchan_send},
  {"recv", lchan_recv},
  {"close", lchan_close},
  {"range", lchan_range},
  {"len", lchan_len},
  {"cap", lchan_cap},
  {"sender", lchan_sender},
  {"receiver", lchan_receiver},
  {NULL, NULL}
};

static const luaL_Reg metamethods[] = {
  {"__gc", lchan_gc},
  {"__len", lchan_len},
  {"__tostring", lchan_tostring},
  {"__eq", lchan_eq},
  {NULL, NULL}
};

static const luaL_Reg funcs[] = {
  {"chan", lchan_new},
  {"_stats", lstats},
  {NULL, NULL}
};

/* --- crossing states (copy.c) ------------------------------------------- */

/* A handle in a pack: the values c holds must be able to cross too, and
** c becomes shared only once the whole pack is complete (export). The
** refs that packs hold are counted apart (packrefs: see release). */
static void *chantake (lua_State *L, int idx, int *aux) {
  gr_chanud *u = (gr_chanud *)lua_touserdata(L, idx);
  if (u->c == NULL) return NULL;
  checkshare(L, u->c);   /* may raise: before the ref */
  gr__chan_retain(u->c);
  atomic_fetch_add(&u->c->packrefs, 1);
  *aux = u->dir;
  return u->c;
}

static void chandrop (lua_State *L, void *obj) {
  gr_chan *c = (gr_chan *)obj;
  atomic_fetch_sub(&c->packrefs, 1);   /* first: release reads it */
  gr__chan_release(L, c);
}

static void chanpush (lua_State *L, void *obj, int aux) {
  gr_chan_pushud(L, (gr_chan *)obj, aux);   /* a ref of its own */
  chandrop(L, obj);
}

static void chanexport (lua_State *L, void *obj) {
  share(L, (gr_chan *)obj);
}

static const gr_objtype chantype = {
  "goroutines.chan", chantake, chanpush, chandrop, chanexport
};

/* Fills the channel metatable and registers g.chan in the module table at
** the top of L. */
void gr_chan_open (lua_State *L) {
  gr_state_setfuncs(L, funcs);
  luaL_getmetatable(L, "goroutines.chan");
  gr_objtype_set(L, -1, &chantype);
  gr_state_setfuncs(L, metamethods);
  lua_newtable(L);
  gr_state_setfuncs(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
}
