/*
** gtrace.c -- g.trace.start and g.trace.stop over trace.c, the trace
** that GOROUTINES_TRACE starts with the program, and the GC cycles of
** each state in it.
**
** A GC cycle is seen by a sentinel: an unreachable userdata whose
** finalizer records the cycle and makes the next sentinel, so that every
** cycle that runs finalizers records one instant, on the thread that runs
** the state, at no cost but one tiny finalizer per cycle while no trace
** is recorded. (Lua 5.4 has no collector hook; the finalizer runs at the
** end of the cycle, so the instant marks where a cycle ended.) At
** lua_close, Lua marks no new object for finalization: the last sentinel
** makes no other.
*/
#include <stdio.h>
#include <stdlib.h>

#include "gtrace.h"
#include "state.h"
#include "trace.h"

#define SENTINELMT "goroutines.gcsentinel"

static void newsentinel (lua_State *L) {
  lua_newuserdatauv(L, 0, 0);
  luaL_setmetatable(L, SENTINELMT);
  lua_pop(L, 1);
}

static int sentinel_gc (lua_State *L) {
  GR_TRACE(gr_trace_gc());
  newsentinel(L);
  return 0;
}

/* The state whose close stops a trace started in S: its host's. */
static const void *traceowner (gr_state *S) {
  return S->poolops ? S->poolops->host(S) : S;
}

/* The code that started the trace runs: its slice opens. */
static void opencurrent (gr_state *S) {
  gr_g *g = S->current;
  gr_trace_unblock(g->id, g->tracefn, &g->traceflow);
}

/* g.trace.start(path) -> true, or nil and a message, as Go's
** trace.Start returns an error: "tracing is already enabled", or the
** file's ("out.json: Permission denied"). */
static int lstart (lua_State *L) {
  gr_state *S = gr_getstate(L);
  const char *path = luaL_checkstring(L, 1);
  char err[256];
  const char *msg = gr_trace_start(path, traceowner(S), err, sizeof(err));
  if (msg != NULL) {
    luaL_pushfail(L);
    lua_pushstring(L, msg);
    return 2;
  }
  opencurrent(S);
  lua_pushboolean(L, 1);
  return 1;
}

/* g.trace.stop() -> true once the file is written, false when no trace
** was being recorded; nil and a message when the file could not be
** written whole. */
static int lstop (lua_State *L) {
  int r = gr_trace_stop();
  if (r < 0) {
    luaL_pushfail(L);
    lua_pushliteral(L, "trace: write error");
    return 2;
  }
  lua_pushboolean(L, r);
  return 1;
}

static const luaL_Reg funcs[] = {
  {"start", lstart},
  {"stop", lstop},
  {NULL, NULL}
};

/* GOROUTINES_TRACE=file starts a trace with the first host state of the
** process; it stops when that state closes (lua_close, at the end of the
** standalone interpreter: not with os.exit(code) without close). */
static void startfromenv (gr_state *S) {
  static atomic_int tried;
  const char *path = getenv("GOROUTINES_TRACE");
  char err[256];
  const char *msg;
  if (path == NULL || path[0] == '\0' || atomic_exchange(&tried, 1)) return;
  if ((msg = gr_trace_start(path, S, err, sizeof(err))) != NULL)
    fprintf(stderr, "goroutines: GOROUTINES_TRACE: %s\n", msg);
  else
    opencurrent(S);
}

void gr_gtrace_open (lua_State *L) {
  gr_state *S = gr_state_get(L);
  S->g1->tracefn = "main";
  if (S->worker == NULL) gr_trace_nameme("main", 0);
  if (luaL_newmetatable(L, SENTINELMT)) {
    lua_pushcfunction(L, sentinel_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    newsentinel(L);
  }
  else lua_pop(L, 1);
  lua_newtable(L);
  gr_state_setfuncs(L, funcs);
  lua_setfield(L, -2, "trace");
  if (S->worker == NULL) startfromenv(S);
}
