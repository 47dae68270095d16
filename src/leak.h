/*
** leak.h -- leak detection: goroutines parked on objects that nothing can
** reach any more are found by Lua's collector, reported and freed.
*/
#ifndef GR_LEAK_H
#define GR_LEAK_H

#include "sched.h"

/* Prints (GOROUTINES_DEBUG=leaks) and frees the reports never returned;
** at S's close, before its goroutines are freed. */
void gr_leak_close (gr_state *S);
/* Reads GOROUTINES_DEBUG into a new state S. */
void gr_leak_init (gr_state *S);
/* Registers g.leaks, and starts the per-cycle weakening of L's state. */
void gr_leak_open (lua_State *L);

#endif
