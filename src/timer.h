/*
** timer.h -- timers of one state: a binary heap ordered by deadline, one
** libuv timer armed at its earliest entry, and the g.time functions.
*/
#ifndef GR_TIMER_H
#define GR_TIMER_H

#include "sched.h"

int gr_timer_pending (gr_state *S);
void gr_timer_call (lua_State *L, gr_state *S, double d,
                    void (*call) (gr_state *S, void *arg), void *arg);
void gr_timer_fire (lua_State *L, gr_state *S);
void gr_timer_arm (gr_state *S);
int gr_timer_init (gr_state *S);
void gr_timer_closeall (gr_state *S);
void gr_timer_open (lua_State *L);

#endif
