/*
** gsignal.c -- g.signal: notify(ch, names...) and stop(ch), after Go's
** os/signal, with a uv_signal_t per signal on the state's loop.
**
** A signal's name is sent on each channel notified of it without
** blocking: a full (or closed) channel misses it, as with Go's
** signal.Notify. The sends run on a Lua thread of the module's own (the
** record's user value), inside a protected call, from the loop's signal
** callback: that thread's stack is never in use by anything else, and a
** raise (memory) loses one notification, never the state.
**
** Invariants (owner thread only):
**   One watcher per signal number with at least one channel; it holds a
**     ref on each of its channels (dropped by stop or at the close) and
**     counts once in S->iowait while started: a signal may arrive from
**     outside, so a goroutine waiting for one is not deadlocked.
**   A watcher leaves the list when its handle is closed, and is freed by
**     the close callback.
**   The record (a userdata in the registry) is finalized before the
**     state's runtime (it is made later): its __gc stops every watcher.
** Lock order: none (channel locks only inside gr_chan_trysend).
*/
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "chan.h"
#include "gsignal.h"
#include "state.h"

static const struct { const char *name; int num; } signals[] = {
  {"SIGHUP", SIGHUP}, {"SIGINT", SIGINT}, {"SIGTERM", SIGTERM},
  {"SIGUSR1", SIGUSR1}, {"SIGUSR2", SIGUSR2}, {"SIGWINCH", SIGWINCH},
  {"SIGALRM", SIGALRM}, {"SIGCHLD", SIGCHLD}, {"SIGCONT", SIGCONT},
  {"SIGTSTP", SIGTSTP}, {"SIGTTIN", SIGTTIN}, {"SIGTTOU", SIGTTOU},
  {"SIGURG", SIGURG}, {"SIGXCPU", SIGXCPU}, {"SIGXFSZ", SIGXFSZ},
  {"SIGVTALRM", SIGVTALRM}, {"SIGPROF", SIGPROF}, {"SIGIO", SIGIO},
  {NULL, 0}
};

typedef struct sigrec sigrec;

typedef struct watcher {
  uv_signal_t h;        /* h.data: this */
  sigrec *rec;          /* the state's record */
  const char *name;     /* "SIGINT" (static) */
  int signum;
  struct watcher *next; /* in rec->list */
  int n, cap;           /* channels */
  gr_chan **chans;      /* each with a ref */
} watcher;

/* The signals of a state. */
struct sigrec {
  gr_state *S;          /* owning state (immutable) */
  lua_State *T;         /* the thread of the sends (anchored as the
                           userdata's user value) */
  watcher *list;        /* started watchers */
};

static const char reckey = 0;

static void onclosed (uv_handle_t *h) {
  watcher *w = (watcher *)h->data;
  free(w->chans);
  free(w);
}

/* Drops w's channels, stops it and takes it from the list. */
static void stopwatcher (lua_State *L, sigrec *rec, watcher *w) {
  watcher **p;
  int i;
  for (i = 0; i < w->n; i++) gr__chan_release(L, w->chans[i]);
  w->n = 0;
  for (p = &rec->list; *p != w; p = &(*p)->next) {}
  *p = w->next;
  rec->S->iowait--;
  uv_close((uv_handle_t *)&w->h, onclosed);
}

/* On T, protected: sends the name (2) on the channel (1, light). */
static int sendname (lua_State *T) {
  gr_chan *c = (gr_chan *)lua_touserdata(T, 1);
  sigrec *rec = (sigrec *)lua_touserdata(T, 3);
  gr_value v;
  gr_value_capture(T, 2, atomic_load_explicit(&c->shared,
                                              memory_order_acquire), &v);
  if (gr_chan_trysend(rec->S, c, &v) != GR_OK) gr_value_discard(T, &v);
  return 0;
}

static void onsignal (uv_signal_t *h, int signum) {
  watcher *w = (watcher *)h->data;
  lua_State *T = w->rec->T;
  int i;
  (void)signum;
  for (i = 0; i < w->n; i++) {
    lua_pushcfunction(T, sendname);
    lua_pushlightuserdata(T, w->chans[i]);
    lua_pushstring(T, w->name);
    lua_pushlightuserdata(T, w->rec);
    lua_pcall(T, 3, 0, 0);   /* an error (memory) drops this one */
    lua_settop(T, 0);
  }
}

static int rec_gc (lua_State *L) {
  sigrec *rec = (sigrec *)lua_touserdata(L, 1);
  while (rec->list) stopwatcher(L, rec, rec->list);
  return 0;
}

/* The record of L's state, made on first use. */
static sigrec *getrec (lua_State *L, gr_state *S) {
  sigrec *rec;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &reckey) == LUA_TUSERDATA) {
    rec = (sigrec *)lua_touserdata(L, -1);
    lua_pop(L, 1);
    return rec;
  }
  lua_pop(L, 1);
  rec = (sigrec *)lua_newuserdatauv(L, sizeof(*rec), 1);
  rec->S = S;
  rec->list = NULL;
  rec->T = lua_newthread(L);
  lua_setiuservalue(L, -2, 1);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, rec_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &reckey);
  return rec;
}

static int checksignal (lua_State *L, int i) {
  const char *name = luaL_checkstring(L, i);
  int k;
  for (k = 0; signals[k].name; k++)
    if (strcmp(name, signals[k].name) == 0) return k;
  return luaL_argerror(L, i,
                       lua_pushfstring(L, "unknown signal '%s'", name));
}

static watcher *find (sigrec *rec, int signum) {
  watcher *w;
  for (w = rec->list; w; w = w->next)
    if (w->signum == signum) return w;
  return NULL;
}

/* g.signal.notify(ch, name, ...): ch gets the name of each signal */
static int lnotify (lua_State *L) {
  gr_state *S = gr_getstate(L);
  gr_chan *c = gr_chan_checkdir(L, 1, GR_DIRSEND);
  int n = lua_gettop(L), i, j;
  sigrec *rec;
  luaL_argcheck(L, n >= 2, 2, "signal name expected");
  for (i = 2; i <= n; i++) checksignal(L, i);   /* all, before any change */
  rec = getrec(L, S);
  for (i = 2; i <= n; i++) {
    int k = checksignal(L, i);
    watcher *w = find(rec, signals[k].num);
    if (w == NULL) {
      int r;
      if ((w = (watcher *)calloc(1, sizeof(*w))) == NULL)
        return luaL_error(L, "not enough memory");
      uv_signal_init(&S->loop, &w->h);
      w->h.data = w;
      w->rec = rec;
      w->name = signals[k].name;
      w->signum = signals[k].num;
      if ((r = uv_signal_start(&w->h, onsignal, w->signum)) < 0) {
        uv_close((uv_handle_t *)&w->h, onclosed);
        return luaL_error(L, "signal %s: %s", w->name, uv_strerror(r));
      }
      w->next = rec->list;
      rec->list = w;
      S->iowait++;
    }
    for (j = 0; j < w->n && w->chans[j] != c; j++) {}
    if (j < w->n) continue;   /* notified already */
    if (w->n == w->cap) {
      int cap = w->cap ? 2 * w->cap : 2;
      gr_chan **a = (gr_chan **)realloc(w->chans, cap * sizeof(*a));
      if (a == NULL) {
        if (w->n == 0) stopwatcher(L, rec, w);
        return luaL_error(L, "not enough memory");
      }
      w->chans = a;
      w->cap = cap;
    }
    gr__chan_retain(c);
    w->chans[w->n++] = c;
  }
  return 0;
}

/* g.signal.stop(ch): ch gets no more signals */
static int lstop (lua_State *L) {
  gr_state *S = gr_getstate(L);
  gr_chan *c = gr_chan_checkud(L, 1)->c;
  sigrec *rec = getrec(L, S);
  watcher *w = rec->list, *next;
  for (; w; w = next) {
    int j;
    next = w->next;
    for (j = 0; j < w->n && w->chans[j] != c; j++) {}
    if (j == w->n) continue;
    w->chans[j] = w->chans[--w->n];
    gr__chan_release(L, c);
    if (w->n == 0) stopwatcher(L, rec, w);
  }
  return 0;
}

static const luaL_Reg funcs[] = {
  {"notify", lnotify},
  {"stop", lstop},
  {NULL, NULL}
};

void gr_signal_open (lua_State *L) {
  lua_newtable(L);
  gr_state_setfuncs(L, funcs);
  lua_setfield(L, -2, "signal");
}
