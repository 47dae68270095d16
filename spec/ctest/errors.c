/*
** errors.c -- uncaught goroutine errors in an embedded host: with a
** handler they go to it (those still pending at lua_close too), without
** one they are raised in the main chunk as usual; lua_close never exits
** nor prints. gr_set_worker_init opens a host library in worker states.
*/
#include <stdatomic.h>
#include <string.h>

#include "ctest.h"

static int handled;

/* Prints the first line of each error and counts them in the global
** `handled` of L (its stack is usable, and left as it was). */
static void onerror (lua_State *L, const char *msg, void *ud) {
  const char *nl = strchr(msg, '\n');
  CHECK(L != NULL && ud == &handled);
  handled++;
  lua_pushinteger(L, handled);   /* what the script waits for */
  lua_setglobal(L, "handled");
  printf("handler: %.*s\n", nl ? (int)(nl - msg) : (int)strlen(msg), msg);
}

static atomic_int workers;

static int hostadd (lua_State *L) {
  lua_pushinteger(L, luaL_checkinteger(L, 1) + luaL_checkinteger(L, 2));
  return 1;
}

/* A host library for every worker state. */
static void workerinit (lua_State *W, void *ud) {
  CHECK(ud == &workers);
  atomic_fetch_add(&workers, 1);
  lua_register(W, "hostadd", hostadd);
}

int main (void) {
  lua_State *L;
  CHECK(gr_set_error_handler(NULL, onerror, NULL) == GR_EINVAL);
  gr_set_worker_init(workerinit, &workers);
  L = ctest_newstate();
  CHECK(gr_set_error_handler(L, onerror, &handled) == GR_OK);
  ctest_run(L,
    "local g = require 'goroutines'\n"
    "g.go(function() error('boom', 0) end)\n"
    "g.time.sleep(0.01)\n"                 /* the handler gets it here */
    "print('main goes on')\n"
    "g.gomaxprocs(1)\n"
    "local out = g.chan()\n"
    "g.parallel(function() out:send(hostadd(2, 3)) error('far', 0) end)\n"
    "print('worker says', out:recv())\n"
    "for i = 1, 20000 do\n"              /* until the worker's error came */
    "  if handled == 2 then break end\n"
    "  g.time.sleep(0.001)\n"
    "end\n"
    "g.go(function() error('late', 0) end)\n"
    "g.gosched()\n");                      /* raised, never seen by main */
  printf("handled before close: %d\n", handled);
  lua_close(L);                            /* 'late' goes to the handler */
  printf("handled: %d, worker states: %d\n", handled, atomic_load(&workers));

  /* No handler: main gets the error; the one left at close is dropped. */
  L = ctest_newstate();
  ctest_run(L,
    "local g = require 'goroutines'\n"
    "g.go(function() error('boom', 0) end)\n"
    "local ok, err = pcall(g.time.sleep, 0.01)\n"
    "print(ok, (err:match('[^\\n]*')))\n"
    "g.go(function() error('never raised', 0) end)\n"
    "g.gosched()\n");
  lua_close(L);
  printf("closed without exiting\n");
  return 0;
}
