/*
** state.c -- the scheduler record of a Lua state: created by the first
** require of the module in that state, anchored in its registry, and
** closed by the __gc of that anchor when the state closes.
**
** Invariants: one gr_state per Lua state, found through the registry key
**   &statekey; it outlives every goroutine, timer and handle of its state
**   (the anchor is created before any of them, so lua_close finalizes it
**   last).
** Close order: parked goroutines drop their waiters (objects may be
**   shared with other states), then timers, then the libuv handles and
**   loop; errors that were never raised are printed and the process exits
**   with status 1.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "copy.h"
#include "errors.h"
#include "parallel.h"
#include "sched.h"
#include "state.h"
#include "timer.h"

static const char statekey = 0;

typedef struct statebox {
  gr_state *S;          /* NULL once closed */
} statebox;

static void onasync (uv_async_t *handle) {
  (void)handle;   /* a doorbell: the scheduler drains the remote queue */
}

static void closestate (gr_state *S) {
  int nerr;
  if (S->pool && S->worker == NULL) {   /* a host: its workers go first */
    gr_pool_stop(S->pool);
    S->pool = NULL;
  }
  gr_sched_forget(S);
  gr_sched_closeall(S);
  gr_timer_closeall(S);
  nerr = gr_errors_report(S);
  uv_close((uv_handle_t *)&S->async, NULL);
  uv_close((uv_handle_t *)&S->uvtimer, NULL);
  while (uv_loop_close(&S->loop) == UV_EBUSY)
    uv_run(&S->loop, UV_RUN_DEFAULT);
  gr_mutex_destroy(&S->rlock);
  if (S->worker == NULL && nerr > 0) {
    free(S);
    exit(EXIT_FAILURE);   /* uncaught goroutine errors: the program fails */
  }
  free(S);
}

static int state_gc (lua_State *L) {
  statebox *box = (statebox *)lua_touserdata(L, 1);
  if (box->S) {   /* idempotent */
    gr_state *S = box->S;
    box->S = NULL;
    closestate(S);
  }
  return 0;
}

static gr_state *newstate (lua_State *L) {
  const char *gc = getenv("GOROUTINES_GCSTRESS");
  gr_state *S = (gr_state *)calloc(1, sizeof(*S));
  gr_g *g1 = (gr_g *)calloc(1, sizeof(*g1));
  if (S == NULL || g1 == NULL || uv_loop_init(&S->loop) != 0) {
    free(S);
    free(g1);
    luaL_error(L, "goroutines: cannot create the scheduler");
  }
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
    S->worker = (gr_worker *)lua_touserdata(L, -1);
    S->pool = gr_pool_ofworker(S->worker);
  }
  lua_pop(L, 1);
  gr_mutex_init(&S->rlock);
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
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &statekey) == LUA_TUSERDATA) {
    gr_state *S = ((statebox *)lua_touserdata(L, -1))->S;
    lua_pop(L, 1);
    return S;
  }
  lua_pop(L, 1);
  luaL_newmetatable(L, "goroutines.chan");
  luaL_newmetatable(L, "goroutines.case");
  lua_pop(L, 2);
  box = (statebox *)lua_newuserdatauv(L, sizeof(*box), 0);
  box->S = NULL;
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, state_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  box->S = newstate(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &statekey);
  return box->S;
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
  lua_pushlightuserdata(L, gr_state_get(L));
  luaL_getmetatable(L, "goroutines.chan");
  luaL_getmetatable(L, "goroutines.case");
  luaL_setfuncs(L, l, GR_NUPVALUES);
}
