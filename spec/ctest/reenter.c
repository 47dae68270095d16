/*
** reenter.c -- gr_run and gr_resume are refused (GR_EINVAL) from inside
** gr_run: from a finalizer that runs between goroutines (a full
** collection at every scheduling point, GOROUTINES_GCSTRESS), and the run
** goes on unharmed.
*/
#include <stdlib.h>

#include "ctest.h"

static int refused, accepted, rrefused, raccepted;

/* rerun(): called by finalizers. */
static int lrerun (lua_State *L) {
  lua_State *co;
  int nres;
  if (gr_run(L, GR_RUN_NOWAIT) == GR_EINVAL) refused++;
  else accepted++;
  /* A coroutine that would only return. */
  co = lua_newthread(L);
  lua_getglobal(co, "nothing");
  if (gr_resume(L, co, 0, &nres) == GR_EINVAL) rrefused++;
  else raccepted++;
  lua_pop(L, 1);
  return 0;
}

int main (void) {
  lua_State *L;
  CHECK(setenv("GOROUTINES_GCSTRESS", "1", 1) == 0);
  L = ctest_newstate();
  lua_register(L, "rerun", lrerun);
  ctest_run(L,
    "local g = require 'goroutines'\n"
    "function nothing() end\n"
    "local c = g.chan()\n"
    "local function junk() setmetatable({}, {__gc = rerun}) end\n"
    "g.go(function() for i = 1, 20 do junk(); c:send(i) end; c:close() end)\n"
    "g.go(function() local n = 0\n"
    "  for v in c:range() do junk(); n = n + v end\n"
    "  print('sum', n) end)\n");
  CHECK(gr_run(L, GR_RUN_DEFAULT) == GR_OK);
  lua_gc(L, LUA_GCCOLLECT);
  printf("refused %s, accepted %d\n", refused > 0 ? "some" : "none", accepted);
  printf("gr_resume refused %s, accepted %d\n", rrefused > 0 ? "some" : "none",
         raccepted);
  lua_close(L);
  return 0;
}
