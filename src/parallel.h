/*
** parallel.h -- worker threads and their states: g.parallel, g.gomaxprocs.
*/
#ifndef GR_PARALLEL_H
#define GR_PARALLEL_H

#include "sched.h"

typedef struct gr_pool gr_pool;
typedef struct gr_worker gr_worker;

extern const char gr_parallel_workerkey;

gr_pool *gr_pool_ofworker (gr_worker *W);
int gr_pool_canprogress (gr_pool *P, gr_state *self);
int gr_pool_spin (gr_state *S, gr_g *me);
int gr_pool_hasjobs (gr_state *S);
void gr_pool_wentidle (gr_state *S);
void gr_pool_idle (gr_state *S, int delta);
gr_state *gr_pool_host (gr_pool *P);
int gr_pool_stopping (gr_pool *P);
void gr_pool_eachstate (gr_pool *P, void (*f) (gr_state *S, void *ud),
                        void *ud);
void gr_pool_stop (gr_pool *P);
void gr_parallel_open (lua_State *L);

#endif
