/*
** context.h -- g.context: cancellation and deadlines, after Go's context.
*/
#ifndef GR_CONTEXT_H
#define GR_CONTEXT_H

#include "gr.h"

/* Registers g.context in the module table at the top of L. */
void gr_context_open (lua_State *L);

#endif
