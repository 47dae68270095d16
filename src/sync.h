/*
** sync.h -- g.sync: waitgroup, mutex, once.
*/
#ifndef GR_SYNC_H
#define GR_SYNC_H

#include "gr.h"

void *gr_sync_take (lua_State *L, int idx, int *kind);
void gr_sync_push (lua_State *L, void *obj, int kind);
void gr_sync_drop (void *obj);
void gr_sync_open (lua_State *L);

#endif
