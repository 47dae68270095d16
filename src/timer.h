/*
** timer.h -- timers: a heap per state with one libuv timer armed at its
** earliest entry, a heap for the process fired by the timer thread, and
** the g.time functions.
*/
#ifndef GR_TIMER_H
#define GR_TIMER_H

#include "sched.h"

/* Whether a timer of S can still wake something by itself. */
int gr_timer_pending (gr_state *S);
/* Calls call(arg, 1) on the timer thread d seconds from now, or
** call(arg, 0) if the process's last state closes first. */
void gr_timer_callsafe (lua_State *L, double d,
                        void (*call) (void *arg, int fired), void *arg);
/* Fires S's timers whose deadline passed (S's thread). */
void gr_timer_fire (lua_State *L, gr_state *S);
/* Arms S's libuv timer at its earliest deadline, before S sleeps. */
void gr_timer_arm (gr_state *S);
/* Makes S's timer heap and installs S->timerops; 0 or -1. */
int gr_timer_init (gr_state *S);
/* Before S frees its goroutines: the timer thread wakes none of them. */
void gr_timer_pause (gr_state *S);
/* At S's close: frees or detaches its timers. */
void gr_timer_closeall (gr_state *S);
/* Registers g.time in the module table at the top of L. */
void gr_timer_open (lua_State *L);

#endif
