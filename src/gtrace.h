/*
** gtrace.h -- g.trace, the Lua face of the execution trace (trace.c).
*/
#ifndef GR_GTRACE_H
#define GR_GTRACE_H

#include "gr.h"

/* Registers g.trace in the module table at the top of L; starts the
** trace named by GOROUTINES_TRACE at the first host state's. */
void gr_gtrace_open (lua_State *L);

#endif
