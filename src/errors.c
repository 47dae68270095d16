/*
** errors.c -- the errors a blocking call raises when its wait fails: an
** uncaught goroutine error (the scheduler keeps them, sched.c) or the
** deadlock report; and the report of the errors never raised.
**
** A layer above the scheduler: it reads the goroutine records of every
** state of a pool to write the deadlock report, when every one of their
** threads is asleep for good (that is what made it a deadlock).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "sched.h"

static int deadlock (lua_State *L, gr_state *S, int withg1);

/* Raises the error that gr_sched_wait reported to a blocking call:
** goroutine 1's oldest uncaught goroutine error, or the deadlock report.
** Never returns. */
void gr_errors_raisewait (lua_State *L, gr_state *S, int err) {
  if (err == GR_EGOERR) gr_sched_raiseerror(L, S);
  deadlock(L, S, 1);
}

void gr_errors_raisehost (lua_State *L, gr_state *S, int err) {
  if (err == GR_EGOERR) gr_sched_raiseerror(L, S);
  deadlock(L, S, 0);
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
    if (!g->leaked && !(g->weak && !g->wokeweak))   /* see deadlock */
      addg(b, g, g == cur ? L : g->co);
}

/* Anchors again, as a wake does, the weak goroutines of S whose
** coroutines are alive, so that the report can read them; those left weak
** are garbage, leaks not yet reported (leak.c), and are not listed. The
** weak goroutines of workers are not listed either: only their own
** threads may look. */
static void anchorweak (lua_State *L, gr_state *S) {
  gr_g *g;
  for (g = S->all; g != NULL; g = g->allnext)
    if (!g->leaked && gr_sched_pinco(L, g) == 1) {
      lua_rawseti(L, LUA_REGISTRYINDEX, g->ref);
      g->wokeweak = 1;   /* its resume, if any, does the rest */
    }
}

static void addworker (gr_state *S, void *ud) {
  addstate((luaL_Buffer *)ud, S, NULL, NULL);
}

/* Raises "all goroutines are asleep - deadlock!" listing every goroutine
** of S and of its workers, with its wait reason and location. Every
** worker is asleep with nothing to wait for (that is what made it a
** deadlock), so their goroutines hold still while they are read. L is
** the thread that detected it; without withg1, it is an embedding host's
** gr_run, outside every goroutine, and goroutine 1 is not listed. */
static int deadlock (lua_State *L, gr_state *S, int withg1) {
  luaL_Buffer b;
  anchorweak(L, S);
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "all goroutines are asleep - deadlock!");
  if (withg1) addg(&b, S->g1, S->current == S->g1 ? L : S->g1->co);
  addstate(&b, S, S->current, L);
  if (S->poolops) S->poolops->eachworker(S, addworker, &b);
  luaL_pushresult(&b);
  return lua_error(L);
}

int gr_errors_print (gr_errmsg *e) {
  int n = 0;
  while (e) {
    gr_errmsg *next = e->next;
    fprintf(stderr, "%s\n", e->msg);
    free(e);
    e = next;
    n++;
  }
  fflush(stderr);
  return n;
}

/* At state close: prints the errors never raised; returns their count. */
int gr_errors_report (gr_state *S) {
  int n = gr_errors_print(S->errlocal) + gr_errors_print(S->errors);
  S->errlocal = S->errlocaltail = S->errors = S->errtail = NULL;
  return n;
}
