/*
** state.h -- the scheduler record of a Lua state: creation on first
** require, registration of the module's C functions, close and the close
** policy.
*/
#ifndef GR_STATE_H
#define GR_STATE_H

#include "errors.h"
#include "sched.h"

/* The close policy: what the close of a host state does last, once all of
** the runtime's memory of that state is freed, with the uncaught
** goroutine errors that were never raised (oldest first; the policy owns
** the list and frees each entry). */
typedef void (*gr_state_closepolicy) (gr_errmsg *errs);

gr_state *gr_state_get (lua_State *L);
void gr_state_pushbox (lua_State *L);
void gr_state_abandon (gr_state *S);
void gr_state_setclosepolicy (gr_state_closepolicy f);
void gr_state_setfuncs (lua_State *L, const luaL_Reg *l);
void gr_state_weaktable (lua_State *L, const void *key);

#endif
