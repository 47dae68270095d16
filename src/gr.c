/*
** gr.c -- the lock-rank check of GR_DEBUG builds (gr.h lists the ranks).
**
** Each thread keeps the locks it holds, in the order it took them. Taking
** a lock checks it against every one held: a lower rank than a held one,
** or the same rank where that rank allows one lock only, or a same-rank
** lock at a lower address than a held one, is a bug (a deadlock waiting
** for the right interleaving), and the assertion says which. A lock
** taken by a try (gr_lock_trylock), which never waits, is only recorded.
*/
#include "gr.h"

#ifdef GR_DEBUG
#include <stdio.h>
#include <stdlib.h>

#define MAXHELD 64   /* select holds one lock per distinct channel */

typedef struct held {
  const void *lock;
  int rank;
} held;

static _Thread_local held heldlocks[MAXHELD];
static _Thread_local int nheld;

static void rankerror (const char *what, const void *lock, int rank,
                       const held *h) {
  fprintf(stderr, "goroutines: lock order: %s: taking %p (rank %d) while "
          "holding %p (rank %d)\n", what, lock, rank, h->lock, h->rank);
  abort();
}

void gr_rank_acquire (const void *lock, int rank) {
  int i;
  for (i = 0; i < nheld; i++) {
    const held *h = &heldlocks[i];
    if (h->lock == lock) rankerror("taken twice", lock, rank, h);
    if (h->rank > rank) rankerror("rank below a held one", lock, rank, h);
    if (h->rank == rank &&
        (rank != GR_LCHAN || (uintptr_t)h->lock > (uintptr_t)lock))
      rankerror(rank != GR_LCHAN ? "two of one rank" :
                "channels out of address order", lock, rank, h);
  }
  if (nheld == MAXHELD) {
    fprintf(stderr, "goroutines: lock order: more than %d locks held\n",
            MAXHELD);
    abort();
  }
  heldlocks[nheld].lock = lock;
  heldlocks[nheld].rank = rank;
  nheld++;
}

void gr_rank_tried (const void *lock, int rank) {
  int i;
  for (i = 0; i < nheld; i++)
    if (heldlocks[i].lock == lock)
      rankerror("taken twice", lock, rank, &heldlocks[i]);
  if (nheld == MAXHELD) {
    fprintf(stderr, "goroutines: lock order: more than %d locks held\n",
            MAXHELD);
    abort();
  }
  heldlocks[nheld].lock = lock;
  heldlocks[nheld].rank = rank;
  nheld++;
}

void gr_rank_release (const void *lock) {
  int i;
  for (i = nheld - 1; i >= 0; i--)
    if (heldlocks[i].lock == lock) {
      heldlocks[i] = heldlocks[--nheld];
      return;
    }
  fprintf(stderr, "goroutines: lock order: releasing %p, not held\n", lock);
  abort();
}
#else
typedef int gr_nodebug;   /* ISO C wants a translation unit not empty */
#endif
