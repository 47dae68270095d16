/*
** state.c -- the scheduler record of a Lua state: created by the first
** require of the module in that state, anchored in its registry, and
** closed by the __gc of that anchor when the state closes.
**
** Invariants: one gr_state per Lua state, found through the registry key
**   &statekey; it outlives every goroutine, timer and handle of its state
**   (the anchor is created before any of them, so lua_close finalizes it
**   after them).
**   The module's functions reach the record through their upvalue
**   GR_UV_STATE, the anchor itself (a statebox): a finalizer that lua_close
**   runs after the anchor's (one marked before the first require) finds
**   box->S NULL, and gr_getstate raises instead of reading freed memory.
**   box->S is also cleared, by the host's thread, in the state of a worker
**   abandoned at shutdown (gr_state_abandon), which is then never freed.
** Close order: a host's workers stop first, then parked goroutines drop
**   their waiters (objects may be shared with other states), then timers,
**   then the libuv handles and loop; once all of it is freed, the close
**   policy gets the errors that were never raised (the default one prints
**   them and exits with status 1).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "copy.h"
#include "errors.h"
#include "parallel.h"
#include "sched.h"
#include "select.h"
#include "state.h"
#include "timer.h"

static const char statekey = 0;

typedef gr_statebox statebox;

/* The record of a state as allocated: the gr_state first (its address is
** the block's), then its anchor. */
typedef struct stateblock {
  gr_state S;
  statebox *box;        /* the anchor: a userdata of the same Lua state */
} stateblock;

/* Prints the errors a host state never raised and, if there were any,
** exits with status 1: the standalone interpreter's policy, where an
** uncaught goroutine error fails the program. */
static void exitonerrors (gr_errmsg *errs) {
  int n = 0;
  while (errs) {
    gr_errmsg *next = errs->next;
    fprintf(stderr, "%s\n", errs->msg);
    free(errs);
    errs = next;
    n++;
  }
  fflush(stderr);
  if (n > 0) exit(EXIT_FAILURE);
}

/* What the close of a host state does last: process-wide, set before any
** state closes (an embedding host installs its own handler here). */
static gr_state_closepolicy closepolicy = exitonerrors;

void gr_state_setclosepolicy (gr_state_closepolicy f) {
  closepolicy = f ? f : exitonerrors;
}

/* Raises the error of a module function called once the scheduler of
** its state is closed (from a finalizer that lua_close runs late). */
int gr_state_closederror (lua_State *L) {
  return luaL_error(L, "goroutines: the runtime of this state is closed");
}

static void onasync (uv_async_t *handle) {
  (void)handle;   /* a doorbell: the scheduler drains the remote queue */
}

/* Takes the errors of S that were never raised, oldest first: those
** goroutine 1 already saw, then those handed over by other threads. */
static gr_errmsg *takeerrors (gr_state *S) {
  gr_errmsg *errs = S->errlocal, *remote;
  gr_mutex_lock(&S->rlock);
  remote = S->errors;
  S->errors = S->errtail = NULL;
  gr_mutex_unlock(&S->rlock);
  if (errs) S->errlocaltail->next = remote;
  else errs = remote;
  S->errlocal = S->errlocaltail = NULL;
  return errs;
}

static void closestate (gr_state *S) {
  int host = S->worker == NULL;
  gr_errmsg *errs;
  if (S->pool && host) {   /* its workers go first: they may hand it errors */
    gr_pool_stop(S->pool);
    S->pool = NULL;
  }
  gr_sched_forget(S);
  gr_timer_pause(S);   /* no timer-thread wake in flight while g's go */
  gr_sched_closeall(S);
  gr_timer_closeall(S);
  gr_select_closestate(S);
  /* A worker hands its errors to its host: it has none of its own, but
  ** any it had are printed, never dropped. */
  if (!host) gr_errors_report(S);
  errs = takeerrors(S);
  uv_close((uv_handle_t *)&S->async, NULL);
  uv_close((uv_handle_t *)&S->uvtimer, NULL);
  while (uv_loop_close(&S->loop) == UV_EBUSY)
    uv_run(&S->loop, UV_RUN_DEFAULT);
  gr_mutex_destroy(&S->rlock);
  gr_copy_threadexit();   /* this thread's pack builders */
  free(S);
  if (host) closepolicy(errs);   /* last: it may end the process */
}

static int state_gc (lua_State *L) {
  statebox *box = (statebox *)lua_touserdata(L, 1);
  gr_state *S = atomic_exchange(&box->S, NULL);
  if (S) closestate(S);   /* idempotent */
  return 0;
}

/* Called by the host, on its thread, for the state of a worker stuck in
** a C call that it leaves behind at shutdown: the state is never closed
** nor freed, and the module's functions called in it from now on raise,
** so that its goroutines cannot reach the states being freed. */
void gr_state_abandon (gr_state *S) {
  atomic_store(&((stateblock *)S)->box->S, NULL);
}

static gr_state *newstate (lua_State *L, statebox *box) {
  const char *gc = getenv("GOROUTINES_GCSTRESS");
  stateblock *b = (stateblock *)calloc(1, sizeof(*b));
  gr_state *S = &b->S;
  gr_g *g1 = (gr_g *)calloc(1, sizeof(*g1));
  if (b == NULL || g1 == NULL || uv_loop_init(&S->loop) != 0) {
    free(b);
    free(g1);
    luaL_error(L, "goroutines: cannot create the scheduler");
  }
  b->box = box;
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  S->L = lua_tothread(L, -1);
  lua_pop(L, 1);
  g1->id = 1;
  g1->co = S->L;
  g1->ref = LUA_NOREF;
  g1->S = S;
  S->g1 = S->current = g1;
  S->rng = (uv_hrtime() ^ (uint64_t)(uintptr_t)S) | 1;
  S->gcstress = gc != NULL && gc[0] != '\0' && strcmp(gc, "0") != 0;
  /* A worker thread marks its state before it loads the module. */
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &gr_parallel_workerkey) ==
      LUA_TLIGHTUSERDATA) {
    gr_pool_attach(S, (gr_worker *)lua_touserdata(L, -1));
  }
  lua_pop(L, 1);
  gr_mutex_init(&S->rlock, GR_LMAILBOX);
  if (uv_async_init(&S->loop, &S->async, onasync) != 0 ||
      gr_timer_init(S) != 0)
    luaL_error(L, "goroutines: cannot create the scheduler");
  gr_sched_adopt(S);
  return S;
}

/* Returns the scheduler of L's state, creating it (and the metatables
** the module's functions take as upvalues) on first use. */
gr_state *gr_state_get (lua_State *L) {
  statebox *box;
  gr_state *S;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &statekey) == LUA_TUSERDATA) {
    S = atomic_load(&((statebox *)lua_touserdata(L, -1))->S);
    lua_pop(L, 1);
    if (S == NULL) gr_state_closederror(L);
    return S;
  }
  lua_pop(L, 1);
  luaL_newmetatable(L, "goroutines.chan");
  luaL_newmetatable(L, "goroutines.case");
  lua_pop(L, 2);
  box = (statebox *)lua_newuserdatauv(L, sizeof(*box), 0);
  atomic_init(&box->S, NULL);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, state_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  S = newstate(L, box);
  atomic_store(&box->S, S);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &statekey);
  return S;
}

/* Pushes the anchor of L's scheduler: the GR_UV_STATE upvalue of the
** module's functions. */
void gr_state_pushbox (lua_State *L) {
  gr_state_get(L);   /* creates it on first use */
  lua_rawgetp(L, LUA_REGISTRYINDEX, &statekey);
}

/* Pushes the table with weak keys kept in the registry under key,
** creating it on first use. */
void gr_state_weaktable (lua_State *L, const void *key) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, key) == LUA_TTABLE) return;
  lua_pop(L, 1);
  lua_newtable(L);
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "k");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, key);
}

/* Registers l into the table at the top of L; every function gets the
** module's upvalues (GR_UV_*). */
void gr_state_setfuncs (lua_State *L, const luaL_Reg *l) {
  gr_state_pushbox(L);
  luaL_getmetatable(L, "goroutines.chan");
  luaL_getmetatable(L, "goroutines.case");
  luaL_setfuncs(L, l, GR_NUPVALUES);
}
