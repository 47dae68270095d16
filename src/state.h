/*
** state.h -- the scheduler record of a Lua state: creation on first
** require, registration of the module's C functions, and close.
*/
#ifndef GR_STATE_H
#define GR_STATE_H

#include "sched.h"

gr_state *gr_state_get (lua_State *L);
void gr_state_pushbox (lua_State *L);
void gr_state_setfuncs (lua_State *L, const luaL_Reg *l);
void gr_state_weaktable (lua_State *L, const void *key);

#endif
