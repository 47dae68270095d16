/*
** slice.c -- gr_set_preempt_slice sets what g.preempt_slice reads, and
** refuses a state without the runtime and a slice out of range.
*/
#include "ctest.h"

int main (void) {
  lua_State *bare = luaL_newstate(), *L = ctest_newstate();
  CHECK(gr_set_preempt_slice(NULL, 0.01) == GR_EINVAL);
  CHECK(gr_set_preempt_slice(bare, 0.01) == GR_EINVAL);
  CHECK(gr_set_preempt_slice(L, 0) == GR_EINVAL);
  CHECK(gr_set_preempt_slice(L, 3601) == GR_EINVAL);
  CHECK(gr_set_preempt_slice(L, 0.0 / 0.0) == GR_EINVAL);
  ctest_run(L, "print(require 'goroutines'.preempt_slice())");
  CHECK(gr_set_preempt_slice(L, 0.002) == GR_OK);
  ctest_run(L, "print(require 'goroutines'.preempt_slice())");
  lua_close(bare);
  lua_close(L);
  return 0;
}
