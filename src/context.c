/*
** context.c -- g.context: background, with_cancel, with_cancel_cause,
** with_timeout, with_deadline, with_value, without_cancel, cause;
** ctx:done(), ctx:err(), ctx:value(), ctx:deadline() and the cancel
** function.
**
** A context is a reference-counted C object, so goroutines of any state
** share it (it crosses by handle, and so does its cancel function, a
** callable userdata). Its done channel is shared from birth, since any
** thread may close it.
**
** Ownership: c->refs counts the handles of c (context and cancel
**   function, in any state or in transit), the contexts made from it
**   (each holds one on its c->up from birth until it is freed, the one
**   its parent link uses when it has one), its pending deadline
**   timer, a cancel that is walking it, and the list of a zombie (below).
**   A parent's list of children is otherwise weak: a child nobody can
**   observe any more is freed and unlinks itself, so a long-lived parent
**   does not keep the children it made and dropped. The ref that drops
**   to 0 is dropped under the parent's mu, so a cancel walking the list
**   (under that mu) finds every linked child with refs > 0 and retains
**   it: a child is either canceled with its parent or freed unobserved.
** Zombies: a child whose refs reach 0 while its done channel is held
**   elsewhere (a handle of the channel, a goroutine parked on it) can
**   still be observed. It moves to its parent's zombie list, which owns
**   one ref, until the parent is canceled or a sweep finds that nobody
**   else holds the channel (a channel with one ref, ours, whose context
**   has no handle can never gain a ref again). Sweeps run when the zombie
**   count doubles, so zombies cost amortized O(1) and at most twice the
**   zombies still observable (plus ZOMBIES_MIN) stay allocated. Sweeps
**   run only as zombies are added: the last zombies of a parent that
**   makes no more children wait for its cancel, and keep it (Go keeps
**   every child that is never canceled until its parent is).
** Invariants (c->mu held): c->err is NULL until the first cancel sets it,
**   for good; c->child and c->zombies hold exactly the children of c
**   whose linked flag is set, and none once c is canceled.
**   The links of a child (next, prev, linked, zombie) are protected by its
**   parent's mu while it is linked; a cancel that took it out of the list
**   owns them (nobody else touches an unlinked child's links).
**   A context that can never be canceled (background) has no list: its
**   children have no parent.
** Values: a with_value value and a cancel cause are gr_ctxvals, shared
**   by reference count. Each has a process-wide id, and the state that
**   made it keeps the Lua value in a weak-valued table under that id (a
**   value context's handles anchor theirs: a handle holds the handle it
**   was made from, and its value), so that this state gets back the very
**   value; other states get a copy from its pack, unpacked once and kept
**   in their own table while they use it. A value that cannot be packed
**   (a coroutine) has none: the context cannot cross (take raises), and a
**   cause of that kind reads as an error elsewhere. Table keys compare by
**   identity through ids too: a weak-keyed table of the state maps each
**   key object to its id, so a key is only ever found in its own state.
** Lock order: one context's mu at a time, never two at once, never with
**   a channel lock; channels are closed and contexts released only after
**   it is dropped. Nothing under a mu can raise or run a finalizer.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "chan.h"
#include "context.h"
#include "copy.h"
#include "state.h"
#include "timer.h"

#define CTXMT "goroutines.context"
#define CANCELMT "goroutines.cancelfunc"

static const char *const CANCELED = "context canceled";
static const char *const DEADLINE = "context deadline exceeded";

/* Zombies a context keeps before its first sweep. */
#define ZOMBIES_MIN 16

/* A Lua value that contexts carry between states (see "Values"). */
typedef struct gr_ctxval {
  atomic_int refs;      /* the contexts that hold it */
  lua_Integer id;       /* its key in the value tables (immutable) */
  gr_pack *p;           /* its packed copy, or NULL if it cannot cross
                           (immutable; copied, never unpacked itself) */
  int type;             /* its Lua type (immutable), for errors */
} gr_ctxval;

/* The key of a with_value context: nil (none), a boolean, a number or a
** string by value, or any other value by the id of its object. */
typedef struct gr_ctxkey {
  int type;             /* LUA_TNIL (not a value context) ... */
  int isint;            /* a number: an integer */
  union {
    int b;
    lua_Integer i;      /* an integer, or the id of an object key */
    lua_Number n;
  } u;
  char *s;              /* a string: its bytes, malloc'd */
  size_t len;
} gr_ctxkey;

typedef struct gr_ctx {
  atomic_int refs;      /* see "Ownership" above */
  gr_chan *done;        /* ref held; closed by the first cancel */
  struct gr_ctx *parent;  /* immutable; ref held until c is freed; NULL
                           for a root or a child of a root */
  struct gr_ctx *up;    /* immutable: the context c was made from, whose
                           values, deadline and cause c inherits; ref held
                           (parent's when parent is set); NULL for a root */
  int cancelable;       /* immutable; 0 for background and without_cancel,
                           and for values of either */
  int withcause;        /* immutable: its cancel function takes a cause */
  double deadline;      /* immutable: its deadline, on the clock of
                           g.time.now(), or -1 for none */
  gr_ctxkey key;        /* immutable: with_value's key, or type nil */
  gr_ctxval *val;       /* immutable: with_value's value (ref held) */
  gr_timer *timer;      /* its pending deadline timer, or NULL (protected
                           by the timers' lock: timer.c) */
  gr_mutex mu;
  /* protected by mu: */
  const char *err;      /* NULL, CANCELED or DEADLINE */
  gr_ctxval *cause;     /* the cause of its cancel (ref held), or NULL */
  struct gr_ctx *child;   /* linked children that are not zombies */
  struct gr_ctx *zombies; /* linked children that are zombies */
  int nzombies;         /* length of zombies */
  int sweepat;          /* sweep zombies once nzombies reaches it */
  /* protected by parent->mu while linked (see above): */
  struct gr_ctx *next, *prev;   /* siblings in child or zombies */
  unsigned char linked; /* in one of the parent's lists */
  unsigned char zombie; /* in parent->zombies; the list owns one ref */
} gr_ctx;

typedef struct gr_ctxud {
  gr_ctx *c;            /* one ref, dropped by __gc; NULL after it */
} gr_ctxud;

static void retain (gr_ctx *c) {
  atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
}

static gr_ctxval *valretain (gr_ctxval *v) {
  if (v) atomic_fetch_add_explicit(&v->refs, 1, memory_order_relaxed);
  return v;
}

/* Drops a ref of v (NULL is ignored); the last frees its pack, whose
** handles it drops. Requires no context lock. */
static void valrelease (gr_ctxval *v) {
  if (v && atomic_fetch_sub_explicit(&v->refs, 1, memory_order_acq_rel)
             == 1) {
    gr_pack_free(v->p);
    free(v);
  }
}

/* Unlinks the linked child c from p's lists. Requires p->mu. */
static void removechild (gr_ctx *p, gr_ctx *c) {
  GR_ASSERT(gr_mutex_held(&p->mu) && c->linked);
  if (c->prev) c->prev->next = c->next;
  else if (c->zombie) p->zombies = c->next;
  else p->child = c->next;
  if (c->next) c->next->prev = c->prev;
  if (c->zombie) p->nzombies--;
  c->next = c->prev = NULL;
  c->linked = c->zombie = 0;
}

/* Pushes the unlinked child c on one of p's lists. Requires p->mu. */
static void addchild (gr_ctx *p, gr_ctx *c, int zombie) {
  gr_ctx **head = zombie ? &p->zombies : &p->child;
  GR_ASSERT(gr_mutex_held(&p->mu) && !c->linked);
  c->prev = NULL;
  c->next = *head;
  if (*head) (*head)->prev = c;
  *head = c;
  c->linked = 1;
  c->zombie = (unsigned char)zombie;
  if (zombie) p->nzombies++;
}

/* Unlinks the zombies of p that nobody can observe any more and returns
** them, linked through next; each still has the ref its list owned.
** Requires p->mu. */
static gr_ctx *sweep (gr_ctx *p) {
  gr_ctx *k = p->zombies, *dead = NULL;
  GR_ASSERT(gr_mutex_held(&p->mu));
  while (k != NULL) {
    gr_ctx *next = k->next;
    if (atomic_load_explicit(&k->done->refs, memory_order_acquire) == 1) {
      removechild(p, k);
      k->next = dead;
      dead = k;
    }
    k = next;
  }
  p->sweepat = p->nzombies < ZOMBIES_MIN / 2 ? ZOMBIES_MIN
                                              : 2 * p->nzombies;
  return dead;
}

/* Drops one ref of c (NULL is ignored). The last one is dropped under the
** parent's mu, where the child either becomes a zombie or is unlinked and
** freed (then its ref on the parent is dropped in turn). */
static void release (gr_ctx *c) {
  while (c != NULL) {
    gr_ctx *p = c->parent, *dead = NULL;
    int r = atomic_load_explicit(&c->refs, memory_order_relaxed);
    while (r > 1) {   /* not the last: no lock */
      if (atomic_compare_exchange_weak_explicit(&c->refs, &r, r - 1,
                                                memory_order_acq_rel,
                                                memory_order_relaxed))
        return;
    }
    if (p) gr_mutex_lock(&p->mu);
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1) {
      if (p) gr_mutex_unlock(&p->mu);   /* a cancel retained it meanwhile */
      return;
    }
    if (p) {
      if (c->linked) {
        removechild(p, c);
        if (atomic_load_explicit(&c->done->refs, memory_order_acquire) > 1) {
          /* Observable through its channel: a zombie, owned by p. */
          atomic_store_explicit(&c->refs, 1, memory_order_relaxed);
          addchild(p, c, 1);
          if (p->nzombies >= p->sweepat) dead = sweep(p);
          gr_mutex_unlock(&p->mu);
          while (dead) {
            gr_ctx *next = dead->next;
            release(dead);
            dead = next;
          }
          return;
        }
      }
      gr_mutex_unlock(&p->mu);
    }
    p = c->up;   /* the ref c held on the context it was made from */
    gr__chan_release(NULL, c->done);
    gr_mutex_destroy(&c->mu);
    valrelease(c->val);
    valrelease(c->cause);
    free(c->key.s);
    free(c);
    c = p;
  }
}

/* Cancels c alone with err unless it already is, and takes its children
** out of its lists: returns them retained (a zombie's list ref becomes
** the caller's), linked through next. *first is 1 when this call set the
** error. The caller holds a ref on c. */
static gr_ctx *cancelone (gr_ctx *c, const char *err, gr_ctxval *cause,
                          int *first) {
  gr_ctx *kids = NULL, *k, *next;
  gr_mutex_lock(&c->mu);
  *first = c->err == NULL;
  if (*first) {
    c->err = err;
    c->cause = valretain(cause);
    for (k = c->child; k != NULL; k = next) {
      next = k->next;
      retain(k);   /* refs > 0: its last ref is dropped under c->mu */
      k->linked = 0;
      k->next = kids;
      kids = k;
    }
    for (k = c->zombies; k != NULL; k = next) {
      next = k->next;
      k->linked = k->zombie = 0;
      k->next = kids;
      kids = k;
    }
    c->child = c->zombies = NULL;
    c->nzombies = 0;
  }
  gr_mutex_unlock(&c->mu);
  return kids;
}

/* Cancels c and its descendants with err and cause (NULL: none); the
** first cancel of each wins, and keeps its own ref of cause.
** cur is the caller's state, for waking the goroutines on the done
** channels (NULL if none). The caller holds a ref on c. The walk keeps
** the descendants still to cancel in a list (through next) rather than
** recursing, so a deep tree cannot overflow the C stack. */
static void cancel (gr_state *cur, gr_ctx *c, const char *err,
                    gr_ctxval *cause) {
  gr_ctx *work = NULL, *kids, *p;
  int first;
  kids = cancelone(c, err, cause, &first);
  if (!first) return;
  gr__chan_close(cur, c->done);
  /* A canceled context's deadline no longer matters: its timer goes now
  ** rather than when it would fire (with_timeout(3600) then cancel, in a
  ** loop). On the timer thread (cur NULL: a deadline is canceling c) the
  ** timers' lock is held: the timers left fire later and find c done. */
  if (cur != NULL) gr_timer_uncall(&c->timer);
  if ((p = c->parent) != NULL) {   /* out of its parent's list */
    gr_mutex_lock(&p->mu);
    if (c->linked) removechild(p, c);
    gr_mutex_unlock(&p->mu);
  }
  for (;;) {
    while (kids != NULL) {   /* push them on work */
      gr_ctx *k = kids;
      kids = k->next;
      k->next = work;
      work = k;
    }
    if ((c = work) == NULL) break;
    work = c->next;
    c->next = NULL;
    kids = cancelone(c, err, cause, &first);   /* unlinked already */
    if (first) {
      gr__chan_close(cur, c->done);
      if (cur != NULL) gr_timer_uncall(&c->timer);
    }
    release(c);   /* the walk's ref */
  }
}

/* A new context with one ref, made from parent (NULL for background),
** its child when cancelable and parent can be canceled; then canceled at
** once, with the parent's cause, when the parent already is. Raises only
** before it touches the parent. */
static gr_ctx *newctx (lua_State *L, gr_state *S, gr_ctx *parent,
                       int cancelable) {
  gr_ctx *c = (gr_ctx *)calloc(1, sizeof(*c));
  const char *err = NULL;
  if (c == NULL || (c->done = gr__chan_new(0)) == NULL) {
    free(c);
    luaL_error(L, "not enough memory");
  }
  gr_ctxval *cause = NULL;
  atomic_init(&c->refs, 1);
  atomic_store(&c->done->shared, 1);
  gr_mutex_init(&c->mu, GR_LCTX);
  c->cancelable = cancelable;
  c->sweepat = ZOMBIES_MIN;
  c->deadline = parent ? parent->deadline : -1;
  if (parent) {
    retain(parent);
    c->up = parent;
  }
  if (cancelable && parent && parent->cancelable) {
    c->parent = parent;   /* the ref of up */
    gr_mutex_lock(&parent->mu);
    if (parent->err) {
      err = parent->err;
      cause = valretain(parent->cause);
    }
    else addchild(parent, c, 0);
    gr_mutex_unlock(&parent->mu);
    if (err) {
      cancel(S, c, err, cause);
      valrelease(cause);
    }
  }
  return c;
}


/* --- values between states ----------------------------------------------- */

static const char keyskey = 0;   /* registry: key object -> id (weak) */
static const char valskey = 0;   /* registry: id -> value (weak values) */

/* Ids of values and object keys: process-wide, never reused. */
static atomic_llong nextid = 1;

/* Pushes the weak-valued table of values of L's state. */
static void pushvals (lua_State *L) {
  gr_state_weakvalues(L, &valskey);
}

/* Tentative: a value is copied to each state that reads it, so a conn
** or a listener, which would move, stays the state's own. */
static int packone (lua_State *L) {
  lua_pushlightuserdata(L, gr_pack_tentative(L, 1, 1, "value", -1));
  return 1;
}

/* Whether values of Lua type t have an identity, which a copy would lose
** (a weak table never drops the others: they are not kept there). */
static int isobject (int t) {
  return t == LUA_TTABLE || t == LUA_TFUNCTION || t == LUA_TUSERDATA ||
         t == LUA_TTHREAD;
}

/* A new value for the Lua value at idx, packed if it can be (else its
** pack is NULL), and kept in L's table of values if it is an object.
** May raise (memory). */
static gr_ctxval *newval (lua_State *L, int idx) {
  gr_ctxval *v;
  gr_pack *p = NULL;
  idx = lua_absindex(L, idx);
  lua_pushcfunction(L, packone);
  lua_pushvalue(L, idx);
  if (lua_pcall(L, 1, 1, 0) == LUA_OK) p = (gr_pack *)lua_touserdata(L, -1);
  else if (!isobject(lua_type(L, idx)))   /* these always pack, but for */
    lua_error(L);                          /* want of memory */
  lua_pop(L, 1);
  v = (gr_ctxval *)malloc(sizeof(*v));
  if (v == NULL) {
    gr_pack_free(p);
    luaL_error(L, "not enough memory");
  }
  atomic_init(&v->refs, 1);
  v->id = atomic_fetch_add_explicit(&nextid, 1, memory_order_relaxed);
  v->p = p;
  v->type = lua_type(L, idx);
  if (isobject(v->type)) {
    pushvals(L);
    lua_pushvalue(L, idx);
    lua_rawseti(L, -2, v->id);   /* may raise: v is then lost */
    lua_pop(L, 1);
  }
  return v;
}

/* Pushes the value of v: an object is the state's own (the one it was
** made from, or the copy this state made last and still uses), else a
** new copy; nil, booleans, numbers and strings are copies. */
static void pushval (lua_State *L, gr_ctxval *v) {
  if (!isobject(v->type)) {   /* always packed */
    gr_pack_push(L, gr_pack_dup(L, v->p), 0);
    return;
  }
  pushvals(L);
  if (lua_rawgeti(L, -1, v->id) != LUA_TNIL) {
    lua_remove(L, -2);
    return;
  }
  lua_pop(L, 1);
  if (v->p == NULL)
    luaL_error(L, "a %s made in another state cannot be copied to this one",
               lua_typename(L, v->type));
  gr_pack_push(L, gr_pack_dup(L, v->p), 0);
  lua_pushvalue(L, -1);
  lua_rawseti(L, -3, v->id);
  lua_remove(L, -2);
}

/* The id of the object key at idx in L's state; 0 if it has none and
** make is not set. */
static lua_Integer keyid (lua_State *L, int idx, int make) {
  lua_Integer id;
  idx = lua_absindex(L, idx);
  gr_state_weaktable(L, &keyskey);
  lua_pushvalue(L, idx);
  if (lua_rawget(L, -2) == LUA_TNUMBER) id = lua_tointeger(L, -1);
  else if (!make) id = 0;
  else {
    id = atomic_fetch_add_explicit(&nextid, 1, memory_order_relaxed);
    lua_pushvalue(L, idx);
    lua_pushinteger(L, id);
    lua_rawset(L, -4);
  }
  lua_pop(L, 2);
  return id;
}

/* Describes the key at idx in *k: by value, or by its object's id (0 when
** it has none and make is not set: no context has that key). The string
** of a key is only borrowed from L. */
static void getkey (lua_State *L, int idx, gr_ctxkey *k, int make) {
  k->type = lua_type(L, idx);
  k->s = NULL;
  switch (k->type) {
    case LUA_TBOOLEAN:
      k->u.b = lua_toboolean(L, idx);
      break;
    case LUA_TNUMBER:
      k->isint = lua_isinteger(L, idx);
      if (k->isint) k->u.i = lua_tointeger(L, idx);
      else k->u.n = lua_tonumber(L, idx);
      break;
    case LUA_TSTRING:
      k->s = (char *)lua_tolstring(L, idx, &k->len);
      break;
    default:
      k->u.i = keyid(L, idx, make);
  }
}

/* Whether the integer i equals the float n, as Lua's == has it. */
static int inteqnum (lua_Integer i, lua_Number n) {
  lua_Integer ni;
  return n == floor(n) && lua_numbertointeger(n, &ni) && ni == i;
}

/* Whether the key q (a query) is the key k, as Lua's == of the two. */
static int keyeq (const gr_ctxkey *k, const gr_ctxkey *q) {
  if (k->type != q->type) return 0;
  switch (k->type) {
    case LUA_TBOOLEAN: return k->u.b == q->u.b;
    case LUA_TNUMBER:
      if (k->isint && q->isint) return k->u.i == q->u.i;
      if (!k->isint && !q->isint) return k->u.n == q->u.n;
      return k->isint ? inteqnum(k->u.i, q->u.n) : inteqnum(q->u.i, k->u.n);
    case LUA_TSTRING:
      return k->len == q->len && memcmp(k->s, q->s, k->len) == 0;
    default: return k->u.i == q->u.i;
  }
}


/* --- handles ------------------------------------------------------------- */

/* Raises unless every value of c and the contexts it was made from can
** cross to another state. */
static void checkcross (lua_State *L, gr_ctx *c) {
  for (; c != NULL; c = c->up)
    if (c->val && c->val->p == NULL)
      luaL_error(L, "a context whose value is a %s cannot be copied to "
                 "another state", lua_typename(L, c->val->type));
}

/* A handle in a pack (copy.c): the context crosses with a new ref; aux
** is the kind of handle (0 context, 1 cancel function), one type each. */
static void *take (lua_State *L, int idx) {
  gr_ctxud *u = (gr_ctxud *)lua_touserdata(L, idx);
  if (u->c == NULL) return NULL;
  checkcross(L, u->c);   /* may raise: before the ref */
  retain(u->c);
  return u->c;
}
static void *ctxtake (lua_State *L, int idx, int *aux) {
  *aux = 0;
  return take(L, idx);
}

static void *canceltake (lua_State *L, int idx, int *aux) {
  *aux = 1;
  return take(L, idx);
}

/* Handles have two user values, the anchors of "Values": the handle
** they were made from (a cancel function: its context's), and their
** with_value value. */
#define NANCHORS 2

static void ctxpush (lua_State *L, void *c, int aux) {
  gr_ctxud *u = (gr_ctxud *)lua_newuserdatauv(L, sizeof(*u), NANCHORS);
  u->c = (gr_ctx *)c;   /* the pack's ref is the handle's now */
  luaL_setmetatable(L, aux ? CANCELMT : CTXMT);
}

static void ctxdrop (lua_State *L, void *c) {
  (void)L;
  release((gr_ctx *)c);
}

static const gr_objtype ctxtype = {
  CTXMT, ctxtake, ctxpush, ctxdrop, NULL
};
static const gr_objtype canceltype = {
  CANCELMT, canceltake, ctxpush, ctxdrop, NULL
};

/* Returns the context of the live handle of kind mt at idx; raises for
** another value or a handle already finalized. */
static gr_ctx *checkud (lua_State *L, int idx, const char *mt) {
  gr_ctxud *u = (gr_ctxud *)luaL_checkudata(L, idx, mt);
  if (u->c == NULL) luaL_error(L, "attempt to use a finalized %s", mt);
  return u->c;
}

static gr_ctx *check (lua_State *L, int idx) {
  return checkud(L, idx, CTXMT);
}

static const char *geterr (gr_ctx *c) {
  const char *err;
  gr_mutex_lock(&c->mu);
  err = c->err;
  gr_mutex_unlock(&c->mu);
  return err;
}

/* Pushes an empty handle of kind mt, filled once its context exists (so
** that a failed allocation cannot strand a ref); it anchors the value at
** index from (0: none). */
static gr_ctxud *newud (lua_State *L, const char *mt, int from) {
  gr_ctxud *u = (gr_ctxud *)lua_newuserdatauv(L, sizeof(*u), NANCHORS);
  u->c = NULL;
  luaL_setmetatable(L, mt);
  if (from) {
    lua_pushvalue(L, from);
    lua_setiuservalue(L, -2, 1);
  }
  return u;
}

/* Pushes ctx, cancel for a new child of the context at index 1. */
static gr_ctx *newpair (lua_State *L, gr_state *S) {
  gr_ctx *parent = check(L, 1);
  gr_ctxud *uctx = newud(L, CTXMT, 1);
  gr_ctxud *ucancel = newud(L, CANCELMT, lua_gettop(L));
  gr_ctx *c = newctx(L, S, parent, 1);
  uctx->c = c;   /* the creation ref */
  retain(c);
  ucancel->c = c;
  return c;
}

/* Runs on the timer thread (cur NULL), so that the deadline holds
** whatever the creating state does. */
static void ondeadline (void *arg, int fired) {
  gr_ctx *c = (gr_ctx *)arg;
  if (fired) cancel(NULL, c, DEADLINE, NULL);
  release(c);   /* the timer's ref */
}

/* Deadlines past what timer.c can arm (about 31 years: it clamps them)
** are never reached: such a context gets no timer. */
#define NEVER 1e9

/* with_deadline for the deadline at, d seconds from now. A parent whose
** own deadline comes first decides, as in Go: the child gets no timer. */
static int withdeadline (lua_State *L, double at, double d) {
  gr_state *S = gr_getstate(L);
  gr_ctx *c;
  lua_settop(L, 1);
  c = newpair(L, S);
  if (c->deadline >= 0 && c->deadline <= at) return 2;
  c->deadline = at;   /* not yet seen by another thread */
  if (d <= 0) cancel(S, c, DEADLINE, NULL);
  else if (d < NEVER && geterr(c) == NULL) {   /* err: the parent's, at once */
    retain(c);   /* the timer's ref, dropped by ondeadline */
    gr_timer_callsafe(L, d, ondeadline, c, &c->timer);
  }
  return 2;
}

static int lbackground (lua_State *L) {
  gr_ctxud *u = newud(L, CTXMT, 0);
  u->c = newctx(L, gr_getstate(L), NULL, 0);
  return 1;
}

static int lwithcancel (lua_State *L) {
  lua_settop(L, 1);
  newpair(L, gr_getstate(L));
  return 2;
}

/* with_cancel_cause(parent) -> ctx, cancel(cause) */
static int lwithcancelcause (lua_State *L) {
  lua_settop(L, 1);
  newpair(L, gr_getstate(L))->withcause = 1;   /* before anyone sees it */
  return 2;
}

static int lwithtimeout (lua_State *L) {
  double d;
  check(L, 1);
  d = luaL_checknumber(L, 2);
  luaL_argcheck(L, !isnan(d), 2, "duration is NaN");
  return withdeadline(L, (double)uv_hrtime() / 1e9 + d, d);
}

static int lwithdeadline (lua_State *L) {
  double at;
  check(L, 1);
  at = luaL_checknumber(L, 2);
  luaL_argcheck(L, !isnan(at), 2, "deadline is NaN");
  return withdeadline(L, at, at - (double)uv_hrtime() / 1e9);
}

/* with_value(parent, key, v): a context that carries v under key, and is
** canceled with its parent */
static int lwithvalue (lua_State *L) {
  gr_ctx *parent = check(L, 1), *c;
  gr_ctxkey k;
  gr_ctxval *v;
  gr_ctxud *u;
  char *s = NULL;
  luaL_argcheck(L, !lua_isnoneornil(L, 2), 2, "nil key");
  lua_settop(L, 3);
  getkey(L, 2, &k, 1);
  u = newud(L, CTXMT, 1);
  lua_pushvalue(L, 3);
  lua_setiuservalue(L, -2, 2);
  if (k.type == LUA_TSTRING) {
    if ((s = (char *)malloc(k.len + 1)) == NULL)
      return luaL_error(L, "not enough memory");
    memcpy(s, k.s, k.len);
    k.s = s;
  }
  v = newval(L, 3);   /* may raise: s is lost then */
  c = newctx(L, gr_getstate(L), parent, parent->cancelable);
  c->key = k;   /* not yet seen by another thread */
  c->val = v;
  u->c = c;
  return 1;
}

/* without_cancel(parent): never canceled, with no deadline; carries the
** parent's values */
static int lwithoutcancel (lua_State *L) {
  gr_ctx *parent = check(L, 1);
  gr_ctxud *u;
  lua_settop(L, 1);
  u = newud(L, CTXMT, 1);
  u->c = newctx(L, gr_getstate(L), parent, 0);
  u->c->deadline = -1;
  return 1;
}

/* ctx:done() -> receive-only channel, closed when ctx is canceled */
static int ldone (lua_State *L) {
  gr_chan_pushud(L, check(L, 1)->done, GR_DIRRECV);
  return 1;
}

/* ctx:err() -> nil, "context canceled" or "context deadline exceeded" */
static int lerr (lua_State *L) {
  const char *err = geterr(check(L, 1));
  if (err) lua_pushstring(L, err);
  else lua_pushnil(L);
  return 1;
}

/* ctx:value(key) -> the value of the nearest context made with key, or
** nil */
static int lvalue (lua_State *L) {
  gr_ctx *c = check(L, 1);
  gr_ctxkey q;
  lua_settop(L, 2);
  getkey(L, 2, &q, 0);
  if (q.type == LUA_TNIL || (q.type != LUA_TBOOLEAN &&
      q.type != LUA_TNUMBER && q.type != LUA_TSTRING && q.u.i == 0))
    c = NULL;   /* nil, or an object never used as a key here */
  for (; c != NULL; c = c->up) {
    if (c->val && keyeq(&c->key, &q)) {
      pushval(L, c->val);
      return 1;
    }
  }
  lua_pushnil(L);
  return 1;
}

/* ctx:deadline() -> t, true; or nil, false when it has none */
static int ldeadline (lua_State *L) {
  gr_ctx *c = check(L, 1);
  if (c->deadline < 0) {
    lua_pushnil(L);
    lua_pushboolean(L, 0);
  }
  else {
    lua_pushnumber(L, c->deadline);
    lua_pushboolean(L, 1);
  }
  return 2;
}

/* g.context.cause(ctx) -> nil while ctx is not canceled; the cause given
** to the cancel that canceled it (or its ancestor), else its err(). Once
** set, c->cause stays as long as c, which the handle at 1 keeps. */
static int lcause (lua_State *L) {
  gr_ctx *c = check(L, 1);
  const char *err;
  gr_ctxval *cause;
  gr_mutex_lock(&c->mu);
  err = c->err;
  cause = c->cause;
  gr_mutex_unlock(&c->mu);
  if (cause) pushval(L, cause);
  else if (err) lua_pushstring(L, err);
  else lua_pushnil(L);
  return 1;
}

/* cancel([cause]): cancels the context (with cause, for one made by
** with_cancel_cause); later calls do nothing */
static int lcancel (lua_State *L) {
  gr_ctx *c = checkud(L, 1, CANCELMT);
  gr_ctxval *cause = NULL;
  if (c->withcause && !lua_isnoneornil(L, 2)) cause = newval(L, 2);
  cancel(gr_getstate(L), c, CANCELED, cause);
  valrelease(cause);
  return 0;
}

/* __gc of both kinds: drops the handle's ref; idempotent. */
static int gc (lua_State *L, const char *mt) {
  gr_ctxud *u = (gr_ctxud *)luaL_checkudata(L, 1, mt);
  if (u->c) {
    gr_ctx *c = u->c;
    u->c = NULL;
    release(c);
  }
  return 0;
}

static int lctx_gc (lua_State *L) { return gc(L, CTXMT); }
static int lcancel_gc (lua_State *L) { return gc(L, CANCELMT); }

/* "goroutines.context: 0x...", the address of the C object (the same for
** a context and its cancel function, in every state). */
static int tostr (lua_State *L, const char *mt) {
  gr_ctxud *u = (gr_ctxud *)luaL_checkudata(L, 1, mt);
  if (u->c) lua_pushfstring(L, "%s: %p", mt, (void *)u->c);
  else lua_pushfstring(L, "%s: finalized", mt);
  return 1;
}

static int lctx_tostring (lua_State *L) { return tostr(L, CTXMT); }
static int lcancel_tostring (lua_State *L) { return tostr(L, CANCELMT); }

static const luaL_Reg ctxmethods[] = {
  {"done", ldone}, {"err", lerr}, {"value", lvalue},
  {"deadline", ldeadline}, {NULL, NULL}
};

static const luaL_Reg funcs[] = {
  {"background", lbackground},
  {"with_cancel", lwithcancel},
  {"with_timeout", lwithtimeout},
  {"with_deadline", lwithdeadline},
  {"with_cancel_cause", lwithcancelcause},
  {"with_value", lwithvalue},
  {"without_cancel", lwithoutcancel},
  {"cause", lcause},
  {NULL, NULL}
};

/* Registers g.context in the module table at the top of L. */
void gr_context_open (lua_State *L) {
  luaL_newmetatable(L, CTXMT);
  gr_objtype_set(L, -1, &ctxtype);
  gr_state_setfuncs(L, (const luaL_Reg[]){
    {"__gc", lctx_gc}, {"__tostring", lctx_tostring}, {NULL, NULL}});
  lua_newtable(L);
  gr_state_setfuncs(L, ctxmethods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_newmetatable(L, CANCELMT);
  gr_objtype_set(L, -1, &canceltype);
  gr_state_setfuncs(L, (const luaL_Reg[]){
    {"__gc", lcancel_gc}, {"__tostring", lcancel_tostring},
    {"__call", lcancel}, {NULL, NULL}});
  lua_pop(L, 1);
  lua_newtable(L);
  gr_state_setfuncs(L, funcs);
  lua_setfield(L, -2, "context");
}
