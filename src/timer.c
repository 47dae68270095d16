/*
** timer.c -- time.sleep, after, tick, timer, ticker, after_func, now and
** since, on the owning state's libuv loop.
**
** All timers of a state live in one binary heap ordered by (when, seq);
** the scheduler fires the expired ones between goroutine runs and, when it
** has nothing to run, arms the single uv_timer_t at the earliest deadline
** and sleeps in uv_run. So thousands of timers cost one libuv handle.
**
** Invariants (owner thread only; timers never cross threads):
**   t->idx is t's position in S->timers, or NOHEAP when t is inactive;
**   a timer is owned by its Lua handle (t->ud != 0) or, when it has none,
**   by the heap: an inactive timer without handle is freed at once;
**   a GR_TSEND timer holds a ref on t->c; a GR_TFUNC timer owns the
**   registry ref t->fref, released where the timer is freed.
** Deadlines are uv_hrtime() nanoseconds (monotonic).
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "chan.h"
#include "state.h"
#include "timer.h"

#define NOHEAP ((size_t)-1)

enum { GR_TSLEEP, GR_TSEND, GR_TFUNC, GR_TCALL };

struct gr_timer {
  uint64_t when;        /* deadline, uv_hrtime() ns */
  uint64_t seq;         /* insertion order: ties fire in FIFO order */
  uint64_t period;      /* ns between ticks; 0 for a one-shot timer */
  size_t idx;           /* heap position, NOHEAP when inactive */
  int kind;             /* GR_T* */
  int ud;               /* a Lua handle owns this timer */
  int firing;           /* GR_TFUNC: fire() runs it; a collected handle
                           leaves the free to fire() */
  gr_state *S;
  gr_g *g;              /* GR_TSLEEP: the sleeper */
  gr_chan *c;           /* GR_TSEND: ref held */
  int fref;             /* GR_TFUNC: registry ref of the function */
  void (*call) (gr_state *S, void *arg);  /* GR_TCALL: called when it
                           fires, or with S NULL when dropped unfired */
  void *arg;
};

typedef struct gr_timerheap {
  gr_timer **a;
  size_t n, cap;
  uint64_t seq;
} gr_timerheap;

/* Lua handle of a timer or ticker: one user value, the channel t.c. */
typedef struct gr_timerud {
  gr_timer *t;          /* NULL once collected */
} gr_timerud;

#define TIMERMT "goroutines.timer"


/* --- the heap ------------------------------------------------------------- */

static int less (gr_timer *a, gr_timer *b) {
  return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static void place (gr_timerheap *h, gr_timer *t, size_t i) {
  h->a[i] = t;
  t->idx = i;
}

static void siftup (gr_timerheap *h, size_t i) {
  gr_timer *t = h->a[i];
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (!less(t, h->a[p])) break;
    place(h, h->a[p], i);
    i = p;
  }
  place(h, t, i);
}

static void siftdown (gr_timerheap *h, size_t i) {
  gr_timer *t = h->a[i];
  for (;;) {
    size_t l = 2 * i + 1, m = i;
    gr_timer *mt = t;
    if (l < h->n && less(h->a[l], mt)) { m = l; mt = h->a[l]; }
    if (l + 1 < h->n && less(h->a[l + 1], mt)) { m = l + 1; mt = h->a[l + 1]; }
    if (m == i) break;
    place(h, mt, i);
    i = m;
  }
  place(h, t, i);
}

/* Returns 0, or -1 without memory (t stays inactive). */
static int heapadd (gr_timerheap *h, gr_timer *t) {
  if (h->n == h->cap) {
    size_t cap = h->cap ? h->cap * 2 : 64;
    gr_timer **a = (gr_timer **)realloc(h->a, cap * sizeof(*a));
    if (a == NULL) return -1;
    h->a = a;
    h->cap = cap;
  }
  t->seq = h->seq++;
  h->a[h->n] = t;
  t->idx = h->n++;
  siftup(h, t->idx);
  return 0;
}

static void heapremove (gr_timerheap *h, gr_timer *t) {
  size_t i = t->idx;
  GR_ASSERT(i != NOHEAP && h->a[i] == t);
  t->idx = NOHEAP;
  if (--h->n == i) return;
  place(h, h->a[h->n], i);   /* the last entry fills the hole */
  siftdown(h, i);
  siftup(h, i);
}


/* --- timers ------------------------------------------------------------------ */

static uint64_t tons (double d) {
  if (!(d > 0)) return 0;   /* also NaN */
  if (d > 1e9) d = 1e9;     /* about 31 years: far enough */
  return (uint64_t)(d * 1e9);
}

/* The period of a ticker of d > 0 seconds: at least 1 ns, since 0 would
** make it a one-shot timer. */
static uint64_t toperiod (double d) {
  uint64_t p = tons(d);
  return p > 0 ? p : 1;
}

/* Frees an inactive timer. L is NULL at state close. */
static void freetimer (lua_State *L, gr_timer *t) {
  GR_ASSERT(t->idx == NOHEAP);
  if (t->call) t->call(NULL, t->arg);
  if (t->c) gr_chan_release(L, t->c);
  if (t->fref != LUA_NOREF && L != NULL)
    luaL_unref(L, LUA_REGISTRYINDEX, t->fref);
  free(t);
}

static gr_timer *newtimer (lua_State *L, gr_state *S, int kind) {
  gr_timer *t = (gr_timer *)calloc(1, sizeof(*t));
  if (t == NULL) luaL_error(L, "not enough memory");
  t->idx = NOHEAP;
  t->kind = kind;
  t->S = S;
  t->fref = LUA_NOREF;
  return t;
}

/* Activates t to fire d seconds from now. */
static void start (lua_State *L, gr_state *S, gr_timer *t, double d) {
  t->when = uv_hrtime() + tons(d);
  if (heapadd(S->timers, t) != 0) {
    if (!t->ud) freetimer(L, t);
    luaL_error(L, "not enough memory");
  }
}

/* Calls call(S, arg) on S's thread d seconds from now; if S closes first,
** calls call(NULL, arg) instead. */
void gr_timer_call (lua_State *L, gr_state *S, double d,
                    void (*call) (gr_state *S, void *arg), void *arg) {
  gr_timer *t = newtimer(L, S, GR_TCALL);
  t->call = call;
  t->arg = arg;
  start(L, S, t, d);
}

int gr_timer_pending (gr_state *S) {
  return S->timers->n > 0;
}

/* Fires one expired timer, already out of the heap. */
static void fire (lua_State *L, gr_state *S, gr_timer *t, uint64_t now) {
  gr_value v;
  switch (t->kind) {
    case GR_TSLEEP: {
      gr_g *g = t->g;
      g->sleep = NULL;
      free(t);
      gr_sched_ready(S, g);
      return;
    }
    case GR_TSEND:
      /* A handle-less timer whose channel nobody else holds is dead. */
      if (!t->ud && atomic_load(&t->c->refs) == 1) break;
      gr_value_number(&v, (lua_Number)now / 1e9);
      gr_chan_trysend(S, t->c, &v);   /* a full channel drops the tick */
      if (t->period) {
        /* Next tick at the first multiple of period after now. */
        t->when += t->period * (1 + (now - t->when) / t->period);
        if (heapadd(S->timers, t) == 0) return;
      }
      break;
    case GR_TFUNC:
      /* Spawning allocates: a collection may finalize the handle now,
      ** which sees t->firing and leaves t to us. */
      t->firing = 1;
      lua_rawgeti(L, LUA_REGISTRYINDEX, t->fref);
      gr_sched_spawn(L, S, 0, 0);
      t->firing = 0;
      if (!t->ud && t->idx == NOHEAP) freetimer(L, t);
      return;
    case GR_TCALL: {
      void (*call) (gr_state *, void *) = t->call;
      t->call = NULL;
      call(S, t->arg);
      break;
    }
  }
  if (!t->ud) freetimer(L, t);
}

/* Fires every timer whose deadline has passed. Owner thread only. */
void gr_timer_fire (lua_State *L, gr_state *S) {
  gr_timerheap *h = S->timers;
  uint64_t now;
  if (h->n == 0) return;
  now = uv_hrtime();
  while (h->n > 0 && h->a[0]->when <= now) {
    gr_timer *t = h->a[0];
    heapremove(h, t);
    fire(L, S, t, now);
  }
}

/* The scheduler fires what expired once uv_run returns. libuv runs due
** timers before it polls, so with UV_RUN_ONCE a timer that was due on
** entry would leave the poll without a timeout (the async handle keeps the
** loop alive): uv_stop makes that poll return at once. */
static void ontimer (uv_timer_t *handle) {
  uv_stop(handle->loop);
}

/* Arms the libuv timer at the earliest deadline before the scheduler
** sleeps in uv_run. */
void gr_timer_arm (gr_state *S) {
  gr_timerheap *h = S->timers;
  if (h->n > 0) {
    uint64_t now = uv_hrtime(), when = h->a[0]->when;
    uint64_t ms = when > now ? (when - now + 999999) / 1000000 : 0;
    uv_update_time(&S->loop);
    uv_timer_start(&S->uvtimer, ontimer, ms, 0);
  }
  else
    uv_timer_stop(&S->uvtimer);
}

int gr_timer_init (gr_state *S) {
  S->timers = (gr_timerheap *)calloc(1, sizeof(gr_timerheap));
  if (S->timers == NULL) return -1;
  return uv_timer_init(&S->loop, &S->uvtimer);
}

/* At state close: frees the timers that no handle owns, and detaches the
** others (their handles' __gc frees them). */
void gr_timer_closeall (gr_state *S) {
  gr_timerheap *h = S->timers;
  size_t i;
  if (h == NULL) return;
  for (i = 0; i < h->n; i++) {
    gr_timer *t = h->a[i];
    t->idx = NOHEAP;
    t->S = NULL;
    if (!t->ud) {
      t->fref = LUA_NOREF;
      freetimer(NULL, t);
    }
  }
  free(h->a);
  free(h);
  S->timers = NULL;
}


/* --- Lua functions: sleep, after, tick, now, since --------------------------- */

/* luaL_argerror, naming the function fname. Lua finds the name of a
** function called through pcall in package.loaded, one level deep: the
** functions of the g.time subtable would be '?'. */
static int argerror (lua_State *L, int arg, const char *fname,
                     const char *msg) {
  lua_Debug ar;
  if (lua_getstack(L, 0, &ar) && lua_getinfo(L, "n", &ar) &&
      ar.namewhat != NULL && strcmp(ar.namewhat, "method") == 0)
    arg--;   /* as luaL_argerror: self is not counted */
  return luaL_error(L, "bad argument #%d to '%s' (%s)", arg, fname, msg);
}

/* luaL_typeerror with argerror's name. */
static int typeerror (lua_State *L, int arg, const char *fname,
                      const char *tname) {
  const char *typearg;
  if (luaL_getmetafield(L, arg, "__name") == LUA_TSTRING)
    typearg = lua_tostring(L, -1);
  else if (lua_type(L, arg) == LUA_TLIGHTUSERDATA)
    typearg = "light userdata";
  else
    typearg = luaL_typename(L, arg);
  return argerror(L, arg, fname,
                  lua_pushfstring(L, "%s expected, got %s", tname, typearg));
}

static double checknum (lua_State *L, int arg, const char *fname) {
  int isnum;
  lua_Number d = lua_tonumberx(L, arg, &isnum);
  if (!isnum) typeerror(L, arg, fname, "number");
  return (double)d;
}

static double checkperiod (lua_State *L, int arg, const char *fname) {
  double d = checknum(L, arg, fname);
  if (!(d > 0)) argerror(L, arg, fname, "non-positive interval");
  return d;
}

static int sleep_k (lua_State *L, int status, lua_KContext ctx) {
  gr_state *S = gr_getstate(L);
  gr_g *g = S->current;
  (void)ctx;
  if (status < 0) {   /* an in-place sleep never deadlocks: an error */
    if (g->sleep) {
      heapremove(S->timers, g->sleep);
      free(g->sleep);
      g->sleep = NULL;
    }
    gr_sched_raise(L, S, status);
  }
  return 0;
}

static int lsleep (lua_State *L) {
  gr_state *S = gr_getstate(L);
  double d = checknum(L, 1, "sleep");
  int mode;
  gr_timer *t;
  gr_g *g = S->current;
  if (!(d > 0)) return 0;
  mode = gr_sched_blockmode(L, S);
  if (mode == GR_BLOCK_NO) return gr_sched_cannotblock(L, GR_WSLEEP);
  t = newtimer(L, S, GR_TSLEEP);
  t->g = g;
  start(L, S, t, d);
  g->sleep = t;
  gr_sched_prepark(g, mode, GR_WSLEEP, NULL);
  return gr_sched_park(L, S, g, 0, sleep_k);
}

/* A new channel of capacity 1 for a timer: its receive-only handle is
** pushed, and t holds a ref. */
static void timerchan (lua_State *L, gr_timer *t) {
  gr_chan *c = gr_chan_new(1);
  if (c == NULL) luaL_error(L, "not enough memory");
  gr_chan_pushud(L, c, GR_DIRRECV);
  t->c = c;   /* the creation ref becomes the timer's */
}

/* Pushes the receive-only channel of a new timer without a handle, which
** sends on it d seconds from now, and every period after (0: once). */
static int pushtimerchan (lua_State *L, double d, double period) {
  gr_state *S = gr_getstate(L);
  gr_timer *t = newtimer(L, S, GR_TSEND);
  gr_chan *c = gr_chan_new(1);
  if (c == NULL) {
    free(t);
    return luaL_error(L, "not enough memory");
  }
  t->c = c;
  t->period = period > 0 ? toperiod(period) : 0;
  start(L, S, t, d);           /* frees t (and c) on failure */
  gr_chan_pushud(L, c, GR_DIRRECV);
  return 1;
}

static int lafter (lua_State *L) {
  return pushtimerchan(L, checknum(L, 1, "after"), 0);
}

static int ltick (lua_State *L) {
  double d = checkperiod(L, 1, "tick");
  return pushtimerchan(L, d, d);
}

static int lnow (lua_State *L) {
  lua_pushnumber(L, (lua_Number)uv_hrtime() / 1e9);
  return 1;
}

static int lsince (lua_State *L) {
  double t = checknum(L, 1, "since");
  lua_pushnumber(L, (lua_Number)uv_hrtime() / 1e9 - t);
  return 1;
}


/* --- timer and ticker handles ------------------------------------------------ */

/* Pushes a handle owning t, with t's channel (if any) as its user value. */
static gr_timerud *pushhandle (lua_State *L, gr_timer *t) {
  gr_timerud *u = (gr_timerud *)lua_newuserdatauv(L, sizeof(*u), 1);
  u->t = t;
  t->ud = 1;
  luaL_setmetatable(L, TIMERMT);
  return u;
}

static gr_timer *checktimer (lua_State *L) {
  gr_timerud *u = (gr_timerud *)luaL_checkudata(L, 1, TIMERMT);
  if (u->t == NULL || u->t->S == NULL)
    luaL_error(L, "timer used after its state was closed");
  return u->t;
}

/* Empties the timer's channel: after stop or reset no stale value can be
** received (Go 1.23 semantics). Returns how many values it discarded. */
static int drain (gr_state *S, gr_timer *t) {
  gr_value v;
  int n = 0;
  if (t->c)
    while (gr_chan_tryrecv(S, t->c, &v)) {
      gr_value_setnil(&v);
      n++;
    }
  return n;
}

static int newhandle (lua_State *L, int kind, double d, double period) {
  gr_state *S = gr_getstate(L);
  gr_timer *t = newtimer(L, S, kind);
  pushhandle(L, t);          /* owns t from here on, even on error */
  if (kind == GR_TSEND) {
    timerchan(L, t);
    lua_setiuservalue(L, -2, 1);
  }
  else {
    lua_pushvalue(L, 2);
    t->fref = luaL_ref(L, LUA_REGISTRYINDEX);  /* released in freetimer */
  }
  t->period = period > 0 ? toperiod(period) : 0;
  start(L, S, t, d);
  return 1;
}

static int ltimer (lua_State *L) {
  return newhandle(L, GR_TSEND, checknum(L, 1, "timer"), 0);
}

static int lticker (lua_State *L) {
  double d = checkperiod(L, 1, "ticker");
  return newhandle(L, GR_TSEND, d, d);
}

static int lafterfunc (lua_State *L) {
  double d = checknum(L, 1, "after_func");
  if (lua_type(L, 2) != LUA_TFUNCTION) {
    if (luaL_getmetafield(L, 2, "__call") == LUA_TNIL)
      return typeerror(L, 2, "after_func", "function");
    lua_pop(L, 1);
  }
  return newhandle(L, GR_TFUNC, d, 0);
}

/* t:stop() -> whether the call stopped the timer: it was active, or it
** had fired and nobody had received the value, which is discarded (Go
** 1.23: false only once the value was received, or after a stop). */
static int ltimer_stop (lua_State *L) {
  gr_state *S = gr_getstate(L);
  gr_timer *t = checktimer(L);
  int active = t->idx != NOHEAP;
  if (active) heapremove(S->timers, t);
  if (drain(S, t) > 0) active = 1;
  lua_pushboolean(L, active);
  return 1;
}

/* t:reset(d) -> as stop, then arms the timer d seconds from now */
static int ltimer_reset (lua_State *L) {
  gr_state *S = gr_getstate(L);
  gr_timer *t = checktimer(L);
  int active = t->idx != NOHEAP;
  double d = t->period ? checkperiod(L, 2, "reset")
                       : checknum(L, 2, "reset");
  if (active) heapremove(S->timers, t);
  if (drain(S, t) > 0) active = 1;
  if (t->period) t->period = toperiod(d);
  start(L, S, t, d);
  lua_pushboolean(L, active);
  return 1;
}

static int ltimer_index (lua_State *L) {
  const char *k = lua_tostring(L, 2);
  if (k != NULL && k[0] == 'c' && k[1] == '\0') {
    luaL_checkudata(L, 1, TIMERMT);
    lua_getiuservalue(L, 1, 1);
    return 1;
  }
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(GR_NUPVALUES + 1));
  return 1;
}

/* A collected handle stops a timer that sends on its channel only when
** nobody holds the channel (checked when it fires); an after_func timer
** runs on, as in Go. The heap owns the timer from then on. */
static int ltimer_gc (lua_State *L) {
  gr_timerud *u = (gr_timerud *)lua_touserdata(L, 1);
  gr_timer *t = u->t;
  if (t == NULL) return 0;
  u->t = NULL;
  t->ud = 0;
  if (t->idx == NOHEAP && !t->firing) freetimer(L, t);
  return 0;
}

static int ltimer_tostring (lua_State *L) {
  lua_pushfstring(L, "goroutines.timer: %p", lua_touserdata(L, 1));
  return 1;
}

static const luaL_Reg timermethods[] = {
  {"stop", ltimer_stop},
  {"reset", ltimer_reset},
  {NULL, NULL}
};

static const luaL_Reg funcs[] = {
  {"sleep", lsleep},
  {"after", lafter},
  {"tick", ltick},
  {"timer", ltimer},
  {"ticker", lticker},
  {"after_func", lafterfunc},
  {"now", lnow},
  {"since", lsince},
  {NULL, NULL}
};

static void setconst (lua_State *L, const char *name, double v) {
  lua_pushnumber(L, v);
  lua_setfield(L, -2, name);
}

/* Registers g.time in the module table at the top of L. */
void gr_timer_open (lua_State *L) {
  luaL_newmetatable(L, TIMERMT);
  lua_pushcfunction(L, ltimer_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, ltimer_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushlightuserdata(L, gr_state_get(L));
  luaL_getmetatable(L, "goroutines.chan");
  luaL_getmetatable(L, "goroutines.case");
  lua_newtable(L);                  /* methods, upvalue 4 of __index */
  lua_pushvalue(L, -4);
  lua_pushvalue(L, -4);
  lua_pushvalue(L, -4);
  luaL_setfuncs(L, timermethods, GR_NUPVALUES);
  lua_pushcclosure(L, ltimer_index, GR_NUPVALUES + 1);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lua_newtable(L);
  gr_state_setfuncs(L, funcs);
  setconst(L, "nanosecond", 1e-9);
  setconst(L, "microsecond", 1e-6);
  setconst(L, "millisecond", 1e-3);
  setconst(L, "second", 1);
  setconst(L, "minute", 60);
  setconst(L, "hour", 3600);
  lua_setfield(L, -2, "time");
}
