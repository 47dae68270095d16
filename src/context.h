/*
** context.h -- g.context: cancellation and deadlines, after Go's context.
*/
#ifndef GR_CONTEXT_H
#define GR_CONTEXT_H

#include "gr.h"

void *gr_context_take (lua_State *L, int idx, int *aux);
void gr_context_push (lua_State *L, void *ctx, int aux);
void gr_context_drop (void *ctx);
void gr_context_open (lua_State *L);

#endif
