/*
** select.c -- g.select, after Go's runtime/select.go.
**
** A case is a userdata (gr_case) with the case metatable and up to three
** user values: 1 the channel handle (which keeps the channel alive), 2 the
** handler, 3 the value to send when it is no scalar (a scalar, nil, a
** boolean or a number, is kept in the gr_case: a send case of one is
** smaller and captured without a Lua call); a case has only the user
** values it needs. ch:on_recv([h]) and ch:on_send(v, [h]) make them; a
** handler-less receive case is cached in the handle's user value, so a
** loop that only receives allocates nothing but its case list.
**
** Values: the select first copies its case objects to the Lua stack (so
**   that nothing that runs meanwhile can change them), then captures
**   every value to send (scalars inline, others in a to-be-closed scratch
**   box, so that a raise leaks nothing). A value is captured as a plain
**   Lua value (GR_VREF) only if its channel is unshared once every value
**   of the select has been captured: packing one may share another's
**   channel. Until it reaches a channel or a waiter, a value belongs to
**   its scase.
** Protocol: every channel of the select is locked once, in ascending
**   address order (duplicates once), and unlocked in reverse. Pass 1 polls
**   the cases in a uniformly random order and completes the first ready
**   one. Otherwise pass 2 enqueues one waiter per case, in that random
**   order, all pointing to the goroutine, and parks; a waker completes a
**   waiter only after winning the CAS 0->1 on g->seldone (gr_waitq_pop),
**   so the goroutine is woken exactly once. Pass 3, in the continuation,
**   locks the channels again and removes the waiters that are still
**   queued.
** Lock order: chan locks in address order; nothing else is taken under
**   them; waking happens after they are all dropped.
** Leak detection (leak.c): a select parked on channels that only its
**   state holds (none shared, none with a timer behind it) may be
**   anchored by their root handles, read from its case objects; one with
**   no case at all by nothing.
*/
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "chan.h"
#include "errors.h"
#include "select.h"
#include "state.h"
#include "wait.h"

#define STACKCASES 16   /* cases handled without a heap allocation */
#define SPAREWAITERS 256  /* waiters in the blocks a state keeps for reuse
                           (beyond one block, which is kept whatever its
                           size) */
#define MAXCASES 65536  /* cases in one select, as Go's reflect.Select */
#define SELBOXMT "goroutines.selbox"
#define CASE0 3         /* stack index of the first case (see lselect) */

/* Waiters of a parked select: one per enabled case. */
typedef struct gr_selblock {
  struct gr_selblock *nextspare;  /* in S->selspare's list, while spare */
  int cap;              /* waiters it has room for (and lock slots) */
  int n;                /* waiters */
  int nlock;            /* distinct channels in lockorder */
  gr_chan **lockorder;  /* distinct channels, ascending addresses */
  gr_waiter w[];
} gr_selblock;

/* A case object. Its channel is that of the handle in user value 1,
** read at each select, so that a handle finalized by hand is noticed. */
typedef struct gr_case {
  gr_chanud *u;         /* the handle of user value 1 (alive as long as the
                           case): u->c is NULL once it is finalized */
  int dir;              /* GR_DIRRECV or GR_DIRSEND */
  int hashandler;       /* user value 2 is its handler */
  int boxed;            /* send: its value (user value 3) is no scalar, so
                           capturing it needs the scratch box */
  gr_value scalar;      /* send, not boxed: its value (no ref, no pack) */
} gr_case;

/* A parsed case. */
typedef struct scase {
  gr_chan *c;           /* NULL for a disabled case */
  int dir;              /* GR_DIRRECV or GR_DIRSEND */
  gr_value val;         /* value to send: owned here until it is handed
                           to the channel or to a waiter (then nil) */
} scase;

/* Scratch memory of a select that captures values to send or has more
** than STACKCASES cases, in a to-be-closed userdata (lauxlib's UBox):
** its __close and __gc discard the values still held, so that a raise
** anywhere between capture and hand-over (a value that cannot cross,
** memory) leaks no registry ref and no pack. */
typedef struct selbox {
  int n;                /* cases whose val is valid */
  scase *cs;            /* n cases */
  gr_chan **order;      /* n slots for the lock order */
  int *poll;            /* n slots for the poll order */
} selbox;


/* --- case constructors ---------------------------------------------------- */

/* Pushes a case of the handle at index 1, with the handler at index
** handler and the value at index value (0: none). */
static void newcase (lua_State *L, int dir, int handler, int value) {
  int t = value ? lua_type(L, value) : LUA_TNIL;
  int boxed = t == LUA_TLIGHTUSERDATA || t > LUA_TNUMBER;
  gr_case *k = (gr_case *)lua_newuserdatauv(L, sizeof(gr_case),
                                            boxed ? 3 : handler ? 2 : 1);
  k->u = (gr_chanud *)lua_touserdata(L, 1);
  k->dir = dir;
  k->hashandler = handler != 0;
  k->boxed = boxed;
  gr_value_setnil(&k->scalar);
  if (value && !boxed)
    gr_value_capture(L, value, 0, &k->scalar);   /* a scalar: no ref */
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  if (handler) {
    lua_pushvalue(L, handler);
    lua_setiuservalue(L, -2, 2);
  }
  if (boxed) {
    lua_pushvalue(L, value);
    lua_setiuservalue(L, -2, 3);
  }
  lua_pushvalue(L, GR_UV_CASEMT);
  lua_setmetatable(L, -2);
}

/* ch:on_recv([handler]). Without a handler, the case of the handle,
** made at the first call and kept in its user value 1: a case object is
** immutable (a select only reads it), so every select may share it.
** That call, ch:on_recv() on a handle that has its case, takes a short
** way, as it comes at every select of a loop: the checks of
** gr_chan_checkdir, the handle's metatable left on the stack (a C
** function returns its top values). */
static int lchan_onrecv (lua_State *L) {
  gr_chanud *u = (gr_chanud *)lua_touserdata(L, 1);
  if (lua_gettop(L) == 1 && u != NULL) {
    if (lua_getmetatable(L, 1) &&
        lua_topointer(L, -1) == lua_topointer(L, GR_UV_CHANMT) &&
        u->c != NULL && (u->dir & GR_DIRRECV) &&
        lua_getiuservalue(L, 1, 1) == LUA_TUSERDATA)
      return 1;
    lua_settop(L, 1);
  }
  gr_chan_checkdir(L, 1, GR_DIRRECV);
  if (!lua_isnoneornil(L, 2)) {
    gr_sched_checkcallable(L, 2);
    newcase(L, GR_DIRRECV, 2, 0);
    return 1;
  }
  if (lua_getiuservalue(L, 1, 1) == LUA_TUSERDATA)
    return 1;   /* the cached case (only on_recv sets user value 1) */
  lua_pop(L, 1);
  newcase(L, GR_DIRRECV, 0, 0);
  lua_pushvalue(L, -1);
  lua_setiuservalue(L, 1, 1);
  return 1;
}

/* ch:on_send(value, [handler]) */
static int lchan_onsend (lua_State *L) {
  gr_chan_checkvalue(L, gr_chan_checkdir(L, 1, GR_DIRSEND), 2);
  luaL_checkany(L, 2);
  if (!lua_isnoneornil(L, 3)) gr_sched_checkcallable(L, 3);
  newcase(L, GR_DIRSEND, lua_isnoneornil(L, 3) ? 0 : 3, 2);
  return 1;
}


/* --- scratch box ---------------------------------------------------------- */

static int selbox_close (lua_State *L) {
  selbox *b = (selbox *)luaL_checkudata(L, 1, SELBOXMT);
  int i;
  for (i = 0; i < b->n; i++)   /* idempotent: discard leaves nil */
    gr_value_discard(L, &b->cs[i].val);
  return 0;
}

/* Pushes a box for n cases, marked to be closed, and returns it. */
static selbox *newbox (lua_State *L, int n) {
  size_t sz = sizeof(selbox) + (size_t)n * (sizeof(scase) +
              sizeof(gr_chan *) + sizeof(int));
  selbox *b = (selbox *)lua_newuserdatauv(L, sz, 0);
  int i;
  b->cs = (scase *)(b + 1);
  b->order = (gr_chan **)(b->cs + n);
  b->poll = (int *)(b->order + n);
  for (i = 0; i < n; i++) {
    b->cs[i].c = NULL;
    gr_value_setnil(&b->cs[i].val);
  }
  b->n = n;
  luaL_setmetatable(L, SELBOXMT);
  lua_toclose(L, -1);
  return b;
}

static void discardall (lua_State *L, scase *cs, int n) {
  int i;
  for (i = 0; i < n; i++) gr_value_discard(L, &cs[i].val);
}


/* --- locking ---------------------------------------------------------------- */

static void lockall (gr_chan **order, int n) {
  int i;
  for (i = 0; i < n; i++) gr_chan_lock(order[i]);
}

static void unlockall (gr_chan **order, int n) {
  int i;
  for (i = n - 1; i >= 0; i--) gr_chan_unlock(order[i]);
}

static int cmpchan (const void *a, const void *b) {
  uintptr_t x = (uintptr_t)*(gr_chan *const *)a;
  uintptr_t y = (uintptr_t)*(gr_chan *const *)b;
  return (x > y) - (x < y);
}

/* Fills order with the distinct channels of cs, in ascending address
** order; returns their count. Insertion for few cases, qsort for many
** (a long case list must not cost quadratic time). */
static int sortlocks (scase *cs, int n, gr_chan **order) {
  int i, j, m = 0;
  if (n > STACKCASES) {
    for (i = 0; i < n; i++)
      if (cs[i].c != NULL) order[m++] = cs[i].c;
    qsort(order, (size_t)m, sizeof(gr_chan *), cmpchan);
    for (i = j = 0; i < m; i++)
      if (j == 0 || order[j - 1] != order[i]) order[j++] = order[i];
    return j;
  }
  for (i = 0; i < n; i++) {
    gr_chan *c = cs[i].c;
    if (c == NULL) continue;
    for (j = m; j > 0 && (uintptr_t)order[j - 1] > (uintptr_t)c; j--)
      order[j] = order[j - 1];
    if (j > 0 && order[j - 1] == c) {  /* duplicate: undo the shift */
      for (; j < m; j++) order[j] = order[j + 1];
      continue;
    }
    order[j] = c;
    m++;
  }
  return m;
}


/* --- results ------------------------------------------------------------------ */

static int handler_k (lua_State *L, int status, lua_KContext ctx) {
  (void)status; (void)ctx;
  return lua_gettop(L);
}

/* Calls the function at index 1 with the nargs arguments above it (the
** whole stack) and returns all its results. */
static int callhandler (lua_State *L, int nargs) {
  lua_callk(L, nargs, LUA_MULTRET, 0, handler_k);
  return handler_k(L, LUA_OK, 0);
}

/* Closes the scratch box at index box (0: none). lua_closeslot, not
** lua_settop: Lua 5.4.4's lua_settop keeps a stack pointer across the
** __close call, which may move the stack. */
static void closebox (lua_State *L, int box) {
  if (box) lua_closeslot(L, box);
}

/* Delivers the outcome of case i, whose case object is at stack index
** slot: its handler's results, or i (and v, ok for a receive), pushed
** on top (a C function returns its top values). v is consumed. Closes
** the scratch box first. */
static int deliver (lua_State *L, int slot, int i, int dir, gr_value *v,
                    int ok, int box) {
  gr_case *k = (gr_case *)lua_touserdata(L, slot);
  closebox(L, box);
  if (!k->hashandler) {
    lua_pushinteger(L, i);
    if (dir == GR_DIRSEND) return 1;
    gr_value_push(L, v);
    lua_pushboolean(L, ok);
    return 3;
  }
  lua_getiuservalue(L, slot, 2);
  lua_replace(L, 1);
  lua_settop(L, 1);
  if (dir == GR_DIRSEND) return callhandler(L, 0);
  gr_value_push(L, v);
  lua_pushboolean(L, ok);
  return callhandler(L, 2);
}

/* Runs the default at index 2. Closes the scratch box first. */
static int rundefault (lua_State *L, int box) {
  closebox(L, box);
  if (lua_type(L, 2) == LUA_TBOOLEAN) {
    lua_settop(L, 0);
    lua_pushliteral(L, "default");
    return 1;
  }
  lua_settop(L, 2);
  lua_remove(L, 1);
  return callhandler(L, 0);
}


/* --- parking -------------------------------------------------------------- */

/* A block for n waiters, taken before any channel is locked (nothing
** is allocated under a channel lock): the first spare one of the state
** that is large enough, so that goroutines that select in a loop
** allocate nothing in steady state, however many of them are parked at
** once (up to SPAREWAITERS waiters; Go keeps a cache of sudogs per P for
** the same reason). NULL without memory. */
static gr_selblock *getblock (gr_state *S, int n) {
  gr_selblock **p, *b;
  for (p = (gr_selblock **)&S->selspare; (b = *p) != NULL;
       p = &b->nextspare)
    if (b->cap >= n) {
      *p = b->nextspare;
      S->selsparecap -= b->cap;
      return b;
    }
  if (n < 4) n = 4;
  b = (gr_selblock *)malloc(sizeof(*b) + n * sizeof(gr_waiter) +
                            n * sizeof(gr_chan *));
  if (b != NULL) b->cap = n;
  return b;
}

/* Gives a block back: it becomes the first spare, or is freed if the
** spares would then hold more than SPAREWAITERS waiters. */
static void putblock (gr_state *S, gr_selblock *b) {
  if (S->selspare != NULL && S->selsparecap + b->cap > SPAREWAITERS) {
    free(b);
    return;
  }
  b->nextspare = (gr_selblock *)S->selspare;
  S->selspare = b;
  S->selsparecap += b->cap;
}

/* Frees the spare blocks of S (at its close). */
void gr_select_closestate (gr_state *S) {
  gr_selblock *b = (gr_selblock *)S->selspare, *next;
  for (; b != NULL; b = next) {
    next = b->nextspare;
    free(b);
  }
  S->selspare = NULL;
  S->selsparecap = 0;
}

/* Drops the waiters of a parked select: removes those still queued,
** discards the values they still hold (the caller has taken the winner's),
** releases the channel refs and frees the block. L is NULL at state
** close. */
static void freeblock (lua_State *L, gr_g *g) {
  gr_selblock *b = g->sel;
  int i;
  lockall(b->lockorder, b->nlock);
  for (i = 0; i < b->n; i++) {
    gr_waiter *w = &b->w[i];
    if (w->inq) {
      gr_chan *c = (gr_chan *)w->obj;
      gr_waitq_remove(w->dir == GR_DIRRECV ? &c->recvq : &c->sendq, w);
    }
  }
  unlockall(b->lockorder, b->nlock);
  for (i = 0; i < b->n; i++) {
    gr_value_discard(L, &b->w[i].val);
    gr__chan_release(L, (gr_chan *)b->w[i].obj);
  }
  g->sel = NULL;
  g->cancel = NULL;
  if (L != NULL) putblock(g->S, b);
  else free(b);   /* the state closes */
}

static void cancel (gr_g *g) {
  if (g->sel) freeblock(NULL, g);
}

/* leakops->drop: g was found leaked. */
static void leakdrop (lua_State *L, gr_g *g) {
  if (g->sel) freeblock(L, g);
}

/* leakops->roots: the root handle of each waiter's case, whose object is
** in the parked frame at CASE0 + caseidx - 1. */
static int leakroots (lua_State *L, gr_g *g) {
  gr_selblock *b = g->sel;
  int i;
  luaL_checkstack(L, b->n + 2, "too many select cases");
  for (i = 0; i < b->n; i++) {
    lua_pushvalue(g->co, CASE0 + b->w[i].caseidx - 1);
    lua_xmove(g->co, L, 1);
    lua_getiuservalue(L, -1, 1);
    gr_chan_pushroot(L, -1);
    lua_replace(L, -3);
    lua_pop(L, 1);
  }
  return b->n;
}

static const gr_leakops leakops = { leakroots, leakdrop };

static int noroots (lua_State *L, gr_g *g) {
  (void)L; (void)g;
  return 0;
}

static void nodrop (lua_State *L, gr_g *g) {
  (void)L;
  g->cancel = NULL;
}

/* A select with no case waits on nothing: nothing can wake it. */
static const gr_leakops noleakops = { noroots, nodrop };

static int noselect_k (lua_State *L, int status, lua_KContext ctx) {
  (void)ctx;
  gr_getstate(L)->current->cancel = NULL;
  gr_errors_raisewait(L, gr_getstate(L), status < 0 ? status : GR_EDEADLOCK);
  return 0;
}

/* The continuation of a parked select; ctx is the stack index of the
** scratch box (0: none). */
static int select_k (lua_State *L, int status, lua_KContext ctx) {
  gr_state *S = gr_getstate(L);
  gr_g *g = S->current;
  gr_selblock *b = g->sel;
  gr_waiter *win = NULL;
  gr_value v;
  int i, dir, ok;
  if (status < 0) {
    /* Winning the select's CAS withdraws every waiter at once; if a
    ** waker on another thread won, its wake lands, then it completes. */
    int expected = 0;
    if (gr_wait_settle(g, atomic_compare_exchange_strong(&g->seldone,
                                                         &expected, 1))) {
      freeblock(L, g);   /* no waker can complete it any more */
      gr_errors_raisewait(L, S, status);
    }
  }
  for (i = 0; i < b->n; i++)
    if (b->w[i].caseidx == g->selwin) win = &b->w[i];
  GR_ASSERT(win != NULL);
  dir = win->dir;
  ok = win->success;
  v = win->val;
  gr_value_setnil(&win->val);
  freeblock(L, g);
  if (dir == GR_DIRSEND && !ok) {
    gr_value_discard(L, &v);
    return luaL_error(L, "send on closed channel");
  }
  return deliver(L, CASE0 + g->selwin - 1, g->selwin, dir, &v, ok,
                 (int)ctx);
}

/* Pass 2: enqueues a waiter per enabled case, in the random poll order
** (so that, as with Go's, a select blocked on one channel twice is not
** always completed through the same case), and parks. Requires every
** channel locked; drops the locks. box is the stack index of the scratch
** box (0: none). */
static int park (lua_State *L, gr_state *S, scase *cs, int *poll,
                 int nactive, gr_chan **order, int nlock, int mode,
                 int box, gr_selblock *b) {
  gr_g *g = S->current;
  int j;
  b->n = nactive;
  b->nlock = nlock;
  b->lockorder = (gr_chan **)(b->w + nactive);
  memcpy(b->lockorder, order, nlock * sizeof(gr_chan *));
  atomic_store_explicit(&g->seldone, 0, memory_order_relaxed);
  g->selwin = 0;
  g->sel = b;
  gr_sched_prepark(g, mode, GR_WSELECT, cancel);
  for (j = 0; j < nlock; j++)
    if (atomic_load_explicit(&order[j]->shared, memory_order_acquire) ||
        order[j]->hook != NULL)
      break;
  if (j == nlock) gr_sched_leakpark(S, g, mode, &leakops);
  for (j = 0; j < nactive; j++) {
    int i = poll[j];
    gr_waiter *w = &b->w[j];
    gr_wait_prepare(w, g, cs[i].c, cs[i].dir);
    w->isselect = 1;
    w->caseidx = i + 1;
    if (cs[i].dir == GR_DIRSEND) {
      w->val = cs[i].val;       /* the waiter owns it now */
      gr_value_setnil(&cs[i].val);
      gr_waitq_push(&cs[i].c->sendq, w);
    }
    else
      gr_waitq_push(&cs[i].c->recvq, w);
    gr__chan_retain(cs[i].c);  /* the waiter's ref, dropped in freeblock */
    if (cs[i].c->host) gr_sched_hostwait(g);
  }
  unlockall(order, nlock);
  return gr_sched_park(L, S, g, box, select_k);
}


/* --- parsing -------------------------------------------------------------- */

static int isshared (gr_chan *c) {
  return atomic_load_explicit(&c->shared, memory_order_acquire);
}

/* The channel of the case object at idx; raises if its handle has been
** finalized (by a hand call of __gc). */
static gr_chan *casechan (lua_State *L, gr_case *k) {
  if (k->u->c == NULL) gr_chan_finalized(L);
  return k->u->c;
}

/* The channel of the case object at stack index idx (as casechan). */
static gr_chan *chanat (lua_State *L, int idx) {
  return casechan(L, (gr_case *)lua_touserdata(L, idx));
}

/* Pushes the n entries of the case list at index 1, from stack index
** base on, checking that each is a case or false: the select works on
** these copies, so that code that changes the list meanwhile (a
** finalizer, another goroutine while it waits) cannot change its cases.
** Returns the enabled count; *nsend counts the send cases, *needbox
** those whose value must be anchored or packed. With cs, also reads the
** cases into it, as readcases does. */
static int pushcases (lua_State *L, int n, scase *cs, int *nsend,
                      int *needbox) {
  /* A case is a userdata whose metatable is the case metatable: the same
  ** table, so the same address (lua_topointer is cheaper than
  ** lua_rawequal, and this runs for every case of every select). */
  const void *casemt = lua_topointer(L, GR_UV_CASEMT);
  int i, nactive = 0;
  gr_case *k;
  luaL_checkstack(L, n + LUA_MINSTACK, "too many select cases");
  for (i = 0; i < n; i++) {
    int t = lua_rawgeti(L, 1, i + 1), iscase = 0;
    if (t == LUA_TBOOLEAN && !lua_toboolean(L, -1)) {
      if (cs) {
        cs[i].c = NULL;
        gr_value_setnil(&cs[i].val);
      }
      continue;
    }
    if (t == LUA_TUSERDATA && lua_getmetatable(L, -1)) {
      iscase = lua_topointer(L, -1) == casemt;
      lua_pop(L, 1);
    }
    if (!iscase)
      luaL_argerror(L, 1, lua_pushfstring(L, "case %d is not a select case",
                                          i + 1));
    k = (gr_case *)lua_touserdata(L, -1);
    if (k->dir == GR_DIRSEND) {
      if (k->boxed) (*needbox)++;
      (*nsend)++;
    }
    if (cs) {
      cs[i].dir = k->dir;
      cs[i].c = casechan(L, k);
      gr_value_setnil(&cs[i].val);
    }
    nactive++;
  }
  return nactive;
}

/* Reads the channels of the n cases from stack index base into cs. */
static void readcases (lua_State *L, scase *cs, int n, int base) {
  int i;
  gr_case *k;
  for (i = 0; i < n; i++) {
    gr_value_setnil(&cs[i].val);
    if (lua_type(L, base + i) != LUA_TUSERDATA) {
      cs[i].c = NULL;
      continue;
    }
    k = (gr_case *)lua_touserdata(L, base + i);
    cs[i].dir = k->dir;
    cs[i].c = casechan(L, k);
  }
}

/* Captures the values to send into cs (in the box when one is not a
** scalar: a raise leaks nothing). A value is anchored in the registry
** while its channel is unshared, packed once it is shared; packing a
** channel handle shares that channel, maybe one of this select whose
** value was already anchored: such values are packed in turn, until none
** is left (each round packs at least one). Allocating may run
** finalizers, and one may finalize a handle by hand: the channels are
** read again at the end. With tentative (another case or the default
** may be chosen), the packs are tentative: a handle that would move (a
** conn, a listener) raises, as it would be gone from its state even if
** its case is not chosen. */
static void capture (lua_State *L, scase *cs, int n, int base,
                     int tentative) {
  int i, changed, boxed = 0;
  for (i = 0; i < n; i++) {
    gr_case *k;
    if (cs[i].c == NULL || cs[i].dir != GR_DIRSEND) continue;
    k = (gr_case *)lua_touserdata(L, base + i);
    if (!k->boxed) {
      cs[i].val = k->scalar;   /* a copy: a scalar owns nothing */
      continue;
    }
    boxed = 1;
    lua_getiuservalue(L, base + i, 3);
    gr_value_capture(L, -1, !isshared(chanat(L, base + i)) ? 0
                            : tentative ? GR_PACKTENTATIVE : 1,
                     &cs[i].val);
    lua_pop(L, 1);
  }
  if (!boxed) return;   /* nothing was allocated, nothing to share */
  do {
    changed = 0;
    for (i = 0; i < n; i++)
      if (cs[i].val.type == GR_VREF && isshared(chanat(L, base + i))) {
        if (tentative) gr_value_share_tentative(L, &cs[i].val, "value");
        else gr_value_share(L, &cs[i].val, "value");
        changed = 1;
      }
  } while (changed);
  for (i = 0; i < n; i++)
    if (cs[i].c != NULL) cs[i].c = chanat(L, base + i);
}

/* g.select(cases). Stack: 1 the case list, 2 its default, 3.. the n
** entries of the list, then the scratch box if any. */
static int lselect (lua_State *L) {
  gr_state *S = gr_getstate(L);
  scase stackcs[STACKCASES], *cs = stackcs;
  gr_chan *stackorder[STACKCASES], **order = stackorder;
  int pollstack[STACKCASES], *poll = pollstack;
  int n, i, nactive, nlock, hasdefault, mode, chosen = -1, r = 0;
  int nsend = 0, needbox = 0, box = 0;
  const int base = CASE0;
  gr_selblock *block = NULL;   /* the waiters, should it park */
  gr_waiter *wake = NULL;
  gr_value v;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_getfield(L, 1, "default");
  hasdefault = !lua_isnil(L, 2);
  if (hasdefault && !gr_sched_iscallable(L, 2) &&
      !(lua_type(L, 2) == LUA_TBOOLEAN && lua_toboolean(L, 2)))
    luaL_argerror(L, 1, "default must be a function or true");
  {
    lua_Unsigned len = lua_rawlen(L, 1);
    luaL_argcheck(L, len <= MAXCASES, 1, "more than 65536 cases");
    n = (int)len;
  }
  nactive = pushcases(L, n, n > STACKCASES ? NULL : cs, &nsend, &needbox);
  if (n > STACKCASES || needbox) {
    selbox *b = newbox(L, n);   /* may run finalizers: read again */
    box = lua_gettop(L);
    cs = b->cs;
    order = b->order;
    poll = b->poll;
    readcases(L, cs, n, base);
  }
  if (nsend > 0) capture(L, cs, n, base, nactive > 1 || hasdefault);
  if (nactive == 0) {
    mode = gr_sched_blockmode(L, S);
    if (hasdefault) return rundefault(L, box);
    if (mode == GR_BLOCK_NO)
      return gr_sched_cannotblock(L, GR_WSELECTNOCASES);
    gr_sched_prepark(S->current, mode, GR_WSELECTNOCASES, NULL);
    gr_sched_leakpark(S, S->current, mode, &noleakops);
    return gr_sched_park(L, S, S->current, 0, noselect_k);
  }
  /* A uniformly random permutation of the enabled cases. */
  for (i = 0, r = 0; i < n; i++) {
    int j;
    if (cs[i].c == NULL) continue;
    j = r > 0 ? (int)gr_sched_rand(S, (uint32_t)r + 1) : 0;
    poll[r] = poll[j];
    poll[j] = i;
    r++;
  }
  nlock = sortlocks(cs, n, order);
  /* The full blocking mode only once it would park (gr_sched_quickmode). */
  mode = hasdefault ? GR_BLOCK_NO : gr_sched_quickmode(L, S);
  if (mode != GR_BLOCK_NO &&
      (block = getblock(S, nactive)) == NULL) {
    discardall(L, cs, n);
    return luaL_error(L, "not enough memory");
  }
  lockall(order, nlock);
  for (i = 0; i < nactive; i++) {
    scase *sc = &cs[poll[i]];
    r = sc->dir == GR_DIRRECV ? gr_chan_recvlocked(sc->c, &v, &wake)
                              : gr_chan_sendlocked(sc->c, &sc->val, &wake);
    if (r != GR_WOULDBLOCK) {
      chosen = poll[i];
      if (r == GR_OK && sc->dir == GR_DIRSEND)
        gr_value_setnil(&sc->val);   /* the channel or receiver owns it */
      break;
    }
  }
  if (chosen < 0 && mode == GR_BLOCK_ASK) mode = gr_sched_blockmode(L, S);
  if (chosen < 0 && mode != GR_BLOCK_NO)
    return park(L, S, cs, poll, nactive, order, nlock, mode, box, block);
  unlockall(order, nlock);
  if (block != NULL) putblock(S, block);
  if (wake) gr_wait_wake(S, wake);
  if (nsend > 0) discardall(L, cs, n);   /* receives hold no value */
  if (chosen < 0) {
    if (hasdefault) return rundefault(L, box);
    return gr_sched_cannotblock(L, GR_WSELECT);
  }
  if (cs[chosen].dir == GR_DIRSEND) {
    if (r == GR_CLOSED) return luaL_error(L, "send on closed channel");
    return deliver(L, base + chosen, chosen + 1, GR_DIRSEND, NULL, 1, box);
  }
  return deliver(L, base + chosen, chosen + 1, GR_DIRRECV, &v, r == GR_OK,
                 box);
}

static const luaL_Reg funcs[] = {
  {"select", lselect},
  {NULL, NULL}
};

static const luaL_Reg boxmeta[] = {
  {"__close", selbox_close},
  {"__gc", selbox_close},
  {NULL, NULL}
};

/* The case constructors, methods of every channel handle. */
static const luaL_Reg chanmethods[] = {
  {"on_recv", lchan_onrecv},
  {"on_send", lchan_onsend},
  {NULL, NULL}
};

/* Registers g.select in the module table at the top of L, and the case
** constructors in the channels' methods (chan.c, a layer below, knows
** no select). */
void gr_select_open (lua_State *L) {
  gr_state_setfuncs(L, funcs);
  luaL_getmetatable(L, "goroutines.chan");
  lua_getfield(L, -1, "__index");
  gr_state_setfuncs(L, chanmethods);
  lua_pop(L, 2);
  if (luaL_newmetatable(L, SELBOXMT)) luaL_setfuncs(L, boxmeta, 0);
  lua_pop(L, 1);
}
