/*
** runparallel.c -- GR_RUN_DEFAULT runs until the parallel goroutines of
** the state have ended too: a worker's goroutine that ends quietly, and
** one whose error goes to the handler before gr_run returns.
*/
#include <stdio.h>
#include <string.h>

#include "ctest.h"

static void handler (lua_State *L, const char *msg, void *ud) {
  (void)L; (void)ud;
  printf("handler: %.*s\n", (int)strcspn(msg, ":"), msg);
}

int main (void) {
  lua_State *L = ctest_newstate();
  CHECK(gr_set_error_handler(L, handler, NULL) == GR_OK);
  ctest_run(L,
    "local g = require 'goroutines'\n"
    "g.parallel(function() require 'goroutines'.time.sleep(0.2)\n"
    "  print('quiet worker done') end)\n");
  CHECK(gr_run(L, GR_RUN_DEFAULT) == GR_OK);
  printf("gr_run returned\n");
  ctest_run(L,
    "local g = require 'goroutines'\n"
    "g.parallel(function() require 'goroutines'.time.sleep(0.2)\n"
    "  error('worker error') end)\n");
  CHECK(gr_run(L, GR_RUN_DEFAULT) == GR_OK);
  printf("gr_run returned\n");
  lua_close(L);
  return 0;
}
