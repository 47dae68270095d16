/*
** timer.h -- timers: a heap per state with one libuv timer armed at its
** earliest entry, a heap for the process fired by the timer thread, and
** the g.time functions.
*/
#ifndef GR_TIMER_H
#define GR_TIMER_H

#include "sched.h"

int gr_timer_pending (gr_state *S);
void gr_timer_callsafe (lua_State *L, double d,
                        void (*call) (void *arg, int fired), void *arg);
void gr_timer_fire (lua_State *L, gr_state *S);
void gr_timer_arm (gr_state *S);
int gr_timer_init (gr_state *S);
void gr_timer_pause (gr_state *S);
void gr_timer_closeall (gr_state *S);
void gr_timer_open (lua_State *L);

#endif
