/*
** errors.h -- what a blocking call raises when its wait fails (the
** uncaught error of a goroutine, or the deadlock report), and the report
** of the errors a state never raised.
*/
#ifndef GR_ERRORS_H
#define GR_ERRORS_H

#include "sched.h"

/* Raises the error that gr_sched_wait returned (GR_EGOERR: goroutine 1's
** oldest uncaught goroutine error; GR_EDEADLOCK: the deadlock report).
** Never returns. */
void gr_errors_raisewait (lua_State *L, gr_state *S, int err);
/* The same for an embedding host's gr_run, which runs outside every
** goroutine: the deadlock report lists the goroutines without goroutine
** 1. */
void gr_errors_raisehost (lua_State *L, gr_state *S, int err);
/* Prints a list of errors to stderr and frees it; returns how many. */
int gr_errors_print (gr_errmsg *e);
/* Prints the errors of S never raised (at its close); returns how many. */
int gr_errors_report (gr_state *S);

#endif
