/*
** select.h -- select over channel cases, and the case constructors that
** channels expose as methods.
*/
#ifndef GR_SELECT_H
#define GR_SELECT_H

#include "gr.h"

/* Frees what the selects of S keep for reuse, when S closes. */
void gr_select_closestate (gr_state *S);
/* Registers g.select in the module table at the top of L, and on_recv
** and on_send among the channels' methods (after gr_chan_open). */
void gr_select_open (lua_State *L);

#endif
