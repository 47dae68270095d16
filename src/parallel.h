/*
** parallel.h -- worker threads and their states: g.parallel, g.gomaxprocs.
*/
#ifndef GR_PARALLEL_H
#define GR_PARALLEL_H

#include "sched.h"

typedef struct gr_pool gr_pool;
typedef struct gr_worker gr_worker;

extern const char gr_parallel_workerkey;

/* Attaches the state of worker W (its thread, while the state is made)
** to W's pool: its scheduler follows the pool's policy from then on. */
void gr_pool_attach (gr_state *S, gr_worker *W);
/* At the host's close: stops every worker and joins or abandons it. */
void gr_pool_stop (gr_pool *P);
/* Sets what runs in every new worker state, after the standard libraries
** and before `require "goroutines"` (process-wide; the embedding layer's:
** it may raise, which fails the worker's set-up). */
void gr_parallel_setworkersetup (void (*f) (lua_State *L));
/* Registers g.parallel and g.gomaxprocs in the module table at the top
** of L. */
void gr_parallel_open (lua_State *L);

#endif
