/*
** chan.h -- channels: the C object shared by every state that holds a
** handle to it, and the operations that select.c and timer.c reuse.
*/
#ifndef GR_CHAN_H
#define GR_CHAN_H

#include "sched.h"

/* Directions of a handle. */
enum { GR_DIRBOTH = 3, GR_DIRSEND = 1, GR_DIRRECV = 2 };

/* Events of a channel's hook: it is about to become shared (may raise;
** the share may still not happen), it has just become shared (must not
** fail), its last ref is gone (any thread; no lock held). */
enum { GR_CHAN_WILLSHARE, GR_CHAN_SHARED, GR_CHAN_FREED };

/* The bytes of a cache line: what one core writes is kept off the lines
** that another core writes, so that they do not bounce between cores. */
#define GR_CACHELINE 64

/* One slot of a channel's ring. turn says whose turn it is, after
** Vyukov's bounded queue, as the lap of a position (gr_chan): lap when the
** slot is free for the send at that lap, lap + 1 when it holds the value
** sent at that lap. Zeroed memory is an empty ring. */
typedef struct gr_chanslot {
  _Atomic uint64_t turn;
  gr_value v;
} gr_chanslot;

/* The bit of c->tail and c->head that closes the fast path (chan.c). */
#define GR_CHAN_SLOW ((uint64_t)1 << 63)

/* A shared buffered channel has two paths. The fast one, without the
** lock, sends into the ring or receives from it (chan.c: fastsend,
** fastrecv), as Vyukov's bounded MPMC queue: a sender claims the position
** tail by CAS, writes the slot and publishes its turn; a receiver claims
** head likewise and frees the slot. Everything else (parking, waking,
** close, select, host channels) takes the lock, which first closes the
** fast path (gr__chan_exclude): it sets GR_CHAN_SLOW in tail and in head,
** so that no CAS claims a position any more, and from then on the holder
** owns the ring as an unshared channel's thread does, but for the slots
** claimed before, whose turn it waits for. The unlock opens the fast path
** again once no waiter is left (gr_chan_unlock). A fast operation costs
** one locked instruction, the CAS.
** The fields are laid out by who writes them: the read-mostly ones, the
** senders', the receivers', and the lock's, each on a line of its own. */
struct gr_chan {
  /* read-mostly: */
  size_t cap;           /* capacity (immutable) */
  size_t onelap;        /* the power of 2 above cap (immutable): a
                           position is lap + index, lap a multiple of it */
  gr_chanslot *buf;     /* ring of cap slots; NULL when cap == 0 */
  void (*hook) (lua_State *L, gr_chan *c, int event);  /* NULL, or the
                           hook of the timer that sends on c (timer.c) */
  void *hookarg;        /* the hook's: its timer (hook and hookarg are set
                           before any handle of c exists) */
  void *mem;            /* what calloc returned, c's line-aligned start */
  int host;             /* made by the embedding API's gr_chan_new: shared
                           from the start, carries only nil, booleans,
                           numbers and strings (immutable) */
  atomic_int shared;    /* 0 while only one state holds a handle: values
                           are plain Lua values of that state; 1 once a
                           handle has been packed: values are packed. Set
                           once, by the thread of the only state. */
  /* the senders': */
  _Alignas(GR_CACHELINE) _Atomic uint64_t tail;  /* position of the next
                           send, with GR_CHAN_SLOW */
  /* the receivers': */
  _Alignas(GR_CACHELINE) _Atomic uint64_t head;  /* position of the oldest
                           value, with GR_CHAN_SLOW */
  /* the lock's: */
  _Alignas(GR_CACHELINE) gr_mutex lock;
  atomic_int refs;      /* handles (a timer handle holds one), queued or
                           woken waiters, packs */
  atomic_int packrefs;  /* of refs, those that packs hold (copy.c): when
                           they may be all, release checks for a buffer
                           that holds the last refs on its own channel */
  /* protected by lock: */
  int slow;             /* GR_CHAN_SLOW is set in tail and head */
  int closed;
  gr_waitq recvq;       /* parked receivers */
  gr_waitq sendq;       /* parked senders, each with its value */
  gr_pack *spare;       /* host channels: small packs that receivers gave
                           back, for host senders to refill */
  int nspare;           /* in spare (bounded: gr_chan_givespare) */
};

/* The most small packs a host channel keeps for reuse: as many as its
** buffer holds, so that a sender that refills a drained buffer allocates
** nothing, up to GR_CHAN_SPARES (plus a few for hand-offs). */
#define GR_CHAN_SPARES 1024

/* A spare small pack of host channel c, or NULL. Requires c->lock. */
static inline gr_pack *gr_chan_takespare (gr_chan *c) {
  gr_pack *p = c->spare;
  if (p != NULL) {
    c->spare = *gr_pack_next(p);
    c->nspare--;
  }
  return p;
}

/* Gives host channel c the small pack p for reuse; returns 0 if c has
** enough (p stays the caller's). Requires c->lock. */
static inline int gr_chan_givespare (gr_chan *c, gr_pack *p) {
  if ((size_t)c->nspare >= (c->cap < GR_CHAN_SPARES ? c->cap : GR_CHAN_SPARES)
                           + 16)
    return 0;
  *gr_pack_next(p) = c->spare;
  c->spare = p;
  c->nspare++;
  return 1;
}

/* A Lua handle: full userdata with one user value (the cached
** handler-less receive case of this handle), and for a view a second one:
** its root handle. */
typedef struct gr_chanud {
  gr_chan *c;           /* holds one ref, dropped by __gc */
  int dir;              /* GR_DIR* allowed through this handle */
} gr_chanud;

/* Closes the fast path of the shared buffered channel c, whose lock the
** caller has just taken; gr__chan_reopen opens it again (chan.c). */
void gr__chan_exclude (gr_chan *c);
void gr__chan_reopen (gr_chan *c);

/* A channel only one state holds is touched by that state's thread alone:
** its lock is needed only once it is shared (the flag changes on that
** same thread, never between a lock and its unlock). The lock of a shared
** buffered channel also excludes its fast path until the unlock. */
static inline void gr_chan_lock (gr_chan *c) {
  if (atomic_load_explicit(&c->shared, memory_order_relaxed)) {
    gr_mutex_lock(&c->lock);
    if (c->cap > 0) gr__chan_exclude(c);
  }
}

/* The fast path runs again once no waiter is queued: a queued waiter is
** one that a fast operation would have to wake. A closed channel and a
** host channel keep to the locked path. */
static inline void gr_chan_unlock (gr_chan *c) {
  if (atomic_load_explicit(&c->shared, memory_order_relaxed)) {
    if (c->slow && !c->closed && !c->host && c->recvq.first == NULL &&
        c->sendq.first == NULL)
      gr__chan_reopen(c);
    gr_mutex_unlock(&c->lock);
  }
}

/* A new channel with one ref (the caller's), or NULL without memory.
** gr__: the embedding API's gr_chan_new makes a host channel. */
gr_chan *gr__chan_new (size_t cap);
/* The embedding API's: takes one more ref on c from any thread (a host
** channel, shared from birth); NULL is ignored. */
void gr_chan_retain (gr_chan *c);
/* Takes one more ref on c: from any thread once c is shared; before, only
** the thread of the only state that holds c touches its refs, which then
** need no locked instruction (the flag is set on that thread, before any
** other thread can reach c). */
static inline void gr__chan_retain (gr_chan *c) {
  if (atomic_load_explicit(&c->shared, memory_order_relaxed))
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
  else
    atomic_store_explicit(&c->refs, atomic_load_explicit(&c->refs,
                          memory_order_relaxed) + 1, memory_order_relaxed);
}
/* gr__chan_release where it is not a plain decrement (chan.c). */
void gr__chan_releaseslow (lua_State *L, gr_chan *c);
/* Drops one ref; the last frees c and its buffered values (L: the
** releasing state, NULL while it closes). gr__: the embedding API's
** gr_chan_release takes no state. */
static inline void gr__chan_release (lua_State *L, gr_chan *c) {
  if (!atomic_load_explicit(&c->shared, memory_order_relaxed)) {
    /* Only this thread holds refs (gr__chan_retain), and no buffer holds
    ** packed values: a plain decrement unless it is the last. */
    int r = atomic_load_explicit(&c->refs, memory_order_relaxed);
    if (r != 1) {
      atomic_store_explicit(&c->refs, r - 1, memory_order_relaxed);
      return;
    }
  }
  gr__chan_releaseslow(L, c);
}
/* Raises unless the value at idx is one a host channel carries. */
void gr_chan_hostvalue (lua_State *L, int idx);
/* Raises unless the value at idx may be sent on c (a Lua send, before
** any lock). */
static inline void gr_chan_checkvalue (lua_State *L, gr_chan *c, int idx) {
  if (c->host) gr_chan_hostvalue(L, idx);
}
/* Pushes a new handle of c, with its own ref, allowing dir. */
void gr_chan_pushud (lua_State *L, gr_chan *c, int dir);
/* The live channel handle at idx, or raises. */
gr_chanud *gr_chan_checkud (lua_State *L, int idx);
/* Pushes the root handle of the handle at idx: the one all views of its
** channel in this state hold (leak detection anchors by it). */
void gr_chan_pushroot (lua_State *L, int idx);
/* Raises "attempt to use a finalized goroutines.chan". */
int gr_chan_finalized (lua_State *L);
/* The channel of the handle at idx, which must allow dir; or raises. */
gr_chan *gr_chan_checkdir (lua_State *L, int idx, int dir);
/* Closes c and wakes every waiter: GR_OK, or GR_CLOSED if it was (cur:
** the caller's state, or NULL). gr__: the embedding API's gr_chan_close
** takes no state. */
int gr__chan_close (gr_state *cur, gr_chan *c);
/* Sends *v without blocking: GR_OK, GR_CLOSED or GR_WOULDBLOCK. */
int gr_chan_trysend (gr_state *cur, gr_chan *c, gr_value *v);
/* Receives without blocking: GR_OK, GR_CLOSED or GR_WOULDBLOCK. */
int gr_chan_tryrecv (gr_state *cur, gr_chan *c, gr_value *v);
/* As gr_chan_tryrecv under c's lock; *wake: a sender to wake after. */
int gr_chan_recvlocked (gr_chan *c, gr_value *v, gr_waiter **wake);
/* As gr_chan_trysend under c's lock; *wake: a receiver to wake after. */
int gr_chan_sendlocked (gr_chan *c, gr_value *v, gr_waiter **wake);
/* Channels not yet freed, in the process. */
lua_Integer gr_chan_live (void);
/* Registers g.chan and the channel metatable in the module table. */
void gr_chan_open (lua_State *L);

#endif
