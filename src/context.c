/*
** context.c -- g.context: background, with_cancel, with_timeout,
** with_deadline; ctx:done(), ctx:err() and the cancel function.
**
** A context is a reference-counted C object, so goroutines of any state
** share it (it crosses by handle, and so does its cancel function, a
** callable userdata). Its done channel is shared from birth, since any
** thread may close it.
**
** Invariants (ctxlock held): c->err is NULL until the first cancel sets
**   it, for good; a context is in its parent's list of children while
**   both are live and it is not canceled, and then holds a ref on the
**   parent; a parent holds no ref on its children (a child unlinks itself
**   when canceled or freed).
** Lock order: ctxlock alone; channels are closed after it is dropped.
*/
#include <stdlib.h>

#include "chan.h"
#include "context.h"
#include "state.h"
#include "timer.h"

#define CTXMT "goroutines.context"
#define CANCELMT "goroutines.cancelfunc"

static const char *const CANCELED = "context canceled";
static const char *const DEADLINE = "context deadline exceeded";

typedef struct gr_ctx {
  atomic_int refs;      /* handles, children, pending deadline timers */
  gr_chan *done;        /* ref held; closed by the first cancel */
  /* protected by ctxlock: */
  const char *err;      /* NULL, CANCELED or DEADLINE */
  struct gr_ctx *parent;
  struct gr_ctx *child, *next, *prev;   /* children, siblings */
} gr_ctx;

static pthread_mutex_t ctxlock = PTHREAD_MUTEX_INITIALIZER;

typedef struct gr_ctxud {
  gr_ctx *c;            /* one ref, dropped by __gc */
} gr_ctxud;

static void retain (gr_ctx *c) {
  atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
}

/* Unlinks c from its parent; returns the parent, whose ref passes to the
** caller. Requires ctxlock. */
static gr_ctx *detach (gr_ctx *c) {
  gr_ctx *p = c->parent;
  if (p == NULL) return NULL;
  if (c->prev) c->prev->next = c->next;
  else p->child = c->next;
  if (c->next) c->next->prev = c->prev;
  c->parent = c->next = c->prev = NULL;
  return p;
}

static void release (gr_ctx *c) {
  while (c && atomic_fetch_sub_explicit(&c->refs, 1,
                                        memory_order_acq_rel) == 1) {
    gr_ctx *p;
    pthread_mutex_lock(&ctxlock);
    p = detach(c);
    pthread_mutex_unlock(&ctxlock);
    gr_chan_release(NULL, c->done);
    free(c);
    c = p;   /* drop the ref c held on its parent */
  }
}

/* Cancels c and its descendants with err; the first cancel wins. cur is
** the caller's state, for waking the goroutines on the done channels. */
static void cancel (gr_state *cur, gr_ctx *c, const char *err) {
  gr_ctx *kids, *k, *parent;
  pthread_mutex_lock(&ctxlock);
  if (c->err) {
    pthread_mutex_unlock(&ctxlock);
    return;
  }
  c->err = err;
  parent = detach(c);
  kids = c->child;
  c->child = NULL;
  for (k = kids; k != NULL; k = k->next) retain(k);
  pthread_mutex_unlock(&ctxlock);
  gr_chan_close(cur, c->done);
  while ((k = kids) != NULL) {
    kids = k->next;
    pthread_mutex_lock(&ctxlock);
    if (k->parent == c) {   /* still ours: unlink it, it drops our ref */
      detach(k);
      pthread_mutex_unlock(&ctxlock);
      release(c);
    }
    else pthread_mutex_unlock(&ctxlock);
    cancel(cur, k, err);
    release(k);
  }
  release(parent);
}

/* A new context, child of parent (NULL for background); canceled at once
** when the parent already is. */
static gr_ctx *newctx (lua_State *L, gr_state *S, gr_ctx *parent) {
  gr_ctx *c = (gr_ctx *)calloc(1, sizeof(*c));
  const char *err = NULL;
  if (c == NULL || (c->done = gr_chan_new(0)) == NULL) {
    free(c);
    luaL_error(L, "not enough memory");
  }
  atomic_init(&c->refs, 1);
  atomic_store(&c->done->shared, 1);
  if (parent) {
    pthread_mutex_lock(&ctxlock);
    if (parent->err) err = parent->err;
    else {
      retain(parent);
      c->parent = parent;
      c->next = parent->child;
      if (parent->child) parent->child->prev = c;
      parent->child = c;
    }
    pthread_mutex_unlock(&ctxlock);
    if (err) cancel(S, c, err);
  }
  return c;
}


/* --- handles -------------------------------------------------------------------- */

/* Pushes a handle of kind aux (0 context, 1 cancel function) that takes
** over one ref of c. */
void gr_context_push (lua_State *L, void *c, int aux) {
  gr_ctxud *u = (gr_ctxud *)lua_newuserdatauv(L, sizeof(*u), 0);
  u->c = (gr_ctx *)c;
  luaL_setmetatable(L, aux ? CANCELMT : CTXMT);
}

/* If idx is a context or cancel handle, returns its context with a new
** ref, and its kind in *aux. */
void *gr_context_take (lua_State *L, int idx, int *aux) {
  gr_ctxud *u = (gr_ctxud *)luaL_testudata(L, idx, CTXMT);
  *aux = 0;
  if (u == NULL) {
    u = (gr_ctxud *)luaL_testudata(L, idx, CANCELMT);
    *aux = 1;
  }
  if (u == NULL || u->c == NULL) return NULL;
  retain(u->c);
  return u->c;
}

void gr_context_drop (void *c) {
  release((gr_ctx *)c);
}

static gr_ctx *check (lua_State *L, int idx) {
  return ((gr_ctxud *)luaL_checkudata(L, idx, CTXMT))->c;
}

/* Pushes ctx, cancel for c (whose creation ref becomes the context's). */
static int pushpair (lua_State *L, gr_ctx *c) {
  gr_context_push(L, c, 0);
  retain(c);
  gr_context_push(L, c, 1);
  return 2;
}

/* Runs on the timer thread (cur NULL), so that the deadline holds
** whatever the creating state does. */
static void ondeadline (void *arg, int fired) {
  gr_ctx *c = (gr_ctx *)arg;
  if (fired) cancel(NULL, c, DEADLINE);
  release(c);   /* the timer's ref */
}

static int withdeadline (lua_State *L, double at) {
  gr_state *S = gr_getstate(L);
  gr_ctx *c = newctx(L, S, check(L, 1));
  double d = at - (double)uv_hrtime() / 1e9;
  pushpair(L, c);
  if (d <= 0) cancel(S, c, DEADLINE);
  else {
    retain(c);   /* the timer's ref, dropped by ondeadline */
    gr_timer_callsafe(L, d, ondeadline, c);
  }
  return 2;
}

static int lbackground (lua_State *L) {
  gr_context_push(L, newctx(L, gr_getstate(L), NULL), 0);
  return 1;
}

static int lwithcancel (lua_State *L) {
  return pushpair(L, newctx(L, gr_getstate(L), check(L, 1)));
}

static int lwithtimeout (lua_State *L) {
  check(L, 1);
  return withdeadline(L, (double)uv_hrtime() / 1e9 + luaL_checknumber(L, 2));
}

static int lwithdeadline (lua_State *L) {
  check(L, 1);
  return withdeadline(L, luaL_checknumber(L, 2));
}

/* ctx:done() -> receive-only channel, closed when ctx is canceled */
static int ldone (lua_State *L) {
  gr_chan_pushud(L, check(L, 1)->done, GR_DIRRECV);
  return 1;
}

/* ctx:err() -> nil, "context canceled" or "context deadline exceeded" */
static int lerr (lua_State *L) {
  gr_ctx *c = check(L, 1);
  const char *err;
  pthread_mutex_lock(&ctxlock);
  err = c->err;
  pthread_mutex_unlock(&ctxlock);
  if (err) lua_pushstring(L, err);
  else lua_pushnil(L);
  return 1;
}

/* cancel(): cancels the context; later calls do nothing */
static int lcancel (lua_State *L) {
  gr_ctxud *u = (gr_ctxud *)luaL_checkudata(L, 1, CANCELMT);
  cancel(gr_getstate(L), u->c, CANCELED);
  return 0;
}

static int lctx_gc (lua_State *L) {
  gr_ctxud *u = (gr_ctxud *)lua_touserdata(L, 1);
  if (u->c) {   /* idempotent */
    release(u->c);
    u->c = NULL;
  }
  return 0;
}

static int lctx_tostring (lua_State *L) {
  lua_getmetatable(L, 1);
  lua_getfield(L, -1, "__name");
  lua_pushfstring(L, "%s: %p", lua_tostring(L, -1),
                  (void *)((gr_ctxud *)lua_touserdata(L, 1))->c);
  return 1;
}

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
  lua_pushcfunction(L, lctx_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, lctx_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_newtable(L);
  gr_state_setfuncs(L, ctxmethods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_newmetatable(L, CANCELMT);
  lua_pushcfunction(L, lctx_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, lctx_tostring);
  lua_setfield(L, -2, "__tostring");
  gr_state_setfuncs(L, (const luaL_Reg[]){{"__call", lcancel}, {NULL, NULL}});
  lua_pop(L, 1);
  lua_newtable(L);
  gr_state_setfuncs(L, funcs);
  lua_setfield(L, -2, "context");
}
