/*
** net.h -- g.net: TCP and unix sockets (stream.c's handles).
*/
#ifndef GR_NET_H
#define GR_NET_H

#include "gr.h"

/* Registers g.net in the module table at the top of L. */
void gr_net_open (lua_State *L);

#endif
