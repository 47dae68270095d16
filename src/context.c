/*
** context.c -- g.context: background, with_cancel, with_timeout,
** with_deadline; ctx:done(), ctx:err() and the cancel function.
**
** A context is a reference-counted C object, so goroutines of any state
** share it (it crosses by handle, and so does its cancel function, a
** callable userdata). Its done channel is shared from birth, since any
** thread may close it.
**
** Ownership: c->refs counts the handles of c (context and cancel
**   function, in any state or in transit), its children (each holds one
**   on its parent from birth until it is freed), its pending deadline
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
** Lock order: one context's mu at a time, never two at once, never with
**   a channel lock; channels are closed and contexts released only after
**   it is dropped. Nothing under a mu can raise or run a finalizer.
*/
#include <math.h>
#include <stdlib.h>

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

typedef struct gr_ctx {
  atomic_int refs;      /* see "Ownership" above */
  gr_chan *done;        /* ref held; closed by the first cancel */
  struct gr_ctx *parent;  /* immutable; ref held until c is freed; NULL
                           for a root or a child of a root */
  int cancelable;       /* immutable; 0 for background */
  gr_timer *deadline;   /* its pending deadline timer, or NULL (protected
                           by the timers' lock: timer.c) */
  gr_mutex mu;
  /* protected by mu: */
  const char *err;      /* NULL, CANCELED or DEADLINE */
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
    gr__chan_release(NULL, c->done);
    gr_mutex_destroy(&c->mu);
    free(c);
    c = p;   /* drop the ref c held on its parent */
  }
}

/* Cancels c alone with err unless it already is, and takes its children
** out of its lists: returns them retained (a zombie's list ref becomes
** the caller's), linked through next. *first is 1 when this call set the
** error. The caller holds a ref on c. */
static gr_ctx *cancelone (gr_ctx *c, const char *err, int *first) {
  gr_ctx *kids = NULL, *k, *next;
  gr_mutex_lock(&c->mu);
  *first = c->err == NULL;
  if (*first) {
    c->err = err;
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

/* Cancels c and its descendants with err; the first cancel of each wins.
** cur is the caller's state, for waking the goroutines on the done
** channels (NULL if none). The caller holds a ref on c. The walk keeps
** the descendants still to cancel in a list (through next) rather than
** recursing, so a deep tree cannot overflow the C stack. */
static void cancel (gr_state *cur, gr_ctx *c, const char *err) {
  gr_ctx *work = NULL, *kids, *p;
  int first;
  kids = cancelone(c, err, &first);
  if (!first) return;
  gr__chan_close(cur, c->done);
  /* A canceled context's deadline no longer matters: its timer goes now
  ** rather than when it would fire (with_timeout(3600) then cancel, in a
  ** loop). On the timer thread (cur NULL: a deadline is canceling c) the
  ** timers' lock is held: the timers left fire later and find c done. */
  if (cur != NULL) gr_timer_uncall(&c->deadline);
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
    kids = cancelone(c, err, &first);   /* unlinked already */
    if (first) {
      gr__chan_close(cur, c->done);
      if (cur != NULL) gr_timer_uncall(&c->deadline);
    }
    release(c);   /* the walk's ref */
  }
}

/* A new context with one ref, child of parent (NULL for background);
** canceled at once when the parent already is. Raises only before it
** touches the parent. */
static gr_ctx *newctx (lua_State *L, gr_state *S, gr_ctx *parent) {
  gr_ctx *c = (gr_ctx *)calloc(1, sizeof(*c));
  const char *err = NULL;
  if (c == NULL || (c->done = gr__chan_new(0)) == NULL) {
    free(c);
    luaL_error(L, "not enough memory");
  }
  atomic_init(&c->refs, 1);
  atomic_store(&c->done->shared, 1);
  gr_mutex_init(&c->mu, GR_LCTX);
  c->cancelable = parent != NULL;
  c->sweepat = ZOMBIES_MIN;
  if (parent && parent->cancelable) {
    retain(parent);
    c->parent = parent;
    gr_mutex_lock(&parent->mu);
    if (parent->err) err = parent->err;
    else addchild(parent, c, 0);
    gr_mutex_unlock(&parent->mu);
    if (err) cancel(S, c, err);
  }
  return c;
}


/* --- handles ------------------------------------------------------------- */

/* A handle in a pack (copy.c): the context crosses with a new ref; aux
** is the kind of handle (0 context, 1 cancel function), one type each. */
static void *take (lua_State *L, int idx) {
  gr_ctxud *u = (gr_ctxud *)lua_touserdata(L, idx);
  if (u->c == NULL) return NULL;
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

static void ctxpush (lua_State *L, void *c, int aux) {
  gr_ctxud *u = (gr_ctxud *)lua_newuserdatauv(L, sizeof(*u), 0);
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
** that a failed allocation cannot strand a ref). */
static gr_ctxud *newud (lua_State *L, const char *mt) {
  gr_ctxud *u = (gr_ctxud *)lua_newuserdatauv(L, sizeof(*u), 0);
  u->c = NULL;
  luaL_setmetatable(L, mt);
  return u;
}

/* Pushes ctx, cancel for a new child of the context at index 1. */
static gr_ctx *newpair (lua_State *L, gr_state *S) {
  gr_ctx *parent = check(L, 1);
  gr_ctxud *uctx = newud(L, CTXMT), *ucancel = newud(L, CANCELMT);
  gr_ctx *c = newctx(L, S, parent);
  uctx->c = c;   /* the creation ref */
  retain(c);
  ucancel->c = c;
  return c;
}

/* Runs on the timer thread (cur NULL), so that the deadline holds
** whatever the creating state does. */
static void ondeadline (void *arg, int fired) {
  gr_ctx *c = (gr_ctx *)arg;
  if (fired) cancel(NULL, c, DEADLINE);
  release(c);   /* the timer's ref */
}

/* Deadlines past what timer.c can arm (about 31 years: it clamps them)
** are never reached: such a context gets no timer. */
#define NEVER 1e9

/* with_deadline for a deadline d seconds from now. */
static int withdeadline (lua_State *L, double d) {
  gr_state *S = gr_getstate(L);
  gr_ctx *c;
  lua_settop(L, 1);
  c = newpair(L, S);
  if (d <= 0) cancel(S, c, DEADLINE);
  else if (d < NEVER && geterr(c) == NULL) {   /* err: the parent's, at once */
    retain(c);   /* the timer's ref, dropped by ondeadline */
    gr_timer_callsafe(L, d, ondeadline, c, &c->deadline);
  }
  return 2;
}

static int lbackground (lua_State *L) {
  gr_ctxud *u = newud(L, CTXMT);
  u->c = newctx(L, gr_getstate(L), NULL);
  return 1;
}

static int lwithcancel (lua_State *L) {
  lua_settop(L, 1);
  newpair(L, gr_getstate(L));
  return 2;
}

static int lwithtimeout (lua_State *L) {
  double d;
  check(L, 1);
  d = luaL_checknumber(L, 2);
  luaL_argcheck(L, !isnan(d), 2, "duration is NaN");
  return withdeadline(L, d);
}

static int lwithdeadline (lua_State *L) {
  double at;
  check(L, 1);
  at = luaL_checknumber(L, 2);
  luaL_argcheck(L, !isnan(at), 2, "deadline is NaN");
  return withdeadline(L, at - (double)uv_hrtime() / 1e9);
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

/* cancel(): cancels the context; later calls do nothing */
static int lcancel (lua_State *L) {
  cancel(gr_getstate(L), checkud(L, 1, CANCELMT), CANCELED);
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
  {"done", ldone}, {"err", lerr}, {NULL, NULL}
};

static const luaL_Reg funcs[] = {
  {"background", lbackground},
  {"with_cancel", lwithcancel},
  {"with_timeout", lwithtimeout},
  {"with_deadline", lwithdeadline},
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
