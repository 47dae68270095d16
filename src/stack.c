/*
** stack.c -- g.stack(): Go's dump of every goroutine of every state
** ("goroutine 7 [chan receive]:" and its traceback), in goroutine id
** order.
**
** Only a state's own thread may read the stacks of its goroutines. So the
** dumping goroutine writes its own state's part, and asks every other
** state of the process for theirs (gr_sched_askdump): each answers at its
** next scheduling point (S->ondump), with C strings, into the request. A
** state that has not answered within a time slice is computing or inside
** a C call: its running goroutine is listed as Go lists a goroutine that
** runs on another thread, without a stack.
**
** Invariants: one dump at a time (dumping); while a dump takes answers
**   (req.gen not 0), req is read and written under req.lock only, and
**   after that by the dumper alone; an answer counts only for the request
**   it was asked for (its generation), so a late one is dropped. A dump
**   waits for answers one time slice (the longest of the states asked),
**   and slice after slice while a state that has not answered sleeps in
**   its loop (it answers when its thread runs); never more than MAXWAIT.
** Lock order: req.lock (GR_LDUMP) is a leaf: the Lua API (tracebacks),
**   gr_sched_eachstate and the waits for the lock run outside it.
*/
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "goroutines.h"
#include "stack.h"
#include "state.h"

/* One goroutine's part of the dump. */
typedef struct entry {
  lua_Integer id;
  char *text;           /* malloc'd, "goroutine 7 [...]:\n..." */
} entry;

/* The dump under way. */
static struct {
  gr_lock lock;
  uv_cond_t cond;
  unsigned gen;         /* the request being answered, 0 between dumps */
  unsigned lastgen;
  int pending;          /* states asked that have not answered */
  gr_state **asked;     /* those states (NULL once answered) */
  int nasked, askcap;
  entry *e;             /* the entries gathered */
  int n, cap;
  int nomem;            /* an entry was lost for memory */
} req;

#define DEFAULTSLICE 10000000ULL   /* ns the monitor waits for answers */
#define MAXWAIT 1000000000ULL      /* ns a dump waits at most (a state may
                                      have a slice of an hour) */

static uv_once_t reqonce = UV_ONCE_INIT;
static atomic_int dumping;   /* 1 while a dump is under way */

static void initreq (void) {
  if (gr_lock_init(&req.lock, GR_LDUMP) != 0 || uv_cond_init(&req.cond) != 0)
    abort();   /* at the first dump: it cannot go on without them */
}

/* Appends the n entries e to req if live; frees them otherwise.
** Requires req.lock. */
static void addentries (int live, entry *e, int n) {
  int i;
  if (live && req.n + n > req.cap) {
    int cap = req.cap ? req.cap : 64;
    entry *ne;
    while (cap < req.n + n) cap *= 2;
    ne = (entry *)realloc(req.e, (size_t)cap * sizeof(entry));
    if (ne != NULL) {
      req.e = ne;
      req.cap = cap;
    }
  }
  for (i = 0; i < n; i++) {
    if (live && req.n < req.cap) req.e[req.n++] = e[i];
    else {
      if (live) req.nomem = 1;
      free(e[i].text);
    }
  }
}

/* The traceback of co without its header and without the frame of the
** goroutine's body (sched.c's gobody), as a malloc'd string with a head
** line; NULL without memory. Uses L's stack; may run finalizers. */
static char *describe (lua_State *L, lua_Integer id, const char *status,
                       lua_State *co, int level) {
  static const char hdr[] = "stack traceback:";
  static const char body[] = "\n\t[C]: in ?";
  char head[96], *text;
  const char *tb;
  size_t len, hlen;
  luaL_traceback(L, co, NULL, level);
  tb = lua_tolstring(L, -1, &len);
  if (len >= sizeof(hdr) - 1 && memcmp(tb, hdr, sizeof(hdr) - 1) == 0) {
    tb += sizeof(hdr) - 1;
    len -= sizeof(hdr) - 1;
  }
  if (len >= sizeof(body) - 1 &&
      memcmp(tb + len - (sizeof(body) - 1), body, sizeof(body) - 1) == 0)
    len -= sizeof(body) - 1;
  hlen = (size_t)snprintf(head, sizeof(head), "goroutine %lld [%s]:",
                          (long long)id, status);
  text = (char *)malloc(hlen + len + 2);
  if (text != NULL) {
    memcpy(text, head, hlen);
    memcpy(text + hlen, tb, len);
    text[hlen + len] = '\n';
    text[hlen + len + 1] = '\0';
  }
  lua_pop(L, 1);
  return text;
}

static int cmpptr (const void *a, const void *b) {
  uintptr_t x = (uintptr_t)*(void *const *)a, y = (uintptr_t)*(void *const *)b;
  return (x > y) - (x < y);
}

/* A collection of one state's entries (lcollect's, in protected mode). */
typedef struct collection {
  gr_state *S;
  lua_State *self;      /* the coroutine that dumps (its frames of
                           g.stack are left out), or NULL */
  gr_g **gs;            /* snapshot: the goroutines, then the run queue */
  entry *e;             /* n entries, each text malloc'd */
  int n;
} collection;

/* Fills the collection at index 1 (a light userdata) with the entries of
** its state's goroutines, on that state's thread. Raises for memory; the
** caller frees what it holds either way. */
static int lcollect (lua_State *L) {
  collection *c = (collection *)lua_touserdata(L, 1);
  gr_state *S = c->S;
  gr_g *g, **runq;
  int n = 0, nrun = 0, i, k = 0;
  for (g = S->all; g != NULL; g = g->allnext) n += !g->leaked;
  for (g = S->runhead; g != NULL; g = g->runnext) nrun++;
  if (S->worker == NULL) n++;   /* a worker's main thread is no goroutine */
  c->gs = (gr_g **)malloc((size_t)(n + nrun + 1) * sizeof(gr_g *));
  c->e = (entry *)malloc((size_t)(n + 1) * sizeof(entry));
  if (c->gs == NULL || c->e == NULL) return luaL_error(L, "not enough memory");
  /* A snapshot: finalizers that the tracebacks run may spawn. */
  if (S->worker == NULL) c->gs[k++] = S->g1;
  for (g = S->all; g != NULL && k < n; g = g->allnext)
    if (!g->leaked) c->gs[k++] = g;   /* a leak is no goroutine */
  n = k;
  runq = c->gs + n;
  for (g = S->runhead, k = 0; g != NULL && k < nrun; g = g->runnext)
    runq[k++] = g;
  nrun = k;
  qsort(runq, (size_t)nrun, sizeof(gr_g *), cmpptr);
  for (i = 0; i < n; i++) {
    const char *status;
    /* The dumping goroutine (maybe through a plain coroutine it resumed:
    ** then the stack shown is that coroutine's, where g.stack was
    ** called). */
    int running = c->self != NULL && c->gs[i] == S->current, pinned;
    lua_State *co;
    g = c->gs[i];
    if (g->leaked) continue;   /* found by a finalizer meanwhile */
    co = running ? c->self : g->co;
    /* A weak goroutine's coroutine is read only while it is pushed: the
    ** collector may free it otherwise (leak.c). */
    if ((pinned = running ? 0 : gr_sched_pinco(L, g)) < 0) continue;
    if (running) status = "running";
    else if (g->reason == GR_WNONE ||
             bsearch(&g, runq, (size_t)nrun, sizeof(gr_g *), cmpptr))
      status = "runnable";
    else status = gr_waitreasons[g->reason];
    /* Levels of the thread this runs on: this function, and for the
    ** dumping coroutine g.stack. */
    c->e[c->n].id = g->id;
    c->e[c->n].text = describe(L, g->id, status, co,
                               co != L ? 0 : running ? 2 : 1);
    if (c->e[c->n].text == NULL) return luaL_error(L, "not enough memory");
    c->n++;
    lua_pop(L, pinned);
  }
  return 0;
}

/* Collects the entries of S (see collection) and adds them to request gen;
** returns 0, or -1 if one was lost for memory. */
static int collect (lua_State *L, gr_state *S, lua_State *self, unsigned gen) {
  collection c;
  int ok, i;
  c.S = S;
  c.self = self;
  c.gs = NULL;
  c.e = NULL;
  c.n = 0;
  ok = lua_checkstack(L, 4);
  if (ok) {
    lua_pushcfunction(L, lcollect);
    lua_pushlightuserdata(L, &c);
    ok = lua_pcall(L, 1, 0, 0) == LUA_OK;
    if (!ok) lua_pop(L, 1);
  }
  free(c.gs);
  gr_lock_lock(&req.lock);
  if (ok) addentries(req.gen == gen, c.e, c.n);
  else {
    for (i = 0; i < c.n; i++) free(c.e[i].text);
    if (req.gen == gen) req.nomem = 1;
  }
  gr_lock_unlock(&req.lock);
  free(c.e);
  return ok ? 0 : -1;
}

/* S->ondump: answers request gen, on S's thread at a scheduling point. */
static void answer (lua_State *L, gr_state *S, unsigned gen) {
  int live, i;
  gr_lock_lock(&req.lock);
  live = req.gen == gen;
  gr_lock_unlock(&req.lock);
  if (!live) return;
  collect(L, S, NULL, gen);   /* the Lua API: outside the lock */
  gr_lock_lock(&req.lock);
  if (req.gen == gen)
    for (i = 0; i < req.nasked; i++)
      if (req.asked[i] == S) {
        req.asked[i] = NULL;
        req.pending--;
        uv_cond_signal(&req.cond);
      }
  gr_lock_unlock(&req.lock);
}

typedef struct askctx {
  gr_state *self;
  unsigned gen;
  uint64_t slice;       /* the longest slice of the states asked */
} askctx;

/* gr_sched_eachstate's: asks every state but the dumping one. */
static void ask (gr_state *S, void *ud) {
  askctx *a = (askctx *)ud;
  uint64_t slice;
  if (S == a->self) return;
  gr_lock_lock(&req.lock);
  if (req.nasked == req.askcap) {
    int cap = req.askcap ? 2 * req.askcap : 16;
    gr_state **na = (gr_state **)realloc(req.asked,
                                         (size_t)cap * sizeof(gr_state *));
    if (na == NULL) {
      req.nomem = 1;
      gr_lock_unlock(&req.lock);
      return;
    }
    req.asked = na;
    req.askcap = cap;
  }
  req.asked[req.nasked++] = S;
  req.pending++;
  gr_lock_unlock(&req.lock);
  slice = atomic_load_explicit(&S->slice, memory_order_relaxed);
  if (slice > a->slice) a->slice = slice;
  gr_sched_askdump(S, a->gen);
}

/* gr_sched_eachstate's: lists the running goroutine of each state that
** did not answer (req.asked, read after the dump stopped taking answers:
** a state that closed meanwhile is not found). */
static void unanswered (gr_state *S, void *ud) {
  int i;
  (void)ud;
  for (i = 0; i < req.nasked; i++)
    if (req.asked[i] == S) {
      lua_Integer id = gr_sched_runningid(S);
      entry e;
      char text[160];
      if (id == 0) return;   /* between goroutines: it has none running */
      snprintf(text, sizeof(text), "goroutine %lld [running]:\n\tgoroutine "
               "running on other thread; stack unavailable\n",
               (long long)id);
      e.id = id;
      e.text = strdup(text);
      if (e.text == NULL) return;
      gr_lock_lock(&req.lock);
      addentries(1, &e, 1);
      gr_lock_unlock(&req.lock);
      return;
    }
}

/* gr_sched_eachstate's: sets *ud when S was asked, has not answered and
** sleeps in its loop (S->idle): the ask woke it, it answers next. */
static void idleunanswered (gr_state *S, void *ud) {
  int i, asked = 0;
  gr_lock_lock(&req.lock);
  for (i = 0; i < req.nasked; i++)
    if (req.asked[i] == S) asked = 1;
  gr_lock_unlock(&req.lock);
  if (asked && atomic_load(&S->idle)) *(int *)ud = 1;
}

static int cmpentry (const void *a, const void *b) {
  lua_Integer x = ((const entry *)a)->id, y = ((const entry *)b)->id;
  return (x > y) - (x < y);
}

/* The dump of the n entries at index 1 (a light userdata), as a string. */
static int lbuild (lua_State *L) {
  entry *e = (entry *)lua_touserdata(L, 1);
  int i, n = (int)lua_tointeger(L, 2);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (i = 0; i < n; i++) {
    if (i > 0) luaL_addchar(&b, '\n');
    luaL_addstring(&b, e[i].text);
  }
  luaL_pushresult(&b);
  return 1;
}

/* Gathers the dump of every state into *e (n entries, sorted by id,
** each text malloc'd, as the array); returns n. S and L: the dumping
** goroutine's state and thread, or NULL (the monitor, at SIGQUIT), which
** then waits for the default slice. Sets *nomem if an entry was lost.
** Raises nothing. */
static int dumpall (lua_State *L, gr_state *S, entry **e, int *nomem) {
  askctx a;
  int n, expected = 0;
  uint64_t start, deadline;
  uv_once(&reqonce, initreq);
  /* One dump at a time; meanwhile answer the one under way, if it asks
  ** this state. */
  while (!atomic_compare_exchange_strong(&dumping, &expected, 1)) {
    expected = 0;
    if (S != NULL) gr_sched_takeremote(L, S);
    uv_sleep(1);
  }
  gr_lock_lock(&req.lock);
  req.lastgen = req.lastgen + 1 ? req.lastgen + 1 : 1;
  req.gen = req.lastgen;
  req.nasked = req.pending = req.n = req.nomem = 0;
  gr_lock_unlock(&req.lock);
  a.self = S;
  a.gen = req.lastgen;
  a.slice = S != NULL ? atomic_load_explicit(&S->slice, memory_order_relaxed)
                      : DEFAULTSLICE;
  gr_sched_eachstate(ask, &a);
  if (S != NULL) collect(L, S, L, a.gen);
  if (a.slice > MAXWAIT) a.slice = MAXWAIT;
  start = uv_hrtime();
  deadline = start + a.slice;
  gr_lock_lock(&req.lock);
  for (;;) {
    uint64_t now = uv_hrtime();
    int idle = 0;
    if (req.pending == 0 || now >= start + MAXWAIT) break;
    if (now < deadline) {
      gr_lock_timedwait(&req.lock, &req.cond, deadline - now);
      continue;
    }
    /* A slice is up. A state that sleeps in its loop answers once its
    ** thread gets the CPU (late on a loaded machine): wait on for those,
    ** slice after slice. */
    gr_lock_unlock(&req.lock);
    gr_sched_eachstate(idleunanswered, &idle);
    gr_lock_lock(&req.lock);
    if (!idle) break;
    deadline = now + a.slice;
  }
  req.gen = 0;   /* late answers are dropped from here on */
  gr_lock_unlock(&req.lock);
  if (req.pending > 0) gr_sched_eachstate(unanswered, NULL);
  free(req.asked);   /* the module may be unloaded before the next dump */
  req.asked = NULL;
  req.nasked = req.askcap = 0;
  qsort(req.e, (size_t)req.n, sizeof(entry), cmpentry);
  *e = req.e;
  n = req.n;
  *nomem = req.nomem;
  req.e = NULL;
  req.n = req.cap = 0;
  atomic_store(&dumping, 0);
  return n;
}

/* g.stack() */
static int lstack (lua_State *L) {
  gr_state *S = gr_getstate(L);
  entry *e;
  int i, n, ok, nomem;
  n = dumpall(L, S, &e, &nomem);
  /* The result goes into a Lua string, which may raise: in protected
  ** mode, so that the entries are freed either way. */
  lua_pushcfunction(L, lbuild);
  lua_pushlightuserdata(L, e);
  lua_pushinteger(L, n);
  ok = lua_pcall(L, 2, 1, 0) == LUA_OK;
  for (i = 0; i < n; i++) free(e[i].text);
  free(e);
  if (!ok) return lua_error(L);
  if (nomem) return luaL_error(L, "not enough memory");
  return 1;
}


/* --- SIGQUIT --------------------------------------------------------------- */

/* Writes all of s to fd 2, as the write(2) calls allow. */
static void writeerr (const char *s, size_t len) {
  while (len > 0) {
    ssize_t w = write(2, s, len);
    if (w <= 0) return;
    s += w;
    len -= (size_t)w;
  }
}

/* The monitor's answer to SIGQUIT, as Go's: the dump on stderr, then exit
** status 2 at once (no atexit handler runs: other threads still run). */
static void quit (void) {
  entry *e;
  int i, n, nomem;
  static const char head[] = "SIGQUIT: quit\n\n";
  n = dumpall(NULL, NULL, &e, &nomem);
  writeerr(head, sizeof(head) - 1);
  for (i = 0; i < n; i++) {
    if (i > 0) writeerr("\n", 1);
    writeerr(e[i].text, strlen(e[i].text));
  }
  if (nomem) writeerr("(some goroutines left out: not enough memory)\n", 47);
  fflush(NULL);   /* what the program printed before */
  _exit(2);
}

static void onsigquit (int sig) {
  (void)sig;
  gr_sched_quitsignal();
}

static atomic_int sigquiton = 1;
static uv_once_t sigonce = UV_ONCE_INIT;

/* The embedding API's: whether SIGQUIT dumps and exits (before gr_open). */
void gr_set_sigquit (int on) {
  atomic_store(&sigquiton, on != 0);
}

/* Installs the SIGQUIT dump, once per process, unless the host turned it
** off or installed a handler of its own first (ignored or default, it is
** taken over, as Go does). */
static void installquit (void) {
  struct sigaction sa, old;
  if (!atomic_load(&sigquiton)) return;
  if (sigaction(SIGQUIT, NULL, &old) != 0 || (old.sa_flags & SA_SIGINFO) ||
      (old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN))
    return;
  gr_sched_setquit(quit);
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = onsigquit;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGQUIT, &sa, NULL);
}

static const luaL_Reg funcs[] = {
  {"stack", lstack},
  {NULL, NULL}
};

void gr_stack_open (lua_State *L) {
  gr_state_get(L)->ondump = answer;
  uv_once(&sigonce, installquit);
  gr_state_setfuncs(L, funcs);
}
