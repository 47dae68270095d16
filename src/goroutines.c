/*
** goroutines.c -- module entry: `require "goroutines.core"` builds the
** scheduler of the requiring state and the table of C functions that
** lua/goroutines/init.lua turns into the public module.
*/
#include "chan.h"
#include "context.h"
#include "exec.h"
#include "gos.h"
#include "gsignal.h"
#include "gtrace.h"
#include "net.h"
#include "parallel.h"
#include "runtime.h"
#include "sched.h"
#include "select.h"
#include "stack.h"
#include "state.h"
#include "sync.h"
#include "gtime.h"
#include "leak.h"

int luaopen_goroutines_core (lua_State *L) {
  luaL_checkversion(L);
  gr_runtime_get(L);
  lua_newtable(L);
  gr_sched_open(L);
  gr_chan_open(L);
  gr_select_open(L);
  gr_time_open(L);
  gr_sync_open(L);
  gr_parallel_open(L);
  gr_context_open(L);
  gr_net_open(L);
  gr_stack_open(L);
  gr_os_open(L);
  gr_signal_open(L);
  gr_exec_open(L);
  gr_leak_open(L);
  gr_gtrace_open(L);
  return 1;
}
