/*
** sync.h -- g.sync: waitgroup, mutex, once.
*/
#ifndef GR_SYNC_H
#define GR_SYNC_H

#include "gr.h"

/* Registers g.sync in the module table at the top of L. */
void gr_sync_open (lua_State *L);

#endif
