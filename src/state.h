/*
** state.h -- the record of a Lua state's runtime: its anchor, the lookup
** from the module's functions, and registration helpers.
*/
#ifndef GR_STATE_H
#define GR_STATE_H

#include "sched.h"

/* Returns the record of L's state, made by make on first use; close(S)
** closes it when the Lua state closes. */
gr_state *gr_state_create (lua_State *L, gr_state *(*make) (lua_State *L),
                           void (*close) (gr_state *S));
/* Returns the record of L's state (made already); raises once closed. */
gr_state *gr_state_get (lua_State *L);
/* The record of L's state, or NULL (none, or closed); never raises. */
gr_state *gr_state_find (lua_State *L);
/* Pushes the anchor of L's record: the GR_UV_STATE upvalue. */
void gr_state_pushbox (lua_State *L);
/* Makes the module's functions raise in S's state from now on: the state
** of a worker left behind at shutdown, never freed. */
void gr_state_abandon (gr_state *S);
/* Registers l into the table at the top of L, with the module's
** upvalues (GR_UV_*). */
void gr_state_setfuncs (lua_State *L, const luaL_Reg *l);
/* The same for the methods and metamethods of the handles whose metatable
** is at index mt: they get it as one more upvalue (GR_UV_OWNMT). */
void gr_state_setmethods (lua_State *L, const luaL_Reg *l, int mt);
/* Pushes the weak-keyed table kept in the registry under key. */
void gr_state_weaktable (lua_State *L, const void *key);
/* The same with weak values. */
void gr_state_weakvalues (lua_State *L, const void *key);

#endif
