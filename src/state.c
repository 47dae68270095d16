/*
** state.c -- the record of a Lua state's runtime: its anchor in the
** registry, the lookup of the record from the module's functions, and
** the registration helpers every file's open function uses. What the
** record holds, and how it is made and closed, is the business of the
** layers above (runtime.c): this file only keeps it.
**
** Invariants: one gr_state per Lua state, found through the registry key
**   &statekey; it outlives every goroutine, timer and handle of its state
**   (the anchor is created before any of them, so lua_close finalizes it
**   after them).
**   The module's functions reach the record through their upvalue
**   GR_UV_STATE, the address of the anchor (a gr_statebox), which the
**   registry keeps until lua_close frees every object, after the last
**   finalizer: a finalizer that lua_close runs after the anchor's (one
**   marked before the first require) finds box->S NULL, and gr_getstate
**   raises instead of reading freed memory. box->S is also cleared, by
**   the host's thread, in the state of a worker abandoned at shutdown
**   (gr_state_abandon), which is then never freed.
*/
#include <stdlib.h>

#include "sched.h"
#include "state.h"

static const char statekey = 0;

typedef gr_statebox statebox;

/* Raises the error of a module function called once the scheduler of
** its state is closed (from a finalizer that lua_close runs late). */
int gr_state_closederror (lua_State *L) {
  return luaL_error(L, "goroutines: the runtime of this state is closed");
}

static int state_gc (lua_State *L) {
  statebox *box = (statebox *)lua_touserdata(L, 1);
  gr_state *S = atomic_exchange(&box->S, NULL);
  if (S) box->close(S);   /* idempotent */
  return 0;
}

/* Called by the host, on its thread, for the state of a worker stuck in
** a C call that it leaves behind at shutdown: the state is never closed
** nor freed, and the module's functions called in it from now on raise,
** so that its goroutines cannot reach the states being freed. */
void gr_state_abandon (gr_state *S) {
  atomic_store(&S->box->S, NULL);
}

/* Returns the record of L's state; raises once it is closed. Requires
** that gr_state_create made it. */
gr_state *gr_state_get (lua_State *L) {
  gr_state *S;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &statekey);
  GR_ASSERT(lua_type(L, -1) == LUA_TUSERDATA);
  S = atomic_load(&((statebox *)lua_touserdata(L, -1))->S);
  lua_pop(L, 1);
  if (S == NULL) gr_state_closederror(L);
  return S;
}

/* Returns the record of L's state, or NULL when it has none (never made,
** or closed); never raises. */
gr_state *gr_state_find (lua_State *L) {
  gr_state *S = NULL;
  if (!lua_checkstack(L, 1)) return NULL;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &statekey) == LUA_TUSERDATA)
    S = atomic_load(&((statebox *)lua_touserdata(L, -1))->S);
  lua_pop(L, 1);
  return S;
}

/* Returns the record of L's state, made by make (and the metatables the
** module's functions take as upvalues) on first use; close(S) will close
** it when the Lua state closes. */
gr_state *gr_state_create (lua_State *L, gr_state *(*make) (lua_State *L),
                           void (*close) (gr_state *S)) {
  statebox *box;
  gr_state *S;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &statekey) == LUA_TUSERDATA) {
    lua_pop(L, 1);
    return gr_state_get(L);
  }
  lua_pop(L, 1);
  luaL_newmetatable(L, "goroutines.chan");
  luaL_newmetatable(L, "goroutines.case");
  lua_pop(L, 2);
  box = (statebox *)lua_newuserdatauv(L, sizeof(*box), 0);
  atomic_init(&box->S, NULL);
  box->close = close;
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, state_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  S = make(L);   /* may raise: the box, still empty, is garbage then */
  S->box = box;
  atomic_store(&box->S, S);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &statekey);
  return S;
}

/* Pushes the anchor of L's scheduler: the GR_UV_STATE upvalue of the
** module's functions. */
void gr_state_pushbox (lua_State *L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &statekey);
  lua_pushlightuserdata(L, lua_touserdata(L, -1));
  lua_remove(L, -2);
}

/* Pushes the table of __mode mode ("k" or "v") kept in the registry
** under key, creating it on first use. */
static void weaktable (lua_State *L, const void *key, const char *mode) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, key) == LUA_TTABLE) return;
  lua_pop(L, 1);
  lua_newtable(L);
  lua_createtable(L, 0, 1);
  lua_pushstring(L, mode);
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, key);
}

void gr_state_weaktable (lua_State *L, const void *key) {
  weaktable(L, key, "k");
}

void gr_state_weakvalues (lua_State *L, const void *key) {
  weaktable(L, key, "v");
}

/* Registers l into the table at the top of L; every function gets the
** module's upvalues (GR_UV_*). */
void gr_state_setfuncs (lua_State *L, const luaL_Reg *l) {
  gr_state_pushbox(L);
  luaL_getmetatable(L, "goroutines.chan");
  luaL_getmetatable(L, "goroutines.case");
  luaL_setfuncs(L, l, GR_NUPVALUES);
}

/* Registers l into the table at the top of L, for the handles whose
** metatable is at index mt: every function gets the module's upvalues
** and that metatable (GR_UV_OWNMT). */
void gr_state_setmethods (lua_State *L, const luaL_Reg *l, int mt) {
  mt = lua_absindex(L, mt);
  gr_state_pushbox(L);
  luaL_getmetatable(L, "goroutines.chan");
  luaL_getmetatable(L, "goroutines.case");
  lua_pushvalue(L, mt);
  luaL_setfuncs(L, l, GR_NUPVALUES + 1);
}
