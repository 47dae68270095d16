/*
** leak.c -- leak detection: a goroutine parked on objects that no running
** code, timer, I/O handle or other state can reach is a leak. Lua's
** collector finds it; it is reported once (g.leaks(), or on stderr at
** exit under GOROUTINES_DEBUG=leaks) and freed.
**
** Ownership of a parked goroutine (the rule that replaces "anchored from
** spawn to death" while it waits):
**   strong: g->ref anchors its coroutine in the registry, as from spawn.
**     So are goroutines that run or are runnable, goroutine 1, goroutines
**     that block in place, and every wait that something outside S may
**     end: a sleep, I/O, a timer's channel (c->hook), a channel or sync
**     object shared with another state or the host, a context.
**   weak: registry[g->ref] is false, and the coroutine hangs from the
**     objects it waits on: the root handle of each (a view holds its
**     root in its second user value, so any handle of the object reaches
**     the root) is a key of the ephemeron table at &setskey, whose value
**     is the set of coroutines weakly parked on it. So the coroutine is
**     reachable iff running code, a global, another goroutine's stack,
**     an upvalue or a registry value can reach a handle of an object it
**     waits on (or the coroutine itself).
** Only a park that its operation declared weakable (gr_sched_leakpark:
** every object S's alone, the goroutine parked by yield) enters S->leakq.
** The weakening itself is lazy, so that waits cost nothing until leaks
** are looked for: g.leaks() weakens every goroutine in S->leakq first,
** and under GOROUTINES_DEBUG=leaks so does the tick, an unreachable
** userdata whose __gc re-arms itself, at the end of every collection
** cycle. (Weakening every long wait at every cycle would cost a spawn-
** and-park workload a third more time: bench/spawn.lua.) A goroutine
** weakened stays weak for the rest of its park, so ordinary collections
** go on finding leaks among the goroutines g.leaks() weakened. The resume of a weak goroutine (it
** was readied by S's thread: gr_sched_ready set g->wokeweak) anchors it
** again before it runs (strengthen). The share of an object it waits on
** pins it (gr_sched_leakpin, before any other state can see the object):
** out of S->leakq, and if weak already, marked as woken.
**
** The sentinel: weakening pushes onto the parked coroutine's stack (the
** top of the yielded frame: g->parktop follows) a small userdata with a
** __gc, whose user value is the coroutine. Nothing else refers to it, so
** it is unreachable exactly when the coroutine is.
** Resurrection (Lua 5.4 runs __gc with the object, and all it reaches,
** marked again for that cycle): when the coroutine becomes unreachable,
** the sentinel is separated for finalization and its user value
** resurrects the coroutine, so g->co is valid memory while the __gc runs.
** But the objects of any other finalizer of that cycle are resurrected
** too, and such a finalizer (run before or after ours) may reach a
** handle of an object g waits on and wake g, or store the handle where
** live code finds it. Hence two stages:
**   1. the first __gc of the sentinel sets g->leakstage and re-arms the
**      sentinel (sets its metatable again), which stays on the stack;
**   2. at the next cycle, the __gc runs again only if the coroutine is
**      still unreachable after every finalizer of the previous cycle has
**      run: then g is a leak.
** A wake at any point in between (a finalizer's send, close) sets
** g->wokeweak; the __gc that sees it anchors g again instead, as resume
** would (the coroutine is resurrected, so it is alive to be anchored).
** A goroutine strong again clears sentinel->g, so a stale sentinel does
** nothing. A finalizer that re-arms itself at every cycle and wakes g
** only after g was reported is not seen: it is not running code.
**
** A leak found (__gc, stage 2) has its waiters taken out of every queue
** at once (leakops->drop, under the objects' locks where they have any),
** so nothing can wake it later; it no longer counts as a goroutine. As
** finalizers run where S->all may be under iteration (g.stack, the
** deadlock report), the record stays in S->all, marked leaked and
** anchored again, until the next scheduling point frees it
** (gr_sched_reap); the coroutine, anchored by nothing from then on, is
** ordinary garbage: its pending <close> variables never run, a guard it
** holds stays locked.
** At lua_close (no frame below the finalizer: a finalizer run by a host's
** API call outside any function looks the same, and waits for the next
** cycle) nothing is reported: goroutines left are abandoned.
** Owner thread only: all of it runs on the thread of g's state.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "leak.h"
#include "state.h"

static const char setskey = 0;   /* ephemeron table: root -> coroutines */
#define SENTMT "goroutines.sentinel"
#define TICKMT "goroutines.leaktick"

/* One leak found, not yet returned by g.leaks(). */
typedef struct gr_leakreport {
  struct gr_leakreport *next;
  lua_Integer id;
  const char *wait;     /* gr_waitreasons[...] */
  const char *created;  /* interned in S (gr_sched_freestrs), or NULL */
  char where[];         /* "file.lua:12", or "?" */
} gr_leakreport;

/* Whether a finalizer runs with no frame below it: lua_close's. */
static int closing (lua_State *L) {
  lua_Debug ar;
  return !lua_getstack(L, 1, &ar);
}

/* Pushes g's coroutine onto L. */
static void pushco (lua_State *L, gr_g *g) {
  lua_pushthread(g->co);
  lua_xmove(g->co, L, 1);
}

/* Takes g's coroutine out of the sets of the roots of the objects it
** waits on. */
static void unhang (lua_State *L, gr_g *g) {
  int top = lua_gettop(L), i, n;
  gr_state_weaktable(L, &setskey);
  n = g->leakops->roots(L, g);
  luaL_checkstack(L, 4, NULL);
  for (i = 1; i <= n; i++) {
    lua_pushvalue(L, top + 1 + i);
    if (lua_rawget(L, top + 1) == LUA_TTABLE) {
      pushco(L, g);
      lua_pushnil(L);
      lua_rawset(L, -3);
    }
    lua_pop(L, 1);
  }
  lua_settop(L, top);
}

/* Cuts g from its sentinel, which may still be finalized: it does
** nothing then. */
static void unsentinel (gr_g *g) {
  if (g->sent) g->sent->g = NULL;
  g->sent = NULL;
}

/* S->strengthen: g, weak, is anchored in the registry again. */
static void strengthen (lua_State *L, gr_g *g) {
  luaL_checkstack(L, 8, NULL);
  if (!lua_checkstack(g->co, 2)) luaL_error(L, "not enough memory");
  pushco(L, g);
  lua_rawseti(L, LUA_REGISTRYINDEX, g->ref);   /* strong from now on */
  g->weak = g->wokeweak = g->leakstage = 0;
  unsentinel(g);
  unhang(L, g);
}

/* Moves g's anchor from the registry to the handles of its objects, and
** puts a sentinel on its stack. Every allocation comes first: a raise
** (memory) leaves g strong, maybe in some sets, which only keeps it. */
static void weaken (lua_State *L, gr_state *S, gr_g *g) {
  lua_State *co = g->co;
  int top = lua_gettop(L), n, i, sets;
  gr_sentinel *s;
  luaL_checkstack(L, 8, NULL);
  if (!lua_checkstack(co, 2)) luaL_error(L, "not enough memory");
  gr_state_weaktable(L, &setskey);
  sets = top + 1;
  n = g->leakops->roots(L, g);
  luaL_checkstack(L, 8, NULL);
  for (i = 1; i <= n; i++) {
    int root = sets + i;
    lua_pushvalue(L, root);
    if (lua_rawget(L, sets) != LUA_TTABLE) {
      lua_pop(L, 1);
      lua_newtable(L);
      lua_pushvalue(L, root);
      lua_pushvalue(L, -2);
      lua_rawset(L, sets);
    }
    pushco(L, g);
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
    lua_pop(L, 1);
  }
  s = (gr_sentinel *)lua_newuserdatauv(L, sizeof(*s), 1);
  s->g = NULL;
  pushco(L, g);
  lua_setiuservalue(L, -2, 1);
  luaL_setmetatable(L, SENTMT);
  /* No raise from here on. */
  s->g = g;
  g->sent = s;
  lua_xmove(L, co, 1);
  g->parktop = lua_gettop(co);   /* a stray resume keeps it (parkk) */
  lua_pushboolean(L, 0);
  lua_rawseti(L, LUA_REGISTRYINDEX, g->ref);
  g->weak = 1;
  g->leakstage = g->wokeweak = 0;
  gr_sched_leakunlist(S, g);
  lua_settop(L, top);
}

/* Weakens every goroutine of S->leakq. */
static void weakenall (lua_State *L, gr_state *S) {
  while (S->leakq != NULL) weaken(L, S, S->leakq);
}

/* The first frame of co with a line: where it blocked. */
static void whereof (lua_State *co, char *buf, size_t size) {
  lua_Debug ar;
  int level;
  for (level = 0; lua_getstack(co, level, &ar); level++)
    if (lua_getinfo(co, "Sl", &ar) && ar.currentline > 0) {
      snprintf(buf, size, "%s:%d", ar.short_src, ar.currentline);
      return;
    }
  snprintf(buf, size, "?");
}

/* g is a leak: report it, take its waiters back, count it out; the reap
** frees it (see the opening comment). */
static void found (lua_State *L, gr_g *g) {
  gr_state *S = g->S;
  char where[LUA_IDSIZE + 24];
  gr_leakreport *r;
  whereof(g->co, where, sizeof(where));
  strengthen(L, g);   /* until the reap: S->all still lists it */
  r = (gr_leakreport *)malloc(sizeof(*r) + strlen(where) + 1);
  if (r == NULL) {   /* found again at a later cycle */
    gr_sched_leakpark(S, g, GR_BLOCK_YIELD, g->leakops);
    return;
  }
  r->next = NULL;
  r->id = g->id;
  r->wait = gr_waitreasons[g->reason];
  r->created = g->created;
  strcpy(r->where, where);
  *S->reportstail = r;
  S->reportstail = &r->next;
  g->leakops->drop(L, g);
  g->leakops = NULL;
  g->leaked = 1;
  S->nleaked++;
  gr_sched_addlive(-1);
}

static void rearm (lua_State *L) {
  lua_getmetatable(L, 1);
  lua_setmetatable(L, 1);
}

static int sentinel_gc (lua_State *L) {
  gr_sentinel *s = (gr_sentinel *)lua_touserdata(L, 1);
  gr_g *g = s->g;
  if (g == NULL) return 0;
  /* Armed again first: whatever happens next (a raise for memory, a
  ** look from lua_close, which ignores it), the coroutine stays alive
  ** while g may point to it; once g is strong again, s->g is NULL. */
  rearm(L);
  if (closing(L) || gr_state_find(L) == NULL) return 0;
  if (g->wokeweak) strengthen(L, g);
  else if (!g->leakstage) g->leakstage = 1;
  else {
    found(L, g);
    lua_pushnil(L);   /* the coroutine goes at the next collection */
    lua_setiuservalue(L, 1, 1);
  }
  return 0;
}

/* The end of a collection cycle: weakens what parked since the last. */
static int tick_gc (lua_State *L) {
  gr_state *S;
  rearm(L);   /* every cycle; ignored by lua_close */
  if (closing(L) || (S = gr_state_find(L)) == NULL) return 0;
  weakenall(L, S);
  return 0;
}

/* Drops the table of sets if it is empty: a table does not shrink, and
** this one grew with the roots of every weak goroutine. */
static void dropsets (lua_State *L) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &setskey) == LUA_TTABLE) {
    lua_pushnil(L);
    if (lua_next(L, -2)) lua_pop(L, 2);
    else {
      lua_pushnil(L);
      lua_rawsetp(L, LUA_REGISTRYINDEX, &setskey);
    }
  }
  lua_pop(L, 1);
}

static int cmpreport (const void *a, const void *b) {
  lua_Integer x = (*(gr_leakreport *const *)a)->id;
  lua_Integer y = (*(gr_leakreport *const *)b)->id;
  return (x > y) - (x < y);
}

/* g.leaks() -> the leaks found and not returned before, in id order,
** each {id =, wait =, where =, created =}. Weakens what is parked, runs
** two full collections (stage 1, then 2), then frees what they found. */
static int lleaks (lua_State *L) {
  gr_state *S = gr_getstate(L);
  gr_leakreport *r;
  int i = 0, n = 0;
  if (lua_gc(L, LUA_GCISRUNNING) == -1)
    return luaL_error(L, "g.leaks: cannot run in a finalizer");
  weakenall(L, S);
  lua_gc(L, LUA_GCCOLLECT);
  lua_gc(L, LUA_GCCOLLECT);
  if (S->nleaked > 0) {
    /* Their coroutines are garbage once reaped: a third collection frees
    ** them, and the allocator gives the pages back to the system. */
    gr_sched_reap(L, S);
    dropsets(L);
    lua_gc(L, LUA_GCCOLLECT);
#ifdef __GLIBC__
    malloc_trim(0);
#endif
  }
  for (r = S->reports; r != NULL; r = r->next) n++;
  lua_createtable(L, n, 0);
  if (n > 1) {   /* in id order: finalizers run in no useful order */
    gr_leakreport **v = (gr_leakreport **)malloc(n * sizeof(*v));
    if (v != NULL) {
      for (r = S->reports; r != NULL; r = r->next) v[i++] = r;
      qsort(v, (size_t)n, sizeof(*v), cmpreport);
      for (i = 0; i < n - 1; i++) v[i]->next = v[i + 1];
      v[n - 1]->next = NULL;
      S->reports = v[0];
      free(v);
      i = 0;
    }
  }
  while ((r = S->reports) != NULL) {
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, r->id);
    lua_setfield(L, -2, "id");
    lua_pushstring(L, r->wait);
    lua_setfield(L, -2, "wait");
    lua_pushstring(L, r->where);
    lua_setfield(L, -2, "where");
    lua_pushstring(L, r->created ? r->created : "?");
    lua_setfield(L, -2, "created");
    lua_rawseti(L, -2, ++i);
    S->reports = r->next;
    if (S->reports == NULL) S->reportstail = &S->reports;
    free(r);
  }
  return 1;
}

void gr_leak_close (gr_state *S) {
  gr_leakreport *r;
  while ((r = S->reports) != NULL) {
    if (S->leakprint)
      fprintf(stderr, "goroutines: leaked goroutine %lld [%s] at %s, "
              "created at %s\n", (long long)r->id, r->wait, r->where,
              r->created ? r->created : "?");
    S->reports = r->next;
    free(r);
  }
  S->reportstail = &S->reports;
  fflush(stderr);
}

/* GOROUTINES_DEBUG is a comma-separated list, as Go's GODEBUG: "leaks"
** prints the leaks at exit, "leakcheck=0" turns leak detection off. */
void gr_leak_init (gr_state *S) {
  const char *d = getenv("GOROUTINES_DEBUG");
  S->reportstail = &S->reports;
  while (d != NULL && *d) {
    size_t len = strcspn(d, ",");
    if (len == 5 && strncmp(d, "leaks", 5) == 0) S->leakprint = 1;
    if (len == 11 && strncmp(d, "leakcheck=0", 11) == 0) S->leakoff = 1;
    d += len;
    if (*d == ',') d++;
  }
}

static const luaL_Reg funcs[] = {
  {"leaks", lleaks},
  {NULL, NULL}
};

void gr_leak_open (lua_State *L) {
  gr_state *S = gr_state_get(L);
  gr_state_setfuncs(L, funcs);
  if (luaL_newmetatable(L, SENTMT)) {
    lua_pushcfunction(L, sentinel_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  S->strengthen = strengthen;
  if (S->leakoff || !S->leakprint) return;   /* on demand: g.leaks() */
  if (!luaL_newmetatable(L, TICKMT)) {
    lua_pop(L, 1);
    return;   /* ticking already (a second require) */
  }
  lua_pushcfunction(L, tick_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  lua_newuserdatauv(L, 0, 0);
  luaL_setmetatable(L, TICKMT);
  lua_pop(L, 1);   /* unreachable: its __gc runs at the end of each cycle */
}
