/*
** timer.c -- the timers under g.time (gtime.c, its Lua face) and context
** deadlines (gr_timer_callsafe): the heaps, the timer thread, and what
** firing a timer does.
**
** Timers live in binary heaps ordered by (when, seq):
** - one per state (S->timers), touched by its thread alone: sleeps,
**   after_funcs, and the timers whose channel no other state holds. The
**   scheduler fires the expired ones between goroutine runs and, when it
**   has nothing to run, arms the single uv_timer_t at the earliest deadline
**   and sleeps in uv_run. So thousands of timers cost one libuv handle.
** - one for the process (gt), fired by the timer thread on a libuv loop of
**   its own, so that they fire on time whatever their state is doing:
**   timers whose effect is safe on any thread, a send on a channel shared
**   with another state (a timer moves there when its channel becomes
**   shared: the channel hook, before any other state can see it) and
**   context deadlines. Started with the first such timer, stopped and
**   joined when the last state closes.
**
** Ownership:
**   GR_TSLEEP: the sleeping goroutine (g->sleep); freed when it fires.
**   GR_TFUNC: its handle (t->ud) or, once that is collected, its heap: an
**     inactive one without handle is freed at once, but not while fire()
**     runs it (t->firing: spawning may collect the handle).
**   GR_TSEND: its channel (c->hookarg), freed with it by the channel
**     hook (GR_CHAN_FREED), never before. The timer holds no ref on the
**     channel; a timer handle holds one. So a timer whose channel nobody
**     references (no handle in any state, no waiter, no pack) goes with
**     the channel, as in Go 1.23.
**   GR_TCALL: the process heap; freed after its call.
** Invariants:
**   t->idx is t's position in its heap, or NOHEAP when t is inactive;
**   t->global: t is the process heap's, touched only under gt.lock from
**   then on (set once, by the owner thread, under gt.lock);
**   gt.heap.cap >= gt.heap.n + gt.reserved (slots promised to the timers
**   of channels about to be shared: moving one cannot fail).
** Pending, for deadlock detection: a sleep, after_func or deadline wakes
**   something by itself; a channel timer only when a receiver waits on its
**   channel (Go 1.23 keeps channel timers in its heap only then). A state
**   that sleeps because of a pending timer of the process is in gt.watch
**   and is kicked when one of those fires or goes, to look again.
** State close: gr_timer_pause (before the goroutines are freed) makes the
**   timer thread finish the wake it may be making and fire nothing more
**   until gr_timer_closeall; so it never wakes a freed goroutine.
** Lock order (gr.h ranks them): gt.life < gt.lock < a context's mu <
**   chan locks < state rlock. Under gt.lock the timer thread sends on
**   channels and runs the deadline calls; none of them frees a timer's
**   channel, whose hook takes gt.lock.
** Deadlines are uv_hrtime() nanoseconds (monotonic).
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "chan.h"
#include "state.h"
#include "timer.h"
#include "trace.h"


typedef struct gr_timerheap {
  gr_timer **a;
  size_t n, cap;
  size_t nwake;         /* entries that wake something by themselves:
                           every kind but GR_TSEND */
  uint64_t seq;
  int paused;           /* a state's: its close paused the timer thread */
  int watching;         /* a state's: in gt.watch (gt.lock) */
} gr_timerheap;


/* The process's timer thread and heap. */
static struct {
  gr_lock life;         /* start and stop of the thread (GR_LTIMERLIFE) */
  int nstates;          /* protected by life: states alive */
  atomic_int running;   /* the thread runs; changed under life */
  uv_thread_t thread;   /* these four: the timer thread's, but for */
  uv_loop_t loop;       /* uv_async_send, and init and close under */
  uv_async_t async;     /* life while the thread does not run */
  uv_timer_t uvtimer;
  gr_lock lock;         /* GR_LTIMERS: held while the thread sends and
                           wakes, so a mutex that sleeps */
  /* protected by lock: */
  gr_timerheap heap;
  size_t reserved;      /* slots promised in heap (the invariant) */
  uint64_t armed;       /* deadline the thread wakes at; UINT64_MAX none */
  int paused;           /* states closing: fire nothing meanwhile */
  int stopping;         /* the last state closes: the thread ends */
  gr_state **watch;     /* states that may sleep because a timer here is
                           pending: told when that may have changed */
  size_t nwatch, capwatch;
} gt;

static uv_once_t gtonce = UV_ONCE_INIT;

static void gtinit (void) {
  if (gr_lock_init(&gt.life, GR_LTIMERLIFE) != 0 ||
      gr_lock_init(&gt.lock, GR_LTIMERS) != 0)
    abort();   /* at the first require: no timer can work without them */
}


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

/* Makes room for need entries. Returns 0, or -1 without memory. */
static int heapgrow (gr_timerheap *h, size_t need) {
  size_t cap = h->cap ? h->cap : 64;
  gr_timer **a;
  if (need <= h->cap) return 0;
  while (cap < need) cap *= 2;
  a = (gr_timer **)realloc(h->a, cap * sizeof(*a));
  if (a == NULL) return -1;
  h->a = a;
  h->cap = cap;
  return 0;
}

/* Returns 0, or -1 without memory (t stays inactive). */
static int heapadd (gr_timerheap *h, gr_timer *t) {
  if (h->n == h->cap && heapgrow(h, h->n + 1) != 0) return -1;
  t->seq = h->seq++;
  h->a[h->n] = t;
  t->idx = h->n++;
  if (t->kind != GR_TSEND) h->nwake++;
  siftup(h, t->idx);
  return 0;
}

static void heapremove (gr_timerheap *h, gr_timer *t) {
  size_t i = t->idx;
  GR_ASSERT(i != NOHEAP && h->a[i] == t);
  t->idx = NOHEAP;
  if (t->kind != GR_TSEND) h->nwake--;
  if (--h->n == i) return;
  place(h, h->a[h->n], i);   /* the last entry fills the hole */
  siftdown(h, i);
  siftup(h, i);
}

/* Whether a receiver waits on the channel of a GR_TSEND entry of h.
** Requires gt.lock for the process heap. */
static int anywaiter (gr_timerheap *h) {
  size_t i;
  for (i = 0; i < h->n; i++) {
    gr_chan *c = h->a[i]->c;
    int w;
    if (h->a[i]->kind != GR_TSEND) continue;
    gr_chan_lock(c);
    w = c->recvq.first != NULL;
    gr_chan_unlock(c);
    if (w) return 1;
  }
  return 0;
}


/* --- the timer thread ------------------------------------------------------ */

static uint64_t tons (double d) {
  if (!(d > 0)) return 0;   /* also NaN */
  if (d > 1e9) d = 1e9;     /* about 31 years: far enough */
  return (uint64_t)(d * 1e9);
}

/* The period of a ticker of d > 0 seconds: at least 1 ns, since 0 would
** make it a one-shot timer. */
uint64_t gr_timer_period (double d) {
  uint64_t p = tons(d);
  return p > 0 ? p : 1;
}

/* Sends the time on t's channel (a full channel drops it) and, for a
** ticker, schedules the next tick at the first multiple of the period
** after now. Requires t out of h, and h's lock for the process heap. */
static void sendtick (gr_state *cur, gr_timerheap *h, gr_timer *t,
                      uint64_t now) {
  gr_value v;
  /* The value is when the timer expired, however late it fires (as Go's
  ** sendTime, which subtracts the delay). */
  gr_value_number(&v, (lua_Number)t->when / 1e9);
  gr_chan_trysend(cur, t->c, &v);
  if (t->period) {
    t->when += t->period * (1 + (now - t->when) / t->period);
    heapadd(h, t);   /* cannot fail: t just left h */
  }
}

/* Requires gt.lock, t just added. Whether the thread must be woken to
** arm its timer earlier. */
static int wantkick (gr_timer *t) {
  GR_ASSERT(gr_lock_held(&gt.lock));
  if (t->idx != 0 || t->when >= gt.armed) return 0;
  gt.armed = t->when;
  return 1;
}

/* Requires gt.lock. Tells the watching states that the timers here
** changed: each looks again whether it can sleep or is deadlocked.
** rpending first, so that a state about to sleep either sees it or is
** seen asleep by the kick (the protocol of gr_sched_kick). */
static void gtkickall (void) {
  size_t i;
  GR_ASSERT(gr_lock_held(&gt.lock));
  for (i = 0; i < gt.nwatch; i++) {
    gr_state *S = gt.watch[i];
    S->timers->watching = 0;
    atomic_store(&S->rpending, 1);
    gr_sched_kick(S);
  }
  gt.nwatch = 0;
}

/* Requires gt.lock. Adds S to the watching states (when memory lacks, it
** is kicked now and then, as the timers of the process fire). */
static void gtwatch (gr_state *S) {
  GR_ASSERT(gr_lock_held(&gt.lock));
  if (S->timers->watching) return;
  if (gt.nwatch == gt.capwatch) {
    size_t cap = gt.capwatch ? 2 * gt.capwatch : 8;
    gr_state **a = (gr_state **)realloc(gt.watch, cap * sizeof(*a));
    if (a == NULL) return;
    gt.watch = a;
    gt.capwatch = cap;
  }
  gt.watch[gt.nwatch++] = S;
  S->timers->watching = 1;
}

static void gtunwatch (gr_state *S) {
  size_t i;
  if (!S->timers->watching) return;
  for (i = 0; i < gt.nwatch; i++)
    if (gt.watch[i] == S) {
      gt.watch[i] = gt.watch[--gt.nwatch];
      break;
    }
  S->timers->watching = 0;
}

static void gtfire (void);

static void gtontimer (uv_timer_t *handle) {
  (void)handle;
  gtfire();
}

static void gtonasync (uv_async_t *handle) {
  int stop;
  (void)handle;
  gr_lock_lock(&gt.lock);
  stop = gt.stopping;
  gr_lock_unlock(&gt.lock);
  if (stop) {   /* the loop ends once both are closed */
    uv_close((uv_handle_t *)&gt.async, NULL);
    uv_close((uv_handle_t *)&gt.uvtimer, NULL);
    return;
  }
  gtfire();
}

/* Timer thread: fires what expired, under gt.lock (so that stop and
** reset see a timer either pending or fired, and a closing state sees no
** wake in flight), then arms the libuv timer at the next deadline. */
static void gtfire (void) {
  uint64_t now, next;
  int fired = 0;
  gr_lock_lock(&gt.lock);
  now = uv_hrtime();
  while (!gt.paused && gt.heap.n > 0 && gt.heap.a[0]->when <= now) {
    gr_timer *t = gt.heap.a[0];
    fired = 1;
    heapremove(&gt.heap, t);
    if (t->kind == GR_TSEND)
      sendtick(NULL, &gt.heap, t, now);
    else {
      if (t->slot) *t->slot = NULL;
      t->call(t->arg, 1);
      free(t);
    }
  }
  if (fired) gtkickall();
  next = gt.heap.n > 0 && !gt.paused ? gt.heap.a[0]->when : UINT64_MAX;
  gt.armed = next;
  gr_lock_unlock(&gt.lock);
  if (next == UINT64_MAX)
    uv_timer_stop(&gt.uvtimer);
  else {
    uint64_t ms = next > now ? (next - now + 999999) / 1000000 : 0;
    uv_update_time(&gt.loop);
    uv_timer_start(&gt.uvtimer, gtontimer, ms, 0);
  }
}

static void gtmain (void *arg) {
  (void)arg;
  gr_trace_nameme("timer", 0);
  uv_run(&gt.loop, UV_RUN_DEFAULT);
}

/* Starts the timer thread if it does not run. Returns 0 on failure. */
static int gtstart (void) {
  int ok = 1;
  if (atomic_load_explicit(&gt.running, memory_order_acquire)) return 1;
  gr_lock_lock(&gt.life);
  if (!atomic_load(&gt.running)) {
    ok = 0;
    gr_lock_lock(&gt.lock);
    gt.armed = UINT64_MAX;
    gt.stopping = 0;
    gr_lock_unlock(&gt.lock);
    if (uv_loop_init(&gt.loop) == 0) {
      if (uv_async_init(&gt.loop, &gt.async, gtonasync) == 0) {
        uv_timer_init(&gt.loop, &gt.uvtimer);   /* cannot fail */
        ok = uv_thread_create(&gt.thread, gtmain, NULL) == 0;
        if (!ok) {
          uv_close((uv_handle_t *)&gt.async, NULL);
          uv_close((uv_handle_t *)&gt.uvtimer, NULL);
          uv_run(&gt.loop, UV_RUN_DEFAULT);
        }
      }
      if (!ok) uv_loop_close(&gt.loop);
    }
    if (ok) atomic_store(&gt.running, 1);
  }
  gr_lock_unlock(&gt.life);
  return ok;
}

/* At the close of the last state: stops and joins the thread; the
** deadline calls still pending are made with fired 0. Requires gt.life. */
static void gtstop (void) {
  gr_timer *calls = NULL, *t;
  size_t i;
  if (!atomic_load(&gt.running)) return;
  gr_lock_lock(&gt.lock);
  gt.stopping = 1;
  gr_lock_unlock(&gt.lock);
  uv_async_send(&gt.async);
  uv_thread_join(&gt.thread);
  uv_loop_close(&gt.loop);
  atomic_store(&gt.running, 0);
  gr_lock_lock(&gt.lock);
  for (i = 0; i < gt.heap.n; i++) {
    t = gt.heap.a[i];
    t->idx = NOHEAP;   /* a channel timer stays its channel's */
    if (t->kind == GR_TCALL) {
      if (t->slot) *t->slot = NULL;
      t->g = (gr_g *)(void *)calls;   /* links the list */
      calls = t;
    }
  }
  gt.heap.n = gt.heap.nwake = 0;
  if (gt.reserved == 0) {   /* the module may be unloaded next */
    free(gt.heap.a);
    gt.heap.a = NULL;
    gt.heap.cap = 0;
  }
  free(gt.watch);
  gt.watch = NULL;
  gt.nwatch = gt.capwatch = 0;
  gr_lock_unlock(&gt.lock);
  while ((t = calls) != NULL) {
    calls = (gr_timer *)(void *)t->g;
    t->call(t->arg, 0);
    free(t);
  }
}

/* Adds t to the process heap, to fire d seconds from now. Returns 0, or
** -1 without memory. */
static int gtadd (gr_timer *t, uint64_t when) {
  int kick = 0, r = -1;
  gr_lock_lock(&gt.lock);
  t->when = when;
  if (heapgrow(&gt.heap, gt.heap.n + gt.reserved + 1) == 0) {
    r = heapadd(&gt.heap, t);
    kick = wantkick(t);
    if (r == 0 && t->kind == GR_TCALL && t->slot) *t->slot = t;
  }
  gr_lock_unlock(&gt.lock);
  if (kick) uv_async_send(&gt.async);
  return r;
}

/* Calls call(arg, 1) on the timer thread d seconds from now, or call(arg,
** 0) if the last state closes first (or here, before raising, when there
** is no memory). call must be thread-safe, must not raise, and must not
** free a timer's channel: it runs under gt.lock. */
void gr_timer_callsafe (lua_State *L, double d,
                        void (*call) (void *arg, int fired), void *arg,
                        gr_timer **slot) {
  gr_timer *t = (gr_timer *)calloc(1, sizeof(*t));
  uint64_t when = uv_hrtime() + tons(d);
  if (t == NULL) {
    call(arg, 0);
    luaL_error(L, "not enough memory");
  }
  t->idx = NOHEAP;
  t->kind = GR_TCALL;
  t->global = 1;
  t->fref = LUA_NOREF;
  t->call = call;
  t->arg = arg;
  t->slot = slot;   /* gtadd stores t there, under gt.lock */
  if (!gtstart()) {
    free(t);
    call(arg, 0);
    luaL_error(L, "goroutines: cannot start the timer thread");
  }
  if (gtadd(t, when) != 0) {
    free(t);
    call(arg, 0);
    luaL_error(L, "not enough memory");
  }
}

void gr_timer_uncall (gr_timer **slot) {
  gr_timer *t;
  gr_lock_lock(&gt.lock);
  t = *slot;
  if (t != NULL && t->idx != NOHEAP) {
    heapremove(&gt.heap, t);
    *slot = NULL;
  }
  else t = NULL;   /* fired, or being fired: the timer thread has it */
  gr_lock_unlock(&gt.lock);
  if (t != NULL) {
    t->call(t->arg, 0);
    free(t);
  }
}


/* --- channel timers: the channel hook ---------------------------------------- */

/* Promises t a slot in the process heap, before its channel becomes
** shared (nothing may fail then). Owner thread; may raise. */
static void reserve (lua_State *L, gr_timer *t) {
  int ok;
  if (t->reserved || t->global) return;
  if (!gtstart()) luaL_error(L, "goroutines: cannot start the timer thread");
  gr_lock_lock(&gt.lock);
  ok = heapgrow(&gt.heap, gt.heap.n + gt.reserved + 1) == 0;
  if (ok) {
    gt.reserved++;
    t->reserved = 1;
  }
  gr_lock_unlock(&gt.lock);
  if (!ok) luaL_error(L, "not enough memory");
}

/* Moves t to the process heap once its channel is shared. Owner thread,
** before any other state can see the channel. */
static void moveglobal (gr_timer *t) {
  int active = t->idx != NOHEAP, kick = 0;
  if (active) heapremove(t->S->timers, t);
  gr_lock_lock(&gt.lock);
  t->global = 1;
  if (t->reserved) {
    t->reserved = 0;
    gt.reserved--;
  }
  /* Without the promised slot (a share that did not announce itself) a
  ** timer that finds no memory stays stopped. */
  if (active && heapadd(&gt.heap, t) == 0) kick = wantkick(t);
  gr_lock_unlock(&gt.lock);
  if (kick) uv_async_send(&gt.async);
}

/* The channel of t is freed (its last ref dropped, on any thread): so is
** t. */
static void chanfreed (gr_timer *t) {
  if (t->global || t->reserved) {
    gr_lock_lock(&gt.lock);
    if (t->global && t->idx != NOHEAP) {
      heapremove(&gt.heap, t);
      gtkickall();
    }
    if (t->reserved) gt.reserved--;
    gr_lock_unlock(&gt.lock);
  }
  if (!t->global && t->idx != NOHEAP) heapremove(t->S->timers, t);
  free(t);
}

static void chanhook (lua_State *L, gr_chan *c, int event) {
  gr_timer *t = (gr_timer *)c->hookarg;
  switch (event) {
    case GR_CHAN_WILLSHARE: reserve(L, t); break;
    case GR_CHAN_SHARED: moveglobal(t); break;
    case GR_CHAN_FREED: chanfreed(t); break;
  }
}

/* Makes c the channel of t, which it owns from now on. */
void gr_timer_attach (gr_timer *t, gr_chan *c) {
  t->c = c;
  c->hookarg = t;
  c->hook = chanhook;
}


/* --- timers ------------------------------------------------------------------ */

/* Frees an inactive sleep, after_func or call timer. L is NULL at state
** close. */
static void freetimer (lua_State *L, gr_timer *t) {
  GR_ASSERT(t->idx == NOHEAP && t->kind != GR_TSEND);
  if (t->fref != LUA_NOREF && L != NULL)
    luaL_unref(L, LUA_REGISTRYINDEX, t->fref);
  free(t);
}

gr_timer *gr_timer_new (lua_State *L, gr_state *S, int kind) {
  gr_timer *t = (gr_timer *)calloc(1, sizeof(*t));
  if (t == NULL) luaL_error(L, "not enough memory");
  t->idx = NOHEAP;
  t->kind = kind;
  t->S = S;
  t->fref = LUA_NOREF;
  return t;
}

/* Activates the inactive t to fire d seconds from now, in its heap. On
** failure frees a timer that nothing else owns, and raises. */
void gr_timer_start (lua_State *L, gr_state *S, gr_timer *t, double d) {
  uint64_t when = uv_hrtime() + tons(d);
  int r;
  if (t->global)
    r = gtadd(t, when);
  else {
    t->when = when;
    r = heapadd(S->timers, t);
  }
  if (r != 0) {
    if (t->kind != GR_TSEND && !t->ud) freetimer(L, t);
    luaL_error(L, "not enough memory");
  }
}

/* Whether a timer of S, or of the process, can still wake something. */
int gr_timer_pending (gr_state *S) {
  gr_timerheap *h = S->timers;
  int r;
  if (h->nwake > 0 || (h->n > 0 && anywaiter(h))) return 1;
  if (!atomic_load_explicit(&gt.running, memory_order_acquire)) return 0;
  gr_lock_lock(&gt.lock);
  r = gt.heap.nwake > 0 || anywaiter(&gt.heap);
  if (r) gtwatch(S);
  gr_lock_unlock(&gt.lock);
  return r;
}

/* Fires one expired timer of S, already out of the heap. */
static void fire (lua_State *L, gr_state *S, gr_timer *t, uint64_t now) {
  switch (t->kind) {
    case GR_TSLEEP: {
      gr_g *g = t->g;
      g->sleep = NULL;
      free(t);
      gr_sched_ready(S, g);
      return;
    }
    case GR_TSEND:
      sendtick(S, S->timers, t, now);   /* no Lua allocation: no GC */
      return;
    case GR_TFUNC:
      /* Spawning allocates: a collection may finalize the handle now,
      ** which sees t->firing and leaves t to us. */
      t->firing = 1;
      lua_rawgeti(L, LUA_REGISTRYINDEX, t->fref);
      gr_sched_spawn(L, S, 0, 0);
      t->firing = 0;
      if (!t->ud && t->idx == NOHEAP) freetimer(L, t);
      return;
  }
}

/* Fires every timer of S whose deadline has passed. Owner thread only. */
static void firedue (lua_State *L, gr_state *S) {
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
static void arm (gr_state *S) {
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

/* Ns until the earliest deadline of S (0 if it has passed), or -1. */
static int64_t next (gr_state *S) {
  gr_timerheap *h = S->timers;
  uint64_t now, when;
  if (h->n == 0) return -1;
  now = uv_hrtime();
  when = h->a[0]->when;
  return when > now ? (int64_t)(when - now) : 0;
}

static const gr_timerops timerops = {
  firedue, gr_timer_pending, arm, next
};

int gr_timer_init (gr_state *S) {
  uv_once(&gtonce, gtinit);
  S->timerops = &timerops;
  S->timers = (gr_timerheap *)calloc(1, sizeof(gr_timerheap));
  if (S->timers == NULL) return -1;
  if (uv_timer_init(&S->loop, &S->uvtimer) != 0) return -1;
  gr_lock_lock(&gt.life);
  gt.nstates++;
  gr_lock_unlock(&gt.life);
  return 0;
}

/* Before a state frees its goroutines: the timer thread, which may be
** waking one of them, finishes and fires nothing until gr_timer_closeall.
** Wakes are made under gt.lock, so none is in flight once it is taken. */
void gr_timer_pause (gr_state *S) {
  if (S->timers == NULL || S->timers->paused) return;
  S->timers->paused = 1;
  gr_lock_lock(&gt.lock);
  gt.paused++;
  gr_lock_unlock(&gt.lock);
}

/* At state close (after gr_timer_pause): frees the timers of S that
** nothing else owns and detaches the others (handles and channels free
** them); the last state stops the timer thread. */
void gr_timer_closeall (gr_state *S) {
  gr_timerheap *h = S->timers;
  size_t i;
  int counted = h != NULL, paused = h != NULL && h->paused;
  if (h != NULL) {
    gr_lock_lock(&gt.lock);
    gtunwatch(S);
    gr_lock_unlock(&gt.lock);
    for (i = 0; i < h->n; i++) {
      gr_timer *t = h->a[i];
      t->idx = NOHEAP;
      t->S = NULL;
      if (t->kind != GR_TSEND && !t->ud) {
        t->fref = LUA_NOREF;
        freetimer(NULL, t);
      }
    }
    free(h->a);
    free(h);
    S->timers = NULL;
  }
  if (paused) {
    gr_lock_lock(&gt.lock);
    gt.paused--;
    gr_lock_unlock(&gt.lock);
  }
  gr_lock_lock(&gt.life);
  if (counted && --gt.nstates == 0) gtstop();
  else if (atomic_load(&gt.running)) uv_async_send(&gt.async);
  gr_lock_unlock(&gt.life);
}




/* --- what g.time does with timers (time.c) ------------------------------ */

/* Empties the timer's channel: after stop or reset no stale value can be
** received (Go 1.23 semantics). Returns how many values it discarded. */
static int drain (gr_state *S, gr_timer *t) {
  gr_value v;
  int n = 0;
  if (t->c)
    while (gr_chan_tryrecv(S, t->c, &v) == GR_OK) {
      gr_value_setnil(&v);
      n++;
    }
  return n;
}

/* Stops t. Returns whether that stopped it: it was active, or it had
** fired and nobody had received the value, which is discarded (Go 1.23:
** false only once the value was received, or after a stop). A timer of
** the process heap is looked at under gt.lock, so that it is either
** pending or fired with its value in the channel. */
int gr_timer_stop (gr_state *S, gr_timer *t) {
  int global = t->global, stopped;
  if (global) gr_lock_lock(&gt.lock);
  stopped = t->idx != NOHEAP;
  if (stopped) heapremove(global ? &gt.heap : S->timers, t);
  if (drain(S, t) > 0) stopped = 1;
  if (global) {
    if (stopped) gtkickall();
    gr_lock_unlock(&gt.lock);
  }
  return stopped;
}

/* As gr_timer_stop, then arms t d seconds from now (a ticker's period
** becomes d). Returns whether it stopped it, or -1 without memory. */
int gr_timer_reset (gr_state *S, gr_timer *t, double d) {
  int global = t->global, stopped, r, kick = 0;
  gr_timerheap *h = global ? &gt.heap : S->timers;
  if (global) gr_lock_lock(&gt.lock);
  stopped = t->idx != NOHEAP;
  if (stopped) heapremove(h, t);
  if (drain(S, t) > 0) stopped = 1;
  if (t->period) t->period = gr_timer_period(d);
  t->when = uv_hrtime() + tons(d);
  r = heapgrow(h, h->n + (global ? gt.reserved : 0) + 1);
  if (r == 0) r = heapadd(h, t);
  if (r == 0 && global) kick = wantkick(t);
  if (global) gr_lock_unlock(&gt.lock);
  if (kick) uv_async_send(&gt.async);
  return r != 0 ? -1 : stopped;
}

/* The Lua handle of t was collected: a channel timer goes with its
** channel (the handle held one ref on it); an after_func runs on, owned
** by its heap, as in Go. */
void gr_timer_dropud (lua_State *L, gr_timer *t) {
  if (t->kind == GR_TSEND) {
    gr__chan_release(L, t->c);
    return;
  }
  t->ud = 0;
  if (t->idx == NOHEAP && !t->firing) freetimer(L, t);
}

/* Takes back the sleep timer of g, whose in-place sleep must raise. */
void gr_timer_cancelsleep (gr_state *S, gr_g *g) {
  if (g->sleep) {
    heapremove(S->timers, g->sleep);
    free(g->sleep);
    g->sleep = NULL;
  }
}

/* Whether t can be used: not of a state that closed. */
int gr_timer_usable (gr_timer *t) {
  return t->global || t->S != NULL;
}
