/*
** runtime.h -- the life cycle of a state's runtime: made at the first
** require, closed with the Lua state, and the close policy.
*/
#ifndef GR_RUNTIME_H
#define GR_RUNTIME_H

#include "errors.h"
#include "sched.h"

/* The close policy: what the close of a host state does last, once all of
** the runtime's memory of that state is freed, with the uncaught
** goroutine errors that were never raised (oldest first; the policy owns
** the list and frees each entry). */
typedef void (*gr_runtime_closepolicy) (gr_errmsg *errs);

/* Returns the runtime of L's state, making it on first use (luaopen). */
gr_state *gr_runtime_get (lua_State *L);
/* Sets the close policy, process-wide, before any state closes; NULL
** restores the default (print the errors, exit with status 1 if any). */
void gr_runtime_setclosepolicy (gr_runtime_closepolicy f);

#endif
