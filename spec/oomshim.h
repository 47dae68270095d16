/*
** oomshim.h -- forced into every source of the runtime by `make oom`
** (-include): the runtime's own allocations, and the allocator of the
** worker states it creates, go through the failing allocator of
** spec/oomhost.c, so that one sweep reaches every allocation of a run.
*/
#ifndef GR_OOMSHIM_H
#define GR_OOMSHIM_H

#include <stdlib.h>
#include <string.h>

void *gr_oom_malloc (size_t n);
void *gr_oom_calloc (size_t n, size_t size);
void *gr_oom_realloc (void *p, size_t n);
char *gr_oom_strdup (const char *s);
void *gr_oom_lalloc (void *ud, void *p, size_t osize, size_t nsize);

#define malloc(n) gr_oom_malloc(n)
#define calloc(n, s) gr_oom_calloc(n, s)
#define realloc(p, n) gr_oom_realloc(p, n)
#define strdup(s) gr_oom_strdup(s)
#define luaL_newstate() lua_newstate(gr_oom_lalloc, NULL)

#endif
