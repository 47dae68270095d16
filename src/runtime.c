/*
** runtime.c -- the life cycle of a state's runtime: the scheduler record
** is made by the first require of the module in a state (luaopen) and
** closed by the __gc of its anchor (state.c) when the Lua state closes;
** what the close does last, the close policy, is set here.
**
** Close order: a host's workers stop first, then parked goroutines drop
**   their waiters (objects may be shared with other states), then timers,
**   then the libuv handles and loop; once all of it is freed, the close
**   policy gets the errors that were never raised (the default one prints
**   them and exits with status 1), or, in an embedded state (gr_open, or
**   an error handler set), the host's handler does (no print, no exit).
*/
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "copy.h"
#include "errors.h"
#include "leak.h"
#include "parallel.h"
#include "runtime.h"
#include "sched.h"
#include "select.h"
#include "state.h"
#include "stream.h"
#include "timer.h"
#include "trace.h"

/* Prints the errors a host state never raised and, if there were any,
** exits with status 1: the standalone interpreter's policy, where an
** uncaught goroutine error fails the program. */
static void exitonerrors (gr_errmsg *errs) {
  if (gr_errors_print(errs) > 0) exit(EXIT_FAILURE);
}

/* What the close of a host state does last: process-wide, set before any
** state closes (an embedding host installs its own handler here). */
static gr_runtime_closepolicy closepolicy = exitonerrors;

void gr_runtime_setclosepolicy (gr_runtime_closepolicy f) {
  closepolicy = f ? f : exitonerrors;
}

static void onasync (uv_async_t *handle) {
  (void)handle;   /* a doorbell: the scheduler drains the remote queue */
}

/* Takes the errors of S that were never raised, oldest first: those
** goroutine 1 already saw, then those handed over by other threads. */
static gr_errmsg *takeerrors (gr_state *S) {
  gr_errmsg *errs = S->errlocal, *remote;
  gr_mutex_lock(&S->rlock);
  remote = S->errors;
  S->errors = S->errtail = NULL;
  gr_mutex_unlock(&S->rlock);
  if (errs) S->errlocaltail->next = remote;
  else errs = remote;
  S->errlocal = S->errlocaltail = NULL;
  return errs;
}

/* The close of an embedded host state (gr_open): the errors never
** raised go to the host's handler if it set one, and are dropped
** otherwise (the host got the others from gr_run or in main); it never
** prints nor exits. L is the state being closed. */
static void passonclose (gr_errmsg *errs, lua_State *L,
                         void (*f) (lua_State *L, const char *msg,
                                    void *ud), void *ud) {
  while (errs) {
    gr_errmsg *next = errs->next;
    if (f) f(L, errs->msg, ud);
    free(errs);
    errs = next;
  }
}

static void closestate (gr_state *S) {
  int host = S->worker == NULL, embedded = S->embedded || S->errhandler;
  void (*handler) (lua_State *L, const char *msg, void *ud) = S->errhandler;
  void *ud = S->errud;
  lua_State *L = S->L;
  gr_errmsg *errs;
  if (S->hostclose) S->hostclose(S, S->hostcloseud);   /* off the host's loop */
  if (S->pool && host) {   /* its workers go first: they may hand it errors */
    gr_pool_stop(S->pool);
    S->pool = NULL;
  }
  gr_sched_forget(S);
  gr_timer_pause(S);   /* no timer-thread wake in flight while g's go */
  gr_leak_close(S);
  gr_sched_closeall(S);
  gr_sched_freestrs(S);
  gr_timer_closeall(S);
  gr_select_closestate(S);
  gr_stream_closestate(S);
  gr_pack_free(S->sparepack);
  gr_trace_addstate(S, -1);   /* after its goroutines and workers */
  /* A worker hands its errors to its host: it has none of its own, but
  ** any it had are printed, never dropped. */
  if (!host) gr_errors_report(S);
  errs = takeerrors(S);
  uv_close((uv_handle_t *)&S->async, NULL);
  uv_close((uv_handle_t *)&S->uvtimer, NULL);
  while (uv_loop_close(&S->loop) == UV_EBUSY)
    uv_run(&S->loop, UV_RUN_DEFAULT);
  gr_mutex_destroy(&S->rlock);
  free(S);
  if (host && embedded) passonclose(errs, L, handler, ud);
  else if (host) closepolicy(errs);   /* last: it may end the process */
}

/* fds 0-2 that are closed get /dev/null, as Go's runtime does at start
** (checkfds): else the first loop would take one of those numbers for its
** epoll fd, which libuv refuses to close (it aborts at the loop's close),
** and g.os.stdin would read it. */
static uv_once_t stdfdsonce = UV_ONCE_INIT;

static void openstdfds (void) {
  int fd;
  for (fd = 0; fd <= 2; fd++) {
    if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
      int r = open("/dev/null", O_RDWR);   /* the lowest: fd itself */
      if (r >= 0 && r != fd) close(r);
    }
  }
}

static gr_state *newstate (lua_State *L) {
  const char *gc = getenv("GOROUTINES_GCSTRESS");
  gr_state *S;
  gr_g *g1;
  uv_once(&stdfdsonce, openstdfds);
  S = (gr_state *)calloc(1, sizeof(*S));
  g1 = (gr_g *)calloc(1, sizeof(*g1));
  if (S == NULL || g1 == NULL || uv_loop_init(&S->loop) != 0) {
    free(S);
    free(g1);
    luaL_error(L, "goroutines: cannot create the scheduler");
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
  S->L = lua_tothread(L, -1);
  lua_pop(L, 1);
  g1->id = 1;
  g1->co = S->L;
  g1->ref = LUA_NOREF;
  g1->S = S;
  S->g1 = S->current = g1;
  S->rng = (uv_hrtime() ^ (uint64_t)(uintptr_t)S) | 1;
  S->gcstress = gc != NULL && gc[0] != '\0' && strcmp(gc, "0") != 0;
  gr_leak_init(S);
  /* A worker thread marks its state before it loads the module. */
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &gr_parallel_workerkey) ==
      LUA_TLIGHTUSERDATA) {
    gr_pool_attach(S, (gr_worker *)lua_touserdata(L, -1));
  }
  lua_pop(L, 1);
  gr_mutex_init(&S->rlock, GR_LMAILBOX);
  if (uv_async_init(&S->loop, &S->async, onasync) != 0 ||
      gr_timer_init(S) != 0)
    luaL_error(L, "goroutines: cannot create the scheduler");
  gr_sched_adopt(S);
  gr_trace_addstate(S, 1);
  return S;
}

/* Returns the runtime of L's state, making it on first use. */
gr_state *gr_runtime_get (lua_State *L) {
  return gr_state_create(L, newstate, closestate);
}
