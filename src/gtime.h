/*
** gtime.h -- g.time, the Lua face of the timers.
*/
#ifndef GR_GTIME_H
#define GR_GTIME_H

#include "gr.h"

/* Registers g.time in the module table at the top of L. */
void gr_time_open (lua_State *L);

#endif
