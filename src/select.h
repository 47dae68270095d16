/*
** select.h -- select over channel cases, and the case constructors that
** channels expose as methods.
*/
#ifndef GR_SELECT_H
#define GR_SELECT_H

#include "gr.h"

int gr_select_onrecv (lua_State *L);
int gr_select_onsend (lua_State *L);
/* Frees what the selects of S keep for reuse, when S closes. */
void gr_select_closestate (gr_state *S);
/* Registers g.select in the module table at the top of L. */
void gr_select_open (lua_State *L);

#endif
