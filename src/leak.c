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
**     waits on (or the coroutine itself). The table at gr_sched_weakkey
**     maps g->ref to the coroutine with a weak value: the only way from C
**     to the coroutine of a weak goroutine that has not been woken.
** Only a park that its operation declared weakable (gr_sched_leakpark:
** every object S's alone, the goroutine parked by yield) enters S->leakq.
** The weakening itself is lazy, so that waits cost nothing until leaks
** are looked for: g.leaks() weakens every goroutine in S->leakq, and
** under GOROUTINES_DEBUG=leaks so does the tick (an unreachable userdata
** whose __gc re-arms itself) at the end of every collection cycle.
** (Weakening every long wait at every cycle would cost a spawn-and-park
** workload a third more time: bench/spawn.lua.) A goroutine stays weak
** for the rest of its park, so later collections go on finding leaks
** among the goroutines weakened once.
**
** Finding: Lua 5.4 clears a weak value before it resurrects the objects
** of finalizers ("resurrected objects are removed from weak values before
** running their finalizers"), so the weak table's entry of g is gone
** exactly when a collection found the coroutine unreachable from the
** roots. The tick (at the end of every cycle) and g.leaks() (after two
** full collections) look at every weak goroutine: one whose entry is gone
** and that was not woken is a leak. Its coroutine is freed memory, or
** will be: nothing reads g->co from then on. Everything that reads the
** coroutine of a goroutine that may be weak goes through gr_sched_pinco
** (g.stack, the deadlock report), or skips weak ones.
** Waking: the wake of a weak goroutine (S's thread: its objects are S's
** alone) anchors it in the registry again at once, since the waker may
** drop the last handle before it runs; the weakening made room on the
** coroutine's stack so that this allocates nothing (gr_sched_ready).
** Resume takes it out of the sets (strengthen). The share of an object
** it waits on does the same as a wake, before another state can see the
** object (gr_sched_leakpin).
** Resurrection: a finalizer (of the same cycle) whose object reaches a
** handle of an object g waits on resurrects g's coroutine with it. If
** that finalizer wakes g, the wake anchors it: not a leak. If it keeps
** the handle without waking g, g is still reported and freed (its weak
** entry was cleared), and a later operation on the handle does not find
** it: a finalizer that stores a handle for later is not running code.
** A leak found has every waiter taken out of its queue at once
** (leakops->drop, under the objects' locks where they have any), so
** nothing can wake it later; all the leaks of a look are marked before
** any is dropped, so that a drop that lets the next waiter go (a lock
** handed on) never wakes one of them. It no longer counts as a goroutine.
** As finalizers run where S->all may be under iteration, the record
** stays in S->all, marked leaked, until the next scheduling point frees
** it (gr_sched_reap). Its pending <close> variables never run, a guard it
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

/* Pushes g's coroutine onto L; g's coroutine is alive (strong, or
** anchored again by its wake). */
static void pushco (lua_State *L, gr_g *g) {
  lua_pushthread(g->co);
  lua_xmove(g->co, L, 1);
}

/* Pushes the table that maps the refs of weak goroutines to their
** coroutines, with weak values, made on first use. */
static void pushweak (lua_State *L) {
  gr_state_weakvalues(L, &gr_sched_weakkey);
}

/* Takes g's coroutine out of the sets of the roots of the objects it
** waits on, and out of the weak table. */
static void unhang (lua_State *L, gr_g *g) {
  int top = lua_gettop(L), i, n;
  luaL_checkstack(L, 8, NULL);
  pushweak(L);
  lua_pushnil(L);
  lua_rawseti(L, -2, g->ref);
  lua_pop(L, 1);
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

/* S->strengthen, at the resume of g (weak, woken: its wake anchored it in
** the registry again): g is strong again. */
static void strengthen (lua_State *L, gr_g *g) {
  GR_ASSERT(g->wokeweak);
  unhang(L, g);
  gr_sched_leakunlist(g->S, g);   /* from S->weakq: g->weak still set */
  g->weak = g->wokeweak = 0;
  g->where = NULL;
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

/* Moves g's anchor from the registry to the handles of its objects (and
** the weak table). Every allocation comes first: a raise (memory) leaves
** g strong, maybe in some sets, which only keeps it. The room it makes on
** the coroutine's stack lets a wake anchor g again without allocating. */
static void weaken (lua_State *L, gr_state *S, gr_g *g) {
  lua_State *co = g->co;
  int top = lua_gettop(L), n, i, sets;
  char where[LUA_IDSIZE + 24];
  luaL_checkstack(L, 8, NULL);
  if (!lua_checkstack(co, 2)) luaL_error(L, "not enough memory");
  whereof(co, where, sizeof(where));
  pushweak(L);
  gr_state_weaktable(L, &setskey);
  sets = top + 2;
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
  pushco(L, g);
  lua_rawseti(L, top + 1, g->ref);   /* may grow the weak table */
  g->where = gr_sched_intern(S, where);
  /* No raise from here on. */
  lua_pushboolean(L, 0);
  lua_rawseti(L, LUA_REGISTRYINDEX, g->ref);
  gr_sched_leakunlist(S, g);   /* from S->leakq */
  g->weak = 1;
  g->wokeweak = 0;
  gr_sched_weaklist(S, g);
  lua_settop(L, top);
}

/* Weakens every goroutine of S->leakq. */
static void weakenall (lua_State *L, gr_state *S) {
  while (S->leakq != NULL) weaken(L, S, S->leakq);
}

/* The weak goroutines whose coroutine the collector found garbage are
** leaks: each is reported, its waiters are dropped, it is counted out;
** the reap frees its record. All are marked first, so that dropping the
** waiters of one (which may hand a lock to the next waiter) never wakes
** another, whose coroutine may be freed memory already. */
static void detect (lua_State *L, gr_state *S) {
  gr_g *g, *next, *found = NULL;
  if (S->weakq == NULL) return;
  luaL_checkstack(L, 4, NULL);
  pushweak(L);
  for (g = S->weakq; g != NULL; g = next) {
    next = g->leaknext;
    if (g->wokeweak) continue;
    if (lua_rawgeti(L, -1, g->ref) == LUA_TNIL) {
      gr_sched_leakunlist(S, g);
      g->leaked = 1;
      g->leaknext = found;   /* a list of the leaks, for the loop below */
      found = g;
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  for (g = found; g != NULL; g = next) {
    gr_leakreport *r;
    size_t len = strlen(g->where ? g->where : "?");
    next = g->leaknext;
    g->leaknext = NULL;
    g->leakops->drop(L, g);   /* never reads g->co */
    g->leakops = NULL;
    g->weak = 0;
    S->nleaked++;
    gr_sched_addlive(-1);
    r = (gr_leakreport *)malloc(sizeof(*r) + len + 1);
    if (r == NULL) continue;   /* freed, not reported: no memory */
    r->next = NULL;
    r->id = g->id;
    r->wait = gr_waitreasons[g->reason];
    r->created = g->created;
    memcpy(r->where, g->where ? g->where : "?", len + 1);
    *S->reportstail = r;
    S->reportstail = &r->next;
  }
}

/* The end of a collection cycle: finds the leaks among the weak
** goroutines, and under GOROUTINES_DEBUG=leaks weakens what parked since
** the last cycle. */
static int tick_gc (lua_State *L) {
  gr_state *S;
  lua_getmetatable(L, 1);
  lua_setmetatable(L, 1);   /* every cycle; ignored by lua_close */
  if (closing(L) || (S = gr_state_find(L)) == NULL) return 0;
  detect(L, S);
  if (S->leakprint) weakenall(L, S);
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
  lua_gc(L, LUA_GCCOLLECT);   /* frees the leaks' coroutines */
  lua_gc(L, LUA_GCCOLLECT);   /* and what only they held */
  detect(L, S);
  if (S->nleaked > 0) {
    gr_sched_reap(L, S);
    dropsets(L);
#ifdef __GLIBC__
    malloc_trim(0);   /* the pages go back to the system */
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
  S->strengthen = strengthen;
  if (S->leakoff) return;
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
