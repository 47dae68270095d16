/*
** parallel.c -- M:N: worker threads, each running a Lua state of its own
** with its scheduler and libuv loop; g.parallel and g.gomaxprocs.
**
** A host state creates its pool on first use. g.parallel packs f and its
** arguments (copy.c) into a job and queues it; an idle worker takes it,
** unpacks it in its own state and starts it as a goroutine there, where it
** stays. Workers start on the first job; g.gomaxprocs grows the pool or
** retires workers (a retired worker takes no job and ends when its last
** goroutine has).
**
** A worker that runs out of work spins briefly before it sleeps in its
** loop, while fewer than ncpu threads are awake and at most half of them
** spin (Go's bound), so spinning never takes a core from a thread with
** work.
**
** Blocking C calls (luasocket, lfs, os.execute): a worker's thread that
** is inside a C call does not hold back the jobs queued behind it, as Go
** hands off the P of a thread in a system call (runtime/proc.go, retake
** and handoffp). The count hook that preempts fires at Lua instructions
** only, so the monitor (sched.c) tells a C call from Lua code that
** computes: a goroutine it hooked a slice ago whose hook has not fired,
** its runseq unmoved and its thread awake, is inside a C call (or in a
** coroutine that it resumed, which the hook does not reach either). The
** monitor marks it (S->incall, while it holds the goroutine, as for a
** hook) and tells the pool each slice the call lasts; the pool counts
** the worker as blocked (W->blocked, P->nblocked) and, while jobs wait
** and fewer than maxprocs takers are outside C calls, lends a thread: it
** starts one more worker, with a state of its own. The spare thread can
** only take queued jobs: the blocked worker's other goroutines are of
** its state, which one thread runs at a time, and wait for the call. The
** lending is bounded: 2 * maxprocs worker threads in all, retired ones
** included. When the call returns (the resume that the monitor marked
** ends, on the worker's thread), the worker counts again, and while more
** than maxprocs takers are outside C calls one retires: first a worker
** asleep in its loop, which ends at once when it has no goroutine left,
** else the one that came back, which keeps its goroutines (they cannot
** move to another state) and takes no new job. So new jobs go to
** maxprocs threads again at once, and the threads that still compute
** for goroutines already started end with them.
**
** A worker whose set-up fails (no memory for its state, or its require
** raised) is replaced, up to MAXREPLACE times in a row; when none is left
** to take the queued jobs, the host fails them at its next wait: each is
** an uncaught error of its goroutine, raised in main. An error that
** escapes a scheduling step of a worker is reported the same way and the
** worker goes on.
**
** Shutdown has two phases: every worker stops running goroutines and
** says so (W->quiet, under P->stopmu, signalling P->stopcv); once all are
** quiet, the host sets P->closenow and they close their states. A worker
** still running after STOPGRACE_NS is inside a long C call (os.execute),
** where no hook reaches it: the host abandons it (W->detached), so that
** the program's end never waits for that call. Its state is never closed
** and the module's functions raise in it (gr_state_abandon); its thread
** is detached; P and W are never freed, as it may still read them when
** the call returns, and on its way out it touches nothing else: its
** goroutine stops at its next Lua instructions (the stop hook), an error
** it raises meanwhile is printed, not handed to the host (deliver checks
** W->detached under P->lock, which abandon holds), and the thread ends
** leaving its state unfreed.
**
** Invariants:
**   W->S is set by the worker once its state runs and cleared, under
**     P->lock, before the state closes: others touch a worker's state only
**     under P->lock, or through objects (channels) that hold it alive.
**   P outlives every worker: the host's close stops and joins them all.
**   P->nworkers counts the workers that take jobs: neither retired nor
**     failed; a job is queued only while it is > 0. P->nblocked counts
**     those of them with W->blocked: inside a C call, as the monitor saw
**     (S->incall), and not back yet.
** Lock order: P->stopmu < P->lock < a state's rlock (leaf), as gr.h
**   ranks them; the monitor, under its own lock, only tries P->lock.
**   Both are mutexes that sleep: P->lock is held across thread creation,
**   the join of an ended worker and uv_async_send; neither is held while
**   waiting.
*/
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lualib.h"

#include "copy.h"
#include "parallel.h"
#include "state.h"
#include "timer.h"
#include "trace.h"

#define SPIN_NS 50000   /* how long an idle thread spins before sleeping */
#define MAXREPLACE 3    /* worker set-ups that may fail in a row */
#define STOPRETRY_NS 5000000   /* stopping: interrupts repeated this often */
#define STOPGRACE_NS 1000000000ULL   /* stopping: then workers are abandoned */

const char gr_parallel_workerkey = 0;
static const char envmtkey = 0;

typedef struct gr_job {  /* a parallel goroutine not yet started */
  struct gr_job *next;
  lua_Integer id;       /* its id, counted live since g.parallel */
  gr_pack *p;           /* f and its arguments */
  uint64_t traceflow;   /* the trace's flow to its first run, or 0 */
} gr_job;

struct gr_worker {
  gr_pool *P;
  uv_thread_t thread;
  gr_state *S;          /* protected by P->lock: its state while it runs */
  atomic_int retire;    /* take no more jobs; end when no goroutine left */
  atomic_int exited;    /* its thread is done (or about to be) */
  atomic_int kicked;    /* woken for a job, and not yet awake */
  atomic_int detached;  /* abandoned by the host at shutdown */
  atomic_int quiet;     /* stopping: it runs no goroutine any more (set
                           under P->stopmu, as exited is) */
  int blocked;          /* protected by P->lock: a taker (not retired)
                           counted in P->nblocked */
  gr_worker *next;      /* protected by P->lock */
};

struct gr_pool {
  gr_state *host;       /* the state that owns the pool (immutable) */
  int ncpu;             /* cores libuv reports (immutable) */
  char *path, *cpath;   /* the host's package.path/cpath (immutable) */
  atomic_int stopping;  /* the host is closing: workers stop running */
  atomic_int orphaned;  /* jobs may be queued with no worker to take them */
  atomic_int nspinning; /* threads spinning for work */
  atomic_int nwspinning;  /* workers among them that take jobs */
  atomic_int nidle;     /* threads asleep in their loop */
  atomic_int nthreads;  /* workers running, plus the host */
  atomic_int njobs;     /* jobs queued */
  gr_lock stopmu;
  uv_cond_t stopcv;     /* a worker went quiet or exited; closenow set */
  int closenow;         /* protected by stopmu: every worker is quiet, they
                           may close their states */
  gr_lock lock;
  /* protected by lock: */
  gr_job *jobhead, *jobtail;
  gr_worker *workers;
  int nworkers;         /* workers that take jobs (see invariants) */
  int nblocked;         /* takers among them inside a C call */
  int maxprocs;         /* g.gomaxprocs() */
  int nfailed;          /* worker set-ups that failed in a row */
  char failmsg[160];    /* why the last one failed */
};

/* Test hooks, for the specs only, read once from the environment when
** the first pool is made: GOROUTINES_TEST_WORKERFAIL=N makes the first N
** worker set-ups fail as if luaL_newstate had found no memory, and
** GOROUTINES_TEST_THREADFAIL=N the first N thread creations. */
static atomic_int testworkerfail, testthreadfail;
static uv_once_t testonce = UV_ONCE_INIT;

static void readtesthooks (void) {
  const char *w = getenv("GOROUTINES_TEST_WORKERFAIL");
  const char *t = getenv("GOROUTINES_TEST_THREADFAIL");
  atomic_store(&testworkerfail, w ? atoi(w) : 0);
  atomic_store(&testthreadfail, t ? atoi(t) : 0);
}

/* Whether a test hook makes this attempt fail (it counts one down). */
static int testfail (atomic_int *n) {
  int v = atomic_load(n);
  while (v > 0 && !atomic_compare_exchange_weak(n, &v, v - 1)) {}
  return v > 0;
}

/* --- idling ---------------------------------------------------------------- */

/* Whether a worker other than self may still make progress: it runs, it
** has a timer or a wakeup pending, or a job waits to be started. */
static int canprogress (gr_state *self) {
  gr_pool *P = self->pool;
  gr_worker *W;
  int r = atomic_load(&P->njobs) > 0;
  gr_lock_lock(&P->lock);
  for (W = P->workers; W != NULL && !r; W = W->next) {
    gr_state *S = W->S;
    if (S == NULL) r = !atomic_load(&W->exited);   /* still starting */
    else if (S != self)
      r = atomic_load(&S->idle) != GR_IDLE_DONE || atomic_load(&S->rpending);
  }
  gr_lock_unlock(&P->lock);
  return r;
}

static int hasjobs (gr_state *S) {
  return S->worker != NULL && !atomic_load(&S->worker->retire) &&
         atomic_load(&S->pool->njobs) > 0;
}

/* A worker that sleeps with nothing to wait for may complete a deadlock:
** kick the host so that it looks again. */
static void wentidle (gr_state *S) {
  if (S->worker) {
    gr_state *H = S->pool->host;
    /* The host, about to sleep, publishes H->idle and then reads its own
    ** rpending, not this worker's idle: set rpending first, so that either
    ** the kick sees H->idle or the host sees rpending. A spurious rpending
    ** costs the host one look at its remote queue. */
    atomic_store(&H->rpending, 1);
    gr_sched_kick(H);
  }
}

/* Fails the queued jobs when no worker is left to take them (their
** set-ups failed): each becomes an uncaught error of its goroutine, in
** the errors of the host S, whose thread this is. Returns how many. */
static int failjobs (gr_state *S) {
  gr_pool *P = S->pool;
  gr_job *job, *next;
  char msg[sizeof(P->failmsg) + 64];
  int n = 0;
  gr_lock_lock(&P->lock);
  atomic_store(&P->orphaned, 0);
  job = P->nworkers == 0 ? P->jobhead : NULL;
  if (job) {
    P->jobhead = P->jobtail = NULL;
    atomic_store(&P->njobs, 0);
    snprintf(msg, sizeof(msg), "goroutines: cannot start a worker "
             "thread's state: %s", P->failmsg);
  }
  gr_lock_unlock(&P->lock);
  for (; job != NULL; job = next, n++) {
    next = job->next;
    gr_sched_posterror(S, job->id, msg, NULL);
    gr_pack_free(job->p);
    gr_sched_addlive(-1);
    free(job);
  }
  return n;
}

/* Spins for up to SPIN_NS while that may pay; returns 1 when work came.
** The host, which comes here before every sleep, first fails the jobs
** that no worker can take. */
static int spin (gr_state *S, gr_g *me) {
  gr_pool *P = S->pool;
  int maxspin = P->ncpu / 2 > 2 ? P->ncpu / 2 : 2, found = 0, i;
  /* Only a worker that takes jobs counts as one that will take the next. */
  int taker = S->worker != NULL && !atomic_load(&S->worker->retire);
  uint64_t t0;
  if (S->worker == NULL && atomic_load(&P->orphaned) && failjobs(S) > 0)
    return 1;
  if (atomic_load(&P->nspinning) >= maxspin ||
      atomic_load(&P->nthreads) - atomic_load(&P->nidle) > P->ncpu)
    return 0;
  atomic_fetch_add(&P->nspinning, 1);
  if (taker) atomic_fetch_add(&P->nwspinning, 1);
  t0 = uv_hrtime();
  for (i = 1; ; i++) {
    if (atomic_load_explicit(&S->rpending, memory_order_acquire) ||
        (me && atomic_load_explicit(&me->woken, memory_order_acquire)) ||
        hasjobs(S) || atomic_load(&P->stopping)) {
      found = 1;
      break;
    }
    if ((i & 63) == 0 && uv_hrtime() - t0 > SPIN_NS) break;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  }
  if (taker) atomic_fetch_sub(&P->nwspinning, 1);
  atomic_fetch_sub(&P->nspinning, 1);
  return found;
}


/* --- workers ------------------------------------------------------------------- */

static int startworkers (gr_pool *P);
static int startworker (gr_pool *P);

/* Retires W: it takes no job from now on, and ends once its goroutines
** have. Requires P->lock. */
static void retire (gr_pool *P, gr_worker *W) {
  GR_ASSERT(gr_lock_held(&P->lock));
  atomic_store(&W->retire, 1);
  P->nworkers--;
  if (W->blocked) {
    W->blocked = 0;
    P->nblocked--;
  }
  if (W->S) uv_async_send(&W->S->async);
}

/* Lends threads while jobs wait and fewer than maxprocs takers are
** outside C calls, up to 2 * maxprocs worker threads in all. Requires
** P->lock. */
static void lend (gr_pool *P) {
  GR_ASSERT(gr_lock_held(&P->lock));
  while (!atomic_load(&P->stopping) && atomic_load(&P->njobs) > 0 &&
         P->nworkers - P->nblocked < P->maxprocs &&
         atomic_load(&P->nthreads) - 1 < 2 * P->maxprocs &&
         startworker(P)) {}
}

/* The monitor found S's thread inside a C call (S->incall; under the
** monitor's lock, which ranks above P->lock: the lock is only tried, and
** the next look tries again). */
static void incall (gr_state *S) {
  gr_pool *P = S->pool;
  gr_worker *W = S->worker;
  if (atomic_load(&P->njobs) == 0 || !gr_lock_trylock(&P->lock)) return;
  /* incall read under P->lock: the thread clears it before it takes the
  ** lock in returned, which undoes this count. */
  if (atomic_load(&S->incall) && !W->blocked && !atomic_load(&W->retire)) {
    W->blocked = 1;
    P->nblocked++;
  }
  lend(P);
  gr_lock_unlock(&P->lock);
}

/* S's thread is back from its C call: while more than maxprocs takers
** run outside C calls, one retires, first one asleep in its loop, else
** this one (it keeps its goroutines, takes no new one). */
static void returned (gr_state *S) {
  gr_pool *P = S->pool;
  gr_worker *W = S->worker, *V;
  gr_lock_lock(&P->lock);
  if (W->blocked) {
    W->blocked = 0;
    P->nblocked--;
    while (!atomic_load(&P->stopping) &&
           P->nworkers - P->nblocked > P->maxprocs) {
      for (V = P->workers; V != NULL; V = V->next)
        if (!atomic_load(&V->retire) && !V->blocked && V->S != NULL &&
            atomic_load(&V->S->idle))
          break;
      if (V == NULL && !atomic_load(&W->retire)) V = W;
      if (V == NULL) break;
      retire(P, V);
    }
  }
  gr_lock_unlock(&P->lock);
}

static gr_job *takejob (gr_pool *P) {
  gr_job *job;
  if (atomic_load(&P->njobs) == 0) return NULL;
  gr_lock_lock(&P->lock);
  job = P->jobhead;
  if (job) {
    P->jobhead = job->next;
    if (P->jobhead == NULL) P->jobtail = NULL;
    atomic_fetch_sub(&P->njobs, 1);
  }
  gr_lock_unlock(&P->lock);
  return job;
}

/* Unpacks a job into the worker's state as a new goroutine with a
** globals table of its own that falls back to the worker's. */
static int lstartjob (lua_State *L) {
  gr_job *job = (gr_job *)lua_touserdata(L, 1);
  gr_state *S = (gr_state *)lua_touserdata(L, 2);
  gr_pack *p = job->p;
  int n;
  lua_settop(L, 0);
  lua_createtable(L, 0, 0);
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &envmtkey) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_createtable(L, 0, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
    lua_setfield(L, -2, "__index");
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &envmtkey);
  }
  lua_setmetatable(L, 1);
  gr_copy_markenv(L, 1);
  n = gr_pack_push(L, p, 1);   /* frees p */
  job->p = NULL;
  gr_sched_spawn(L, S, n - 1, job->id)->traceflow = job->traceflow;
  return 0;
}

static void startjob (lua_State *L, gr_state *S, gr_job *job) {
  lua_pushcfunction(L, lstartjob);
  lua_pushlightuserdata(L, job);
  lua_pushlightuserdata(L, S);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    /* It could not even start: report it like any goroutine error. */
    gr_sched_posterror(S, job->id, lua_tostring(L, -1), NULL);
    lua_pop(L, 1);
    gr_pack_free(job->p);
    gr_sched_addlive(-1);
  }
  free(job);
}

/* What the embedding layer does in a new worker state before the module
** is required (process-wide; NULL: nothing). */
static _Atomic(void (*) (lua_State *L)) workersetup;

void gr_parallel_setworkersetup (void (*f) (lua_State *L)) {
  atomic_store(&workersetup, f);
}

/* Sets up a worker's state: the host's search paths, the mark that makes
** the module's state a worker's, the embedding layer's set-up, and the
** module. */
static int lsetup (lua_State *L) {
  gr_worker *W = (gr_worker *)lua_touserdata(L, 1);
  gr_pool *P = W->P;
  void (*setup) (lua_State *L);
  luaL_openlibs(L);
  lua_getglobal(L, "package");
  lua_pushstring(L, P->path);
  lua_setfield(L, -2, "path");
  lua_pushstring(L, P->cpath);
  lua_setfield(L, -2, "cpath");
  lua_pop(L, 1);
  lua_pushlightuserdata(L, W);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &gr_parallel_workerkey);
  if ((setup = atomic_load(&workersetup)) != NULL) setup(L);
  lua_getglobal(L, "require");
  lua_pushliteral(L, "goroutines");
  lua_call(L, 1, 0);
  lua_pushlightuserdata(L, gr_state_get(L));
  return 1;
}

/* The scheduling loop of a worker; returns when the host stops, or when
** the worker is retired and has nothing left. */
static int lworkerloop (lua_State *L) {
  gr_worker *W = (gr_worker *)lua_touserdata(L, 1);
  gr_state *S = (gr_state *)lua_touserdata(L, 2);
  gr_pool *P = W->P;
  unsigned tick;
  for (tick = 1; ; tick++) {
    gr_job *job;
    int ran;
    if (atomic_load(&P->stopping)) break;
    ran = tick % 61 != 0 ? gr_sched_runonce(L, S) : 0;
    if (ran == 1) continue;
    /* Nothing ran, a goroutine that computes was preempted, or it is the
    ** 61st tick (as Go looks at its global queue): a queued job starts
    ** now, so that goroutines that compute do not hold new ones back. */
    if (!atomic_load(&W->retire) && (job = takejob(P)) != NULL) {
      startjob(L, S, job);
      continue;
    }
    if (ran == 2 || (tick % 61 == 0 && gr_sched_runonce(L, S))) continue;
    if (atomic_load(&W->retire) && S->all == NULL &&
        !atomic_load(&S->rpending) && !gr_timer_pending(S))
      break;   /* retired, and nothing of its own is left */
    gr_sched_sleep(S, NULL, 1);
    atomic_store(&W->kicked, 0);
  }
  return 0;
}

/* Reports the error at the top of L, which escaped a scheduling step of
** the worker state S, as an uncaught error: of the goroutine whose end
** raised it (its coroutine is dead with an error and still listed; its
** to-be-closed variables are closed now), or of none (id 0). Its
** __tostring is not called: raising is what it may do. */
static void reportescaped (lua_State *L, gr_state *S) {
  char buf[96];
  const char *msg;
  lua_Integer id = 0;
  gr_g *g;
  if (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER)
    msg = lua_tostring(L, -1);
  else {
    snprintf(buf, sizeof(buf), "(error object is a %s value)",
             luaL_typename(L, -1));
    msg = buf;
  }
  for (g = S->all; g != NULL; g = g->allnext) {
    int st;
    if (g->weak || g->leaked) continue;   /* parked: not the one */
    st = lua_status(g->co);
    if (st != LUA_OK && st != LUA_YIELD) {
      id = g->id;
      lua_resetthread(g->co);
      break;
    }
  }
  gr_sched_posterror(S, id, msg, NULL);
  lua_pop(L, 1);
}

/* A worker's set-up failed with msg: it takes no job from now on, and is
** replaced unless too many failed in a row; when no worker is left, the
** host is told to fail the queued jobs. */
static void setupfailed (gr_worker *W, const char *msg) {
  gr_pool *P = W->P;
  int orphan;
  gr_lock_lock(&P->lock);
  snprintf(P->failmsg, sizeof(P->failmsg), "%s",
           msg ? msg : "(error object is not a string)");
  if (!atomic_load(&W->retire)) retire(P, W);
  if (!atomic_load(&P->stopping) && P->nfailed++ < MAXREPLACE)
    startworkers(P);
  orphan = P->nworkers == 0 && P->jobhead != NULL;
  if (orphan) atomic_store(&P->orphaned, 1);
  gr_lock_unlock(&P->lock);
  if (orphan) {
    atomic_store(&P->host->rpending, 1);   /* it looks before it sleeps */
    gr_sched_kick(P->host);
  }
}

/* Marks W quiet or exited (flag) and tells the host, which waits for
** every worker to be one or the other. */
static void tellhost (gr_worker *W, atomic_int *flag) {
  gr_pool *P = W->P;
  gr_lock_lock(&P->stopmu);
  atomic_store(flag, 1);
  uv_cond_broadcast(&P->stopcv);
  gr_lock_unlock(&P->stopmu);
}

static void workermain (void *arg) {
  gr_worker *W = (gr_worker *)arg;
  gr_pool *P = W->P;
  gr_state *S = NULL;
  lua_State *L;
  gr_trace_nameme("worker", 1);
  L = testfail(&testworkerfail) ? NULL : luaL_newstate();
  if (L == NULL)
    setupfailed(W, "not enough memory");
  else {
    lua_pushcfunction(L, lsetup);
    lua_pushlightuserdata(L, W);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK)
      setupfailed(W, lua_tostring(L, -1));
    else
      S = (gr_state *)lua_touserdata(L, -1);
    lua_settop(L, 0);
  }
  if (S) {
    gr_lock_lock(&P->lock);
    W->S = S;
    P->nfailed = 0;
    gr_lock_unlock(&P->lock);
    for (;;) {   /* an error that escapes a step is reported; it goes on */
      lua_pushcfunction(L, lworkerloop);
      lua_pushlightuserdata(L, W);
      lua_pushlightuserdata(L, S);
      if (lua_pcall(L, 2, 0, 0) == LUA_OK) break;
      reportescaped(L, S);
    }
  }
  /* At shutdown, no worker closes its state before every worker has
  ** stopped running goroutines: one still running elsewhere may wake a
  ** goroutine of this state, or send on a channel it waits on. */
  if (atomic_load(&P->stopping)) {
    tellhost(W, &W->quiet);
    gr_lock_lock(&P->stopmu);
    while (!P->closenow) gr_lock_wait(&P->stopmu, &P->stopcv);
    gr_lock_unlock(&P->stopmu);
  }
  if (atomic_load(&W->detached)) return;   /* the host has gone on */
  gr_lock_lock(&P->lock);
  W->S = NULL;      /* nobody may touch the state from here on */
  gr_lock_unlock(&P->lock);
  if (L != NULL) lua_close(L);
  /* exited first: a lend that the count allows joins this thread before
  ** it starts another (reap), so 2 * maxprocs bounds live threads. */
  tellhost(W, &W->exited);
  atomic_fetch_sub(&P->nthreads, 1);
  gr_sched_kick(P->host);   /* the host may be waiting on a deadlock check */
}

/* Joins and frees the workers whose threads have ended (retired ones,
** lent threads given back), so that lending again and again keeps no
** thread nor record. A worker takes no lock once it is marked exited.
** Requires P->lock. */
static void reap (gr_pool *P) {
  gr_worker *W, **pw = &P->workers;
  GR_ASSERT(gr_lock_held(&P->lock));
  while ((W = *pw) != NULL) {
    if (!atomic_load(&W->exited)) {
      pw = &W->next;
      continue;
    }
    *pw = W->next;
    uv_thread_join(&W->thread);
    free(W);
  }
}

/* Starts a worker that takes jobs; returns 0 if it cannot. Requires
** P->lock. */
static int startworker (gr_pool *P) {
  gr_worker *W;
  reap(P);
  W = (gr_worker *)calloc(1, sizeof(*W));
  if (W == NULL) return 0;
  W->P = P;
  atomic_fetch_add(&P->nthreads, 1);
  if (testfail(&testthreadfail) ||
      uv_thread_create(&W->thread, workermain, W) != 0) {
    atomic_fetch_sub(&P->nthreads, 1);
    free(W);
    return 0;
  }
  W->next = P->workers;
  P->workers = W;
  P->nworkers++;
  return 1;
}

/* Starts workers until maxprocs run; returns how many run. Requires
** P->lock. */
static int startworkers (gr_pool *P) {
  while (P->nworkers < P->maxprocs && startworker(P)) {}
  return P->nworkers;
}

/* Kicks a sleeping worker, one not kicked yet, when no worker spins to
** take the new job: one job, one worker woken. */
static void wakeworker (gr_pool *P) {
  gr_worker *W;
  if (atomic_load(&P->nwspinning) > 0) return;
  gr_lock_lock(&P->lock);
  for (W = P->workers; W != NULL; W = W->next) {
    int no = 0;
    if (W->S && !atomic_load(&W->retire) && atomic_load(&W->S->idle) &&
        atomic_compare_exchange_strong(&W->kicked, &no, 1)) {
      uv_async_send(&W->S->async);
      break;
    }
  }
  gr_lock_unlock(&P->lock);
}

/* Calls f on every running worker state, under P->lock (their threads
** are asleep when the deadlock report reads them). */
static void eachworker (gr_state *S0, void (*f) (gr_state *S, void *ud),
                        void *ud) {
  gr_pool *P = S0->pool;
  gr_worker *W;
  gr_lock_lock(&P->lock);
  for (W = P->workers; W != NULL; W = W->next)
    if (W->S) f(W->S, ud);
  gr_lock_unlock(&P->lock);
}

static int mustwake (gr_state *S) {
  return hasjobs(S) || atomic_load(&S->pool->stopping);
}

/* Counts the thread of S in or out of sleep; one that sleeps with no
** timer may complete a deadlock. */
static void sleeping (gr_state *S, int asleep, int timers) {
  atomic_fetch_add(&S->pool->nidle, asleep ? 1 : -1);
  if (asleep && !timers) wentidle(S);
}

static gr_state *host (gr_state *S) {
  return S->pool->host;
}

/* Hands e, an uncaught error of worker state S, to the host, under
** P->lock: the host abandons a worker under it too, and from then on
** may be gone; that worker's errors are printed instead. */
static void deliver (gr_state *S, gr_errmsg *e) {
  gr_pool *P = S->pool;
  int gone;
  gr_lock_lock(&P->lock);
  gone = atomic_load(&S->worker->detached);
  if (!gone) gr_sched_mailerror(P->host, e);
  gr_lock_unlock(&P->lock);
  if (gone) {
    fprintf(stderr, "%s\n", e->msg);
    fflush(stderr);
    free(e);
  }
}

/* The pool's policy for the schedulers of its states (sched.h). */
static const gr_poolops poolops = {
  spin, canprogress, mustwake, sleeping, host, deliver, incall, returned,
  eachworker
};

/* Attaches the state of worker W to W's pool, as its scheduler is made. */
void gr_pool_attach (gr_state *S, gr_worker *W) {
  S->worker = W;
  S->pool = W->P;
  S->poolops = &poolops;
}

/* Interrupts a goroutine that runs while its worker must stop: it yields
** back to the worker loop, or raises if it is inside a C call. */
static void stophook (lua_State *L, lua_Debug *ar) {
  (void)ar;
  if (lua_isyieldable(L)) lua_yield(L, 0);
  lua_pushlightuserdata(L, (void *)&gr_sched_stoptoken);
  lua_error(L);   /* ends the goroutine without a report */
}

/* Abandons the workers still running at shutdown; returns how many.
** Requires P->stopmu (no worker goes quiet meanwhile) and P->lock. */
static int abandon (gr_pool *P) {
  gr_worker *W;
  int n = 0;
  GR_ASSERT(gr_lock_held(&P->stopmu) && gr_lock_held(&P->lock));
  for (W = P->workers; W != NULL; W = W->next) {
    if (atomic_load(&W->exited) || atomic_load(&W->quiet)) continue;
    atomic_store(&W->detached, 1);
    if (W->S) gr_state_abandon(W->S);
    n++;
  }
  return n;
}

/* At the host's close: stops every worker, even one in a tight loop; once
** none runs a goroutine any more, lets them close their states, and joins
** them; frees the jobs never started. Returns within about STOPGRACE_NS:
** a worker still running then is abandoned. */
void gr_pool_stop (gr_pool *P) {
  gr_worker *W, **pw;
  gr_job *job;
  uint64_t deadline = uv_hrtime() + STOPGRACE_NS;
  int nstuck = 0;
  atomic_store(&P->stopping, 1);
  gr_lock_lock(&P->stopmu);
  for (;;) {
    int running = 0;
    gr_lock_lock(&P->lock);
    for (W = P->workers; W != NULL; W = W->next) {
      if (atomic_load(&W->exited) || atomic_load(&W->quiet)) continue;
      running = 1;
      if (W->S) {
        gr_sched_interrupt(W->S, stophook);
        uv_async_send(&W->S->async);
      }
    }
    if (running && uv_hrtime() >= deadline) nstuck = abandon(P);
    gr_lock_unlock(&P->lock);
    if (!running || nstuck > 0) break;
    /* Each worker that goes quiet or exits signals; the timeout repeats
    ** the interrupt, which misses a goroutine that the monitor was hooking
    ** at that instant. */
    gr_lock_timedwait(&P->stopmu, &P->stopcv, STOPRETRY_NS);
  }
  P->closenow = 1;
  uv_cond_broadcast(&P->stopcv);
  gr_lock_unlock(&P->stopmu);
  for (pw = &P->workers; (W = *pw) != NULL; ) {
    if (atomic_load(&W->detached)) {   /* left in the list, never freed */
      pthread_detach(W->thread);
      pw = &W->next;
      continue;
    }
    *pw = W->next;
    uv_thread_join(&W->thread);
    free(W);
  }
  while ((job = P->jobhead) != NULL) {
    P->jobhead = job->next;
    gr_pack_free(job->p);
    gr_sched_addlive(-1);
    free(job);
  }
  if (nstuck > 0) {
    fprintf(stderr, "goroutines: %d worker thread%s still inside a C call "
            "at exit: left running, %s not freed\n", nstuck,
            nstuck > 1 ? "s" : "",
            nstuck > 1 ? "their states" : "its state");
    fflush(stderr);
    return;   /* P stays: the abandoned threads may still read it */
  }
  uv_cond_destroy(&P->stopcv);
  gr_lock_destroy(&P->stopmu);
  gr_lock_destroy(&P->lock);
  free(P->path);
  free(P->cpath);
  free(P);
}


/* --- Lua functions ------------------------------------------------------------ */

/* The pool of L's state: a worker's pool, or the host's, created here
** with the host's package.path and package.cpath for its workers. */
static gr_pool *getpool (lua_State *L, gr_state *S) {
  gr_pool *P;
  int ok = 0;
  const char *path, *cpath;
  if (S->pool) return S->pool;
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "path");
  lua_getfield(L, -2, "cpath");
  path = lua_tostring(L, -2);
  cpath = lua_tostring(L, -1);
  uv_once(&testonce, readtesthooks);
  P = (gr_pool *)calloc(1, sizeof(*P));
  if (P != NULL && (P->path = strdup(path ? path : "")) != NULL &&
      (P->cpath = strdup(cpath ? cpath : "")) != NULL &&
      gr_lock_init(&P->stopmu, GR_LPOOLSTOP) == 0) {
    if (uv_cond_init(&P->stopcv) != 0) gr_lock_destroy(&P->stopmu);
    else if (gr_lock_init(&P->lock, GR_LPOOL) != 0) {
      uv_cond_destroy(&P->stopcv);
      gr_lock_destroy(&P->stopmu);
    }
    else ok = 1;
  }
  if (!ok) {
    if (P) free(P->path);
    if (P) free(P->cpath);
    free(P);
    luaL_error(L, "not enough memory");
  }
  lua_pop(L, 3);
  P->host = S;
  P->ncpu = (int)uv_available_parallelism();
  if (P->ncpu < 1) P->ncpu = 1;
  P->maxprocs = P->ncpu;
  atomic_init(&P->nthreads, 1);   /* the host */
  S->pool = P;
  S->poolops = &poolops;
  return P;
}

static int lparallel (lua_State *L) {
  gr_state *S = gr_getstate(L);
  gr_pool *P = getpool(L, S);
  gr_job *job;
  gr_pack *p;
  lua_Integer id;
  int started;
  uint64_t t0 = gr_trace_enabled() ? uv_hrtime() : 0;   /* the copy's */
  gr_sched_checkcallable(L, 1);
  if (atomic_load(&P->stopping))
    return luaL_error(L, "goroutines: the runtime is shutting down");
  p = gr_pack_values(L, 1, lua_gettop(L), "args", 1);   /* may raise */
  job = (gr_job *)malloc(sizeof(*job));
  if (job == NULL) {
    gr_pack_free(p);
    return luaL_error(L, "not enough memory");
  }
  job->next = NULL;
  job->p = p;
  job->id = id = gr_sched_newid();   /* job may be gone once queued */
  job->traceflow = t0 == 0 ? 0 :
      gr_trace_parallel(id, gr_pack_size(p), uv_hrtime() - t0);
  gr_lock_lock(&P->lock);
  /* Queued only if a worker will take it: none may be left, all retired
  ** or failed, and none may start. */
  started = P->nworkers > 0 || startworkers(P) > 0;
  if (started) {
    gr_sched_addlive(1);
    if (P->jobtail) P->jobtail->next = job;
    else P->jobhead = job;
    P->jobtail = job;
    atomic_fetch_add(&P->njobs, 1);
  }
  gr_lock_unlock(&P->lock);
  if (!started) {   /* nothing of it is left */
    gr_pack_free(p);
    free(job);
    return luaL_error(L, "goroutines: cannot start a worker thread");
  }
  wakeworker(P);
  lua_pushinteger(L, id);
  return 1;
}

static int lgomaxprocs (lua_State *L) {
  gr_state *S = gr_getstate(L);
  gr_pool *P = getpool(L, S);
  int prev;
  lua_Integer n;
  gr_lock_lock(&P->lock);
  prev = P->maxprocs;
  gr_lock_unlock(&P->lock);
  if (!lua_isnoneornil(L, 1)) {
    int isint;
    n = lua_tointegerx(L, 1, &isint);
    luaL_argcheck(L, isint && n >= 1 && n <= 1024, 1,
                  "must be an integer from 1 to 1024");
    gr_lock_lock(&P->lock);
    P->maxprocs = (int)n;
    if (P->workers != NULL) {
      gr_worker *W;
      if (P->nworkers < P->maxprocs) startworkers(P);
      for (W = P->workers; W != NULL && P->nworkers > P->maxprocs;
           W = W->next)
        if (!atomic_load(&W->retire)) retire(P, W);
    }
    gr_lock_unlock(&P->lock);
  }
  lua_pushinteger(L, prev);
  return 1;
}

static const luaL_Reg funcs[] = {
  {"parallel", lparallel},
  {"gomaxprocs", lgomaxprocs},
  {NULL, NULL}
};

void gr_parallel_open (lua_State *L) {
  gr_state_setfuncs(L, funcs);
}
