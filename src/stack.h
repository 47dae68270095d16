/*
** stack.h -- g.stack(): the dump of every goroutine of every state.
*/
#ifndef GR_STACK_H
#define GR_STACK_H

#include "sched.h"

/* Registers g.stack in the module table at the top of L, and makes L's
** state answer the dumps that other states ask for. */
void gr_stack_open (lua_State *L);

#endif
