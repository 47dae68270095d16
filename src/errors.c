/*
** errors.c -- uncaught goroutine errors and the deadlock report.
**
** An uncaught error becomes a C string "goroutine N: msg" with the
** goroutine's traceback (so that it can cross states). A worker state
** hands it to its host (the host's S->errors, under its rlock, then a
** kick); in the host it waits in S->errlocal (owner thread) until
** goroutine 1 blocks, where
** gr_sched_wait returns GR_EGOERR and the blocking call raises it; those
** still waiting when the state closes are printed to stderr and the
** process exits with status 1. Errors are never dropped.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "sched.h"

/* Queues e for goroutine 1 of the host state. An error of a worker goes
** to its host's mailbox even while the pool stops: the host prints what
** it never raised once every worker has stopped. */
static void deliver (gr_state *S, gr_errmsg *e) {
  gr_state *H = S->poolops ? S->poolops->host(S) : S;
  if (H != S) {
    gr_mutex_lock(&H->rlock);
    if (H->errtail) H->errtail->next = e;
    else H->errors = e;
    H->errtail = e;
    gr_mutex_unlock(&H->rlock);
    atomic_store(&H->rpending, 1);
    gr_sched_kick(H);
    return;
  }
  if (S->errlocaltail) S->errlocaltail->next = e;
  else S->errlocal = e;
  S->errlocaltail = e;
}

/* Records an error of goroutine id that has no Lua stack to trace (a
** parallel goroutine that could not start). */
void gr_errors_addmsg (gr_state *S, lua_Integer id, const char *msg,
                       const char *traceback) {
  char head[48];
  size_t hl, ml, tl;
  gr_errmsg *e;
  snprintf(head, sizeof(head), "goroutine %lld: ", (long long)id);
  if (msg == NULL) msg = "(error object is not a string)";
  if (traceback == NULL) traceback = "";
  hl = strlen(head);
  ml = strlen(msg);
  tl = strlen(traceback);
  e = (gr_errmsg *)malloc(sizeof(*e) + hl + ml + tl + 1);
  if (e == NULL) {
    fprintf(stderr, "%s%s\n", head, msg);
    return;
  }
  e->next = NULL;
  e->len = hl + ml + tl;
  memcpy(e->msg, head, hl);
  memcpy(e->msg + hl, msg, ml);
  memcpy(e->msg + hl + ml, traceback, tl + 1);
  deliver(S, e);
}

/* Records an error that escaped the body of g (the body records the
** errors of g's function; only one in recording them comes here, such as
** a memory error). Makes no Lua allocation: L runs the scheduler. */
void gr_errors_add (lua_State *L, gr_state *S, gr_g *g, int status) {
  const char *msg = NULL;
  (void)L;
  if (status == LUA_ERRMEM) msg = "not enough memory";
  else if (lua_type(g->co, -1) == LUA_TSTRING) msg = lua_tostring(g->co, -1);
  gr_errors_addmsg(S, g->id, msg, NULL);
}

/* Raises the oldest waiting error in L. Never returns. */
int gr_errors_raise (lua_State *L, gr_state *S) {
  gr_errmsg *e = S->errlocal;
  GR_ASSERT(e != NULL);
  S->errlocal = e->next;
  if (S->errlocal == NULL) S->errlocaltail = NULL;
  lua_pushlstring(L, e->msg, e->len);
  free(e);
  return lua_error(L);
}

/* Whether a frame is in the module's own Lua code (its coroutine.resume,
** where a goroutine parks for a plain coroutine that blocked). */
static int ownframe (const lua_Debug *ar) {
  size_t n = strlen(ar->short_src), k = sizeof("goroutines/init.lua") - 1;
  return n >= k && strcmp(ar->short_src + n - k, "goroutines/init.lua") == 0;
}

/* Appends "file:line" of the innermost Lua frame of co outside the
** module's own code. */
static void addwhere (luaL_Buffer *b, lua_State *co) {
  lua_Debug ar;
  int level;
  for (level = 0; lua_getstack(co, level, &ar); level++) {
    lua_getinfo(co, "Sl", &ar);
    if (ar.currentline > 0 && !ownframe(&ar)) {
      luaL_addstring(b, ar.short_src);
      luaL_addchar(b, ':');
      lua_pushinteger(b->L, ar.currentline);
      luaL_addvalue(b);
      return;
    }
  }
  luaL_addstring(b, "?");
}

static void addg (luaL_Buffer *b, gr_g *g, lua_State *co) {
  char head[64];
  snprintf(head, sizeof(head), "\n\ngoroutine %lld [", (long long)g->id);
  luaL_addstring(b, head);
  luaL_addstring(b, gr_waitreasons[g->reason]);
  luaL_addstring(b, "]:\n\t");
  addwhere(b, co);
}

/* Appends the goroutines of S, oldest first; cur (running on thread L)
** stands for the goroutine that detected the deadlock. */
static void addstate (luaL_Buffer *b, gr_state *S, gr_g *cur, lua_State *L) {
  gr_g *g = S->all, *last = NULL;
  for (; g != NULL; g = g->allnext) last = g;
  for (g = last; g != NULL; g = g->allprev)
    addg(b, g, g == cur ? L : g->co);
}

static void addworker (gr_state *S, void *ud) {
  addstate((luaL_Buffer *)ud, S, NULL, NULL);
}

/* Raises "all goroutines are asleep - deadlock!" listing every goroutine
** of S and of its workers, with its wait reason and location. Every
** worker is asleep with nothing to wait for (that is what made it a
** deadlock), so their goroutines hold still while they are read. L is
** the thread that detected it. */
int gr_errors_deadlock (lua_State *L, gr_state *S) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "all goroutines are asleep - deadlock!");
  addg(&b, S->g1, S->current == S->g1 ? L : S->g1->co);
  addstate(&b, S, S->current, L);
  if (S->poolops) S->poolops->eachworker(S, addworker, &b);
  luaL_pushresult(&b);
  return lua_error(L);
}

static int printlist (gr_errmsg *e) {
  int n = 0;
  while (e) {
    gr_errmsg *next = e->next;
    fprintf(stderr, "%s\n", e->msg);
    free(e);
    e = next;
    n++;
  }
  return n;
}

/* At state close: prints the errors never raised; returns their count. */
int gr_errors_report (gr_state *S) {
  int n = printlist(S->errlocal) + printlist(S->errors);
  S->errlocal = S->errlocaltail = S->errors = S->errtail = NULL;
  fflush(stderr);
  return n;
}
