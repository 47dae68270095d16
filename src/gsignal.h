/*
** gsignal.h -- g.signal: notify and stop, as Go's os/signal.
*/
#ifndef GR_GSIGNAL_H
#define GR_GSIGNAL_H

#include "gr.h"

/* Registers g.signal in the module table at the top of L. */
void gr_signal_open (lua_State *L);

#endif
