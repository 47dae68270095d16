/*
** workerinit.c -- gr_set_worker_init from a host thread while worker
** states start: each worker's f runs with the ud given with that f in
** the same call, never with the ud of another call.
*/
#include <stdatomic.h>
#include <uv.h>

#include "ctest.h"

static int a, b;   /* the uds: &a goes with fa, &b with fb */
static atomic_int torn, inits, stop;

static void fa (lua_State *W, void *ud) {
  (void)W;
  atomic_fetch_add(&inits, 1);
  if (ud != &a) atomic_fetch_add(&torn, 1);
}

static void fb (lua_State *W, void *ud) {
  (void)W;
  atomic_fetch_add(&inits, 1);
  if (ud != &b) atomic_fetch_add(&torn, 1);
}

/* Switches between (fa, &a) and (fb, &b) until told to stop. */
static void toggler (void *arg) {
  (void)arg;
  while (!atomic_load(&stop)) {
    gr_set_worker_init(fa, &a);
    gr_set_worker_init(fb, &b);
  }
}

int main (void) {
  uv_thread_t t;
  int i;
  gr_set_worker_init(fa, &a);
  CHECK(uv_thread_create(&t, toggler, NULL) == 0);
  /* A state's first g.parallel starts a worker state. */
  for (i = 0; i < 60; i++) {
    lua_State *L = ctest_newstate();
    ctest_run(L, "local g = require 'goroutines'\n"
                 "g.parallel(function() end)\n");
    CHECK(gr_run(L, GR_RUN_DEFAULT) == GR_OK);
    lua_close(L);
  }
  atomic_store(&stop, 1);
  uv_thread_join(&t);
  gr_set_worker_init(NULL, NULL);
  printf("worker inits: %s, torn: %d\n",
         atomic_load(&inits) >= 60 ? "one a state at least" : "too few",
         atomic_load(&torn));
  return 0;
}
