/*
** loopopen.c -- gr_set_loop before gr_open, and without an error handler:
** gr_open puts the state on the host's loop; an uncaught error stops the
** loop (uv_run returns) and the host's next gr_run returns it; uv_run
** then goes on until the goroutines are done.
*/
#include <string.h>
#include <uv.h>

#include "ctest.h"

int main (void) {
  uv_loop_t loop, other;
  lua_State *L = luaL_newstate(), *bare = luaL_newstate();
  int r;
  CHECK(L != NULL && bare != NULL);
  luaL_openlibs(L);
  CHECK(uv_loop_init(&loop) == 0 && uv_loop_init(&other) == 0);
  CHECK(gr_set_loop(L, NULL) == GR_EINVAL);
  CHECK(gr_loop(L) == NULL);
  CHECK(gr_set_loop(L, &loop) == GR_OK);          /* before gr_open */
  CHECK(gr_loop(L) == &loop);
  CHECK(gr_set_loop(L, &other) == GR_EINVAL);     /* set already */
  CHECK(gr_open(L) == GR_OK);
  CHECK(gr_loop(L) == &loop);
  CHECK(gr_set_loop(L, &other) == GR_EINVAL);     /* set already */
  /* A state that never gets the runtime keeps nothing of it. */
  CHECK(gr_set_loop(bare, &other) == GR_OK);
  lua_close(bare);

  ctest_run(L,
    "local g = require 'goroutines'\n"
    "g.go(function()\n"
    "  for i = 1, 3 do g.time.sleep(0.02) print('tick', i) end\n"
    "end)\n"
    "g.go(function() g.time.sleep(0.01) error('boom', 0) end)\n");
  uv_run(&loop, UV_RUN_DEFAULT);       /* stopped by the error */
  r = gr_run(L, GR_RUN_NOWAIT);
  printf("after the stop: %s", r == GR_ERROR ? "GR_ERROR " : "not GR_ERROR\n");
  if (r == GR_ERROR) {
    const char *msg = lua_tostring(L, -1);
    printf("%.*s\n", (int)strcspn(msg, "\n"), msg);
    lua_pop(L, 1);
  }
  uv_run(&loop, UV_RUN_DEFAULT);       /* until the ticks are done */
  printf("uv_run returned\n");
  lua_close(L);
  uv_run(&loop, UV_RUN_DEFAULT);       /* the close callbacks */
  CHECK(uv_loop_close(&loop) == 0);
  CHECK(uv_loop_close(&other) == 0);
  printf("loop closed\n");
  return 0;
}
