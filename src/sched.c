/*
** sched.c -- goroutines: spawn, run queue, park and ready, the in-place
** scheduler loop of goroutine 1, and the Lua functions go, gosched, id,
** numgoroutine.
**
** Invariants:
**   A goroutine is in at most one of: the run queue, the remote queue,
**     running (S->current chain), parked. It is in S->all from spawn to
**     death (or to the reap of a leak), and its coroutine is anchored by
**     g->ref for as long, except while leak detection holds it weak
**     (leak.c: then the handles of the objects it waits on anchor it).
**   S->leakq holds the parked goroutines that leak detection may weaken:
**     each is taken out when it is readied (by S's thread: the objects it
**     waits on are S's alone) or when one of them is shared.
**   A parked goroutine is woken exactly once: by the single waker that
**     dequeues its waiter (or, for select, wins the CAS on g->seldone).
**   Only the thread that runs S touches S->runhead, S->all, S->current and
**     any goroutine's Lua stack.
** Lock order: S->rlock is a leaf (see gr.h); the run queue has no lock.
**   monlock (the monitor's) is taken under no lock but the pool's.
**
** Preemption without a standing hook: a monitor thread looks at every
** state each tick (half the shortest time slice of the states, at most
** MONITOR_TICK); when one has been running the same goroutine for its
** slice (S->slice), it installs a count hook on that coroutine
** (lua_sethook may be called from another thread). The hook restores the
** hook it replaced (saved in the goroutine's record) and yields; the
** scheduler queues the goroutine at the tail. S->running is the
** handshake (hookrunning): the monitor hooks a goroutine only while the
** owner is resuming it, and the owner does not go on past a resume while
** the monitor hooks the goroutine it resumed. A switch costs the owner no
** locked instruction where membarrier works; otherwise both sides CAS.
*/
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
#ifdef __linux__
#include <linux/membarrier.h>
#endif

#include "sched.h"
#include "state.h"
#include "trace.h"

/* How the body's own frame ends a traceback. */
#define BODYFRAME "\n\t[C]: in ?"

const char gr_sched_stoptoken = 0;

const char *const gr_waitreasons[] = {
  "running", "chan receive", "chan send", "select", "select (no cases)",
  "sleep", "sync.WaitGroup.Wait", "sync.Mutex.Lock", "sync.Once.Do",
  "sync.RWMutex.RLock", "sync.RWMutex.Lock", "sync.Cond.Wait", "semacquire",
  "IO wait"
};

/* Ids and the count of live goroutines are global: ids are unique and
** numgoroutine counts every state together. */
static atomic_llong nextid = 2;
static atomic_llong numg = 0;


/* --- run queue -------------------------------------------------------- */

static void runq_push (gr_state *S, gr_g *g) {
  g->runnext = NULL;
  if (S->runtail) S->runtail->runnext = g;
  else S->runhead = g;
  S->runtail = g;
}

static gr_g *runq_pop (gr_state *S) {
  gr_g *g = S->runhead;
  if (g) {
    S->runhead = g->runnext;
    if (S->runhead == NULL) S->runtail = NULL;
    g->runnext = NULL;
  }
  return g;
}

/* Moves what other threads handed to S into the owner's queues. */
static unsigned drain_remote (gr_state *S) {
  gr_g *head;
  gr_errmsg *errs, *errtail;
  unsigned dumpgen;
  gr_mutex_lock(&S->rlock);
  atomic_store_explicit(&S->rpending, 0, memory_order_relaxed);
  dumpgen = S->dumpgen;
  S->dumpgen = 0;
  head = S->rhead;
  errs = S->errors;
  errtail = S->errtail;
  S->rhead = S->rtail = NULL;
  S->errors = S->errtail = NULL;
  gr_mutex_unlock(&S->rlock);
  while (head) {
    gr_g *next = head->runnext;
    runq_push(S, head);
    head = next;
  }
  if (errs) {
    if (S->errlocaltail) S->errlocaltail->next = errs;
    else S->errlocal = errs;
    S->errlocaltail = errtail;
  }
  return dumpgen;
}

/* Takes what other threads handed over, then answers a request for the
** dump of S's goroutines (stack.c) that came with it. */
void gr_sched_takeremote (lua_State *L, gr_state *S) {
  unsigned dumpgen = drain_remote(S);
  if (dumpgen != 0 && S->ondump != NULL) S->ondump(L, S, dumpgen);
}

/* Asks S for the dump of its goroutines (request gen): S answers at its
** next scheduling point. Any thread, holding no lock above the mailbox's. */
void gr_sched_askdump (gr_state *S, unsigned gen) {
  gr_mutex_lock(&S->rlock);
  S->dumpgen = gen;
  gr_mutex_unlock(&S->rlock);
  atomic_store(&S->rpending, 1);
  gr_sched_kick(S);
}

/* Rings S's doorbell if its thread sleeps (or is about to) in uv_run.
** Pairs with gr_sched_sleep: the waker publishes its work, then reads
** S->idle; the sleeper publishes S->idle, then looks for work (both
** sequentially consistent), so one of them always sees the other. */
void gr_sched_kick (gr_state *S) {
  if (atomic_load(&S->idle)) {
    atomic_store_explicit(&S->rung, 1, memory_order_relaxed);
    uv_async_send(&S->async);
  }
}

/* Makes g runnable. Any thread may call it; cur is the state the caller
** runs (NULL for a thread that runs none). Requires: g is parked and the
** caller is its single waker, and holds no lock. */
void gr_sched_ready (gr_state *cur, gr_g *g) {
  gr_state *S = g->S;
  if (g->leaked) return;   /* its waiters are being dropped (leak.c) */
  if (g->inleakq) gr_sched_leakunlist(S, g);
  if (g->weak && !g->wokeweak) {
    /* Anchored again at once: the waker may drop the last handle before
    ** g runs. The coroutine is alive (the waker reached its object), and
    ** the weakening left room on its stack: this allocates nothing. Only
    ** S's thread wakes a weak goroutine (its objects are S's alone). */
    GR_ASSERT(cur == S);
    lua_pushthread(g->co);
    lua_rawseti(g->co, LUA_REGISTRYINDEX, g->ref);
    g->wokeweak = 1;   /* resume does the rest (leak.c) */
  }
  GR_TRACE(g->traceflow = gr_trace_wake(g->id, gr_waitreasons[g->reason]));
  if (g->inplace) {
    if (cur == S)   /* the blocker's own thread: it reads woken next */
      atomic_store_explicit(&g->woken, 1, memory_order_relaxed);
    else {
      atomic_store(&g->woken, 1);   /* before kick's load: see kick */
      gr_sched_kick(S);
    }
  }
  else if (cur == S)
    runq_push(S, g);
  else {
    gr_mutex_lock(&S->rlock);
    g->runnext = NULL;
    if (S->rtail) S->rtail->runnext = g;
    else S->rhead = g;
    S->rtail = g;
    gr_mutex_unlock(&S->rlock);
    atomic_store(&S->rpending, 1);
    gr_sched_kick(S);
  }
}


/* --- uncaught errors ------------------------------------------------- */

void gr_sched_mailerror (gr_state *H, gr_errmsg *e) {
  gr_mutex_lock(&H->rlock);
  if (H->errtail) H->errtail->next = e;
  else H->errors = e;
  H->errtail = e;
  gr_mutex_unlock(&H->rlock);
  atomic_store(&H->rpending, 1);
  gr_sched_kick(H);
}

/* Queues e for goroutine 1 of the host state. A worker's error goes to
** its host's mailbox through the pool, even while the pool stops (the
** host prints what it never raised once every worker has stopped), and
** never once the host left the worker behind (the pool prints it). */
static void deliver (gr_state *S, gr_errmsg *e) {
  if (S->worker) {
    S->poolops->deliver(S, e);
    return;
  }
  if (S->errlocaltail) S->errlocaltail->next = e;
  else S->errlocal = e;
  S->errlocaltail = e;
}

/* Records the uncaught error of goroutine id ("goroutine N: msg" and its
** traceback, or none): in the mailbox of the host, which raises it in
** goroutine 1. Any thread of S may call it; it never loses the error
** (without memory, it prints it). */
void gr_sched_posterror (gr_state *S, lua_Integer id, const char *msg,
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

/* Each error is taken from the list before the handler runs: a handler
** that makes the scheduler run (it should not) cannot see it twice. */
void gr_sched_passerrors (gr_state *S) {
  gr_errmsg *e;
  GR_ASSERT(S->errhandler != NULL);
  while ((e = S->errlocal) != NULL) {
    S->errlocal = e->next;
    if (S->errlocal == NULL) S->errlocaltail = NULL;
    S->errhandler(S->L, e->msg, S->errud);
    free(e);
  }
}

/* Raises goroutine 1's oldest uncaught goroutine error in L. Requires
** one (gr_sched_wait returned GR_EGOERR). Never returns. */
void gr_sched_raiseerror (lua_State *L, gr_state *S) {
  gr_errmsg *e = S->errlocal;
  GR_ASSERT(e != NULL);
  S->errlocal = e->next;
  if (S->errlocal == NULL) S->errlocaltail = NULL;
  lua_pushlstring(L, e->msg, e->len);
  free(e);
  lua_error(L);
}

/* --- running goroutines ----------------------------------------------- */

/* Releases a goroutine whose coroutine ended. Its body (gobody) has
** recorded an error of its function already; status is not LUA_OK only
** when an error escaped the body itself (no memory to record one). */
static void finish (lua_State *L, gr_state *S, gr_g *g, int status) {
  if (status != LUA_OK) {
    /* No Lua allocation here: L runs the scheduler. */
    const char *msg = NULL;
    if (status == LUA_ERRMEM) msg = "not enough memory";
    else if (lua_type(g->co, -1) == LUA_TSTRING) msg = lua_tostring(g->co, -1);
    gr_sched_posterror(S, g->id, msg, NULL);
    lua_resetthread(g->co);  /* closes what is still to be closed */
  }
  if (g->allprev) g->allprev->allnext = g->allnext;
  else S->all = g->allnext;
  if (g->allnext) g->allnext->allprev = g->allprev;
  luaL_unref(L, LUA_REGISTRYINDEX, g->ref);  /* the anchor taken in spawn */
  free(g);
  atomic_fetch_sub_explicit(&numg, 1, memory_order_relaxed);
}

#define GR_BUSY ((gr_g *)1)

/* Whether the process-private expedited membarrier works (set once, when
** the monitor's lock is made, before any state runs): then the owner
** publishes S->running with plain stores, and the rare hooker pays for
** both sides with a membarrier (see hookrunning). */
static int asymmetric;

/* Moves S->running from `from` to `to`, waiting out a hooker of from (the
** goroutine that just ran, which may end once this returns). */
static void setrunning (gr_state *S, gr_g *from, gr_g *to) {
  gr_g *expected = from;
  if (asymmetric) {
    atomic_store_explicit(&S->running, to, memory_order_release);
    /* The hooker's membarrier orders this store before the load below as
    ** a fence would; the compiler must not reorder them either. */
    atomic_signal_fence(memory_order_seq_cst);
    while (from != NULL &&
           atomic_load_explicit(&S->hooking, memory_order_acquire) == from)
      sched_yield();
    return;
  }
  while (!atomic_compare_exchange_weak_explicit(&S->running, &expected, to,
             memory_order_acq_rel, memory_order_relaxed)) {
    GR_ASSERT(expected == GR_BUSY || expected == from);
    expected = from;
  }
}

/* g runs again: it no longer waits on a host channel (gr_sched_hostwait). */
static void endhostwait (gr_state *S, gr_g *g) {
  if (g->hostwait) {
    g->hostwait = 0;
    S->hostwait--;
  }
}

/* Resumes g once, from L (the thread running the scheduler). Returns 1
** if g is runnable again (it was preempted or gave way): the caller
** queues it. */
static int resume (lua_State *L, gr_state *S, gr_g *g) {
  int again = 0;
  gr_g *prev = S->current;
  /* Goroutine 1 cannot be preempted: it is not a coroutine. */
  gr_g *prevrun = prev == S->g1 ? NULL : prev;
  int nres, status, nargs = g->nargs;
  if (g->inleakq) gr_sched_leakunlist(S, g);
  if (g->weak) S->strengthen(L, g);   /* before it runs: may allocate */
  g->leakops = NULL;
  S->current = g;
  endhostwait(S, g);
  g->parked = 0;
  g->reason = GR_WNONE;
  g->nargs = 0;
  /* Only this thread writes runseq: no locked increment. */
  atomic_store_explicit(&S->runseq, atomic_load_explicit(&S->runseq,
                        memory_order_relaxed) + 1, memory_order_relaxed);
  setrunning(S, prevrun, g);
  GR_TRACE(gr_trace_begin(g->id, g->tracefn ? g->tracefn :
           (g->tracefn = gr_trace_fname(g->co, nargs ? 4 : 0)), &g->traceflow));
  status = lua_resume(g->co, L, nargs, &nres);
  GR_TRACE(gr_trace_end(g->id, status != LUA_YIELD ? "dead" : g->parked ?
           gr_waitreasons[g->reason] : "runnable"));
  setrunning(S, g, prevrun);
  /* The monitor marks incall only while it holds g (hookrunning), and
  ** setrunning waited it out: a mark made during this resume is seen. */
  if (atomic_load_explicit(&S->incall, memory_order_relaxed)) {
    atomic_store_explicit(&S->incall, 0, memory_order_relaxed);
    S->poolops->returned(S);
  }
  S->current = prev;
  if (status == LUA_YIELD) {
    lua_pop(g->co, nres);
    again = !g->parked;  /* preempted, gosched, or a bare coroutine.yield */
  }
  else
    finish(L, S, g, status);
  if (S->gcstress) lua_gc(L, LUA_GCCOLLECT);
  return again;
}

/* Resumes g once, and queues it at the tail if it is runnable again.
** Returns 1 then. */
static int run (lua_State *L, gr_state *S, gr_g *g) {
  if (!resume(L, S, g)) return 0;
  runq_push(S, g);
  return 1;
}

/* Whether anything but the blocked goroutines of S can still make
** progress: a pending timer, a goroutine waiting on I/O or on a host
** channel (the world outside may wake it), a wakeup from another thread,
** or a worker that is not asleep for good. */
static int canwake (gr_state *S) {
  if (S->worker) return 1;   /* only the host reports deadlocks */
  return S->timerops->pending(S) || S->iowait > 0 || S->hostwait > 0 ||
         atomic_load(&S->rpending) ||
         (S->poolops != NULL && S->poolops->canprogress(S));
}

/* Sleeps in S's loop until a timer expires or another thread kicks S;
** with spin, first spins a little on the run queue when that may pay
** (the pool's spin). me is an in-place blocker whose wake also ends it. */
void gr_sched_sleep (gr_state *S, gr_g *me, int spin) {
  const gr_poolops *ops = S->poolops;
  int timers = S->timerops->pending(S) || S->iowait > 0;
  if (spin && ops && ops->spin(S, me)) return;
  atomic_store(&S->idle, timers ? GR_IDLE_TIMERS : GR_IDLE_DONE);
  if (!atomic_load(&S->rpending) && !(me && atomic_load(&me->woken)) &&
      !(ops && ops->mustwake(S))) {
    if (ops) ops->sleeping(S, 1, timers);
    S->timerops->arm(S);
    uv_run(&S->loop, UV_RUN_ONCE);
    if (ops) ops->sleeping(S, 0, timers);
  }
  atomic_store(&S->idle, 0);
}

/* Runs the I/O callbacks that are ready, every 64 scheduling steps while
** goroutines wait on I/O: a run queue that never empties must not keep
** the loop from being polled (Go's scheduler polls the network the same
** way). The callbacks only queue goroutines. */
static void pollio (gr_state *S) {
  if (S->iowait > 0 && (++S->iopoll & 63) == 0)
    uv_run(&S->loop, UV_RUN_NOWAIT);
}

/* One scheduling step of a worker: takes what other threads handed over,
** fires expired timers, runs one goroutine. Returns 0 if it ran none, 1
** if it ran one, 2 if the one it ran is runnable again (preempted). */
int gr_sched_runonce (lua_State *L, gr_state *S) {
  gr_g *g;
  if (atomic_load_explicit(&S->rpending, memory_order_acquire))
    gr_sched_takeremote(L, S);
  if (S->nleaked) gr_sched_reap(L, S);
  S->timerops->fire(L, S);
  pollio(S);
  if ((g = runq_pop(S)) == NULL) return 0;
  return 1 + run(L, S, g);
}

/* Runs the scheduler in place on L until me is woken (returns 0), until
** nothing can wake it (GR_EDEADLOCK), or, for goroutine 1, until an
** uncaught goroutine error must be raised (GR_EGOERR; with an error
** handler, the errors go to it instead). With runonly, runs
** the goroutines that are runnable now, once each, and returns 0. */
static int waitloop (lua_State *L, gr_state *S, gr_g *me, int runonly) {
  gr_g *last = runonly ? S->runtail : NULL;
  for (;;) {
    gr_g *g;
    if (!runonly &&
        atomic_load_explicit(&me->woken, memory_order_acquire))
      return 0;
    if (atomic_load_explicit(&S->rpending, memory_order_acquire))
      gr_sched_takeremote(L, S);
    if (S->nleaked) gr_sched_reap(L, S);
    if (me == S->g1 && S->errlocal) {
      if (S->errhandler == NULL) return GR_EGOERR;
      gr_sched_passerrors(S);
    }
    S->timerops->fire(L, S);
    pollio(S);
    if ((g = runq_pop(S)) != NULL) {
      run(L, S, g);
      if (runonly && (g == last || last == NULL)) return 0;
      continue;
    }
    if (runonly) return 0;
    if (atomic_load_explicit(&me->woken, memory_order_acquire))
      return 0;
    /* Spin first: a wake from another thread often comes within
    ** microseconds, and the deadlock check below takes the pool's lock. */
    if (S->poolops && S->poolops->spin(S, me)) continue;
    if (!canwake(S)) {
      /* Look again after canwake read the other threads' states: a wake
      ** published before they went idle is visible now. */
      if (atomic_load(&S->rpending) || atomic_load(&me->woken)) continue;
      return GR_EDEADLOCK;
    }
    gr_sched_sleep(S, me, 0);
  }
}

int gr_sched_wait (lua_State *L, gr_state *S, gr_g *me, int runonly) {
  int err;
  if (runonly) return waitloop(L, S, me, 1);
  GR_TRACE(gr_trace_block(me->id, gr_waitreasons[me->reason]));
  err = waitloop(L, S, me, 0);
  GR_TRACE(gr_trace_unblock(me->id, me->tracefn, &me->traceflow));
  return err;
}


/* --- driven by an embedding host (gr_run) ------------------------------- */

#define HOSTBUDGET 1000000ULL   /* ns GR_RUN_NOWAIT goes on running what
                                   becomes ready during the call */

/* The host is outside gr_run from now on: a waker on another thread
** rings the doorbell, which makes the loop's fd (gr_backend_fd) readable.
** Pairs with gr_sched_hosttimeout's look at rpending (Dekker, as in
** gr_sched_sleep). */
static int hostleave (gr_state *S, int r) {
  atomic_store(&S->idle, GR_IDLE_TIMERS);
  return r;
}

/* The host is outside gr_run from now on, and the goroutines that
** computed during the call (preempted or gave way) wait at the tail of
** the run queue for the next one. An uncaught error of the call's
** goroutines is the call's to return (or to pass to the handler). */
static int hostdone (gr_state *S, gr_g *again, int r) {
  if (r == 0 && S->errlocal) {
    if (S->errhandler == NULL) r = GR_EGOERR;
    else gr_sched_passerrors(S);
  }
  while (again) {
    gr_g *next = again->runnext;
    runq_push(S, again);
    again = next;
  }
  return hostleave(S, r);
}

/* Each round runs the goroutines queued at its start once each. A
** goroutine that computes through its time slice (or gives way) runs once
** per call: it waits apart for the next call, and the time it took does
** not count against GR_RUN_NOWAIT's budget, so that goroutines that
** communicate go on for the budget whatever the ones that compute do.
** GR_RUN_NOWAIT runs rounds while some are ready and the budget lasts,
** and never sleeps; GR_RUN_ONCE returns after the first round that ran
** any, and sleeps until one can; GR_RUN_DEFAULT runs until no goroutine
** is left or none can ever be woken. */
int gr_sched_runhost (lua_State *L, gr_state *S, int mode) {
  uint64_t start = mode == GR_HOSTRUN_NOWAIT ? uv_hrtime() : 0;
  uint64_t spent = 0;   /* NOWAIT: ns in goroutines that computed */
  gr_g *again = NULL, *againtail = NULL;
  int ran = 0;
  atomic_store(&S->idle, 0);
  /* Clears the doorbell's fd, and runs the I/O callbacks that are ready
  ** (they queue the goroutines that wait on I/O). */
  if (atomic_exchange_explicit(&S->rung, 0, memory_order_relaxed) ||
      S->iowait > 0)
    uv_run(&S->loop, UV_RUN_NOWAIT);
  for (;;) {
    if (atomic_load_explicit(&S->rpending, memory_order_acquire))
      gr_sched_takeremote(L, S);
    if (S->nleaked) gr_sched_reap(L, S);
    if (S->errlocal) {
      if (S->errhandler == NULL) return hostdone(S, again, GR_EGOERR);
      gr_sched_passerrors(S);
    }
    S->timerops->fire(L, S);
    if (S->runhead != NULL) {
      gr_g *g, *last = S->runtail;
      do {
        uint64_t t0 = start ? uv_hrtime() : 0;
        g = runq_pop(S);
        if (resume(L, S, g)) {
          g->runnext = NULL;
          if (againtail) againtail->runnext = g;
          else again = g;
          againtail = g;
          if (start) spent += uv_hrtime() - t0;
        }
      } while (g != last && S->runhead != NULL);
      ran = 1;
      if (mode == GR_HOSTRUN_NOWAIT &&
          uv_hrtime() - start - spent >= HOSTBUDGET)
        return hostdone(S, again, 0);
      continue;
    }
    if (mode == GR_HOSTRUN_NOWAIT || (mode == GR_HOSTRUN_ONCE && ran))
      return hostdone(S, again, 0);
    if (again) {   /* ONCE, DEFAULT: they run in the next round */
      S->runhead = again;
      S->runtail = againtail;
      again = againtail = NULL;
      continue;
    }
    /* No goroutine of S is left to wake, no timer to spawn one, and no
    ** parallel goroutine of its pool runs or waits to start. */
    if (S->all == NULL && !S->timerops->pending(S) &&
        !(S->poolops != NULL && S->poolops->canprogress(S)))
      return hostleave(S, 0);
    if (!canwake(S)) {
      if (atomic_load(&S->rpending)) continue;
      return hostleave(S, GR_EDEADLOCK);
    }
    gr_sched_sleep(S, NULL, 1);
  }
}

int64_t gr_sched_hosttimeout (gr_state *S) {
  atomic_store(&S->idle, GR_IDLE_TIMERS);   /* a blocking call reset it */
  /* libuv adds the fds of I/O started since its last run to its backend
  ** fd only when it runs: before the host polls that fd. */
  if (S->iowait > 0) uv_run(&S->loop, UV_RUN_NOWAIT);
  if (S->runhead || S->errlocal || atomic_load(&S->rpending)) return 0;
  return S->timerops->pending(S) ? S->timerops->next(S) : -1;
}


/* --- parking ---------------------------------------------------------- */

static const char resumingkey = 0;   /* coroutine -> thread resuming it */
static const char suspendtoken = 0;  /* what a suspending coroutine yields */
static const char cannotblockkey = 0;  /* the last such error raised */
static const char blockedtoken = 0;  /* what a parked one yields to a resume
                                        that is not its scheduler's */

/* Whether every thread from L up to goroutine g's coroutine was resumed
** by the module's coroutine.resume and can yield, so that a yield of the
** suspend token travels up to g. The chain has no cycle (a coroutine
** cannot resume one that is running); its length is bounded by Lua's
** limit of nested C calls, the cap only guards against a broken table. */
static int cansuspend (lua_State *L, gr_g *g) {
  int ok = 0, depth;
  lua_State *t = L;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &resumingkey) != LUA_TTABLE) {
    lua_pop(L, 1);
    return 0;
  }
  for (depth = 0; depth < 100000; depth++) {
    if (!lua_isyieldable(t)) break;
    if (t == g->co) {
      ok = 1;
      break;
    }
    lua_pushthread(t);
    lua_xmove(t, L, 1);
    lua_rawget(L, -2);
    t = lua_tothread(L, -1);
    lua_pop(L, 1);
    if (t == NULL) break;
  }
  lua_pop(L, 1);
  return ok;
}

/* Whether L runs a finalizer: Lua refuses every lua_gc option there. */
static int infinalizer (lua_State *L) {
  return lua_gc(L, LUA_GCISRUNNING) == -1;
}

/* How the code running on L may block (no lock, no allocation, no raise):
** a goroutine yields to the scheduler; a plain coroutine resumed, through
** coroutine.resume or wrap, by a goroutine suspends up to it; goroutine 1
** and other coroutines run the scheduler in place. It cannot block at
** all inside a C call that cannot yield (a table.sort comparator), in a
** finalizer (it may run anywhere, even inside the scheduler), or where
** the goroutine already waits in place further down the C stack (a
** finalizer or metamethod run by the scheduler on its behalf). */
int gr_sched_blockmode (lua_State *L, gr_state *S) {
  gr_g *g = S->current;
  if (L == g->co && g != S->g1)
    return lua_isyieldable(L) ? GR_BLOCK_YIELD : GR_BLOCK_NO;
  if (L != g->co && g != S->g1 && cansuspend(L, g))
    return GR_BLOCK_SUSPEND;
  if (g->inplace || infinalizer(L)) return GR_BLOCK_NO;
  return GR_BLOCK_INPLACE;
}

/* Raises the error for GR_BLOCK_NO. Requires no lock held. */
/* Whether L runs the message handler of an xpcall for the error that
** gr_sched_cannotblock raised last in this state: the function calling us
** got that very message as its first argument. */
static int handlingcannotblock (lua_State *L) {
  lua_Debug ar;
  int r = 0;
  if (!lua_getstack(L, 1, &ar)) return 0;
  if (lua_getlocal(L, &ar, 1) != NULL) {
    if (lua_type(L, -1) == LUA_TSTRING &&
        lua_rawgetp(L, LUA_REGISTRYINDEX, &cannotblockkey) == LUA_TSTRING) {
      r = lua_rawequal(L, -1, -2);
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  return r;
}

/* Raises "<reason>: cannot block here...". Lua calls an xpcall's message
** handler again for an error raised in it, so a handler that blocks would
** recurse on this error until the C stack runs out ("error in error
** handling"): where the handler is handling this very error, the call
** that would block returns nothing instead, and the handler can return
** the error, which xpcall then returns. */
int gr_sched_cannotblock (lua_State *L, int reason) {
  if (handlingcannotblock(L)) return 0;
  luaL_where(L, 1);
  lua_pushfstring(L, "%s: cannot block here, inside a C call that cannot "
                  "yield (such as a table.sort comparator or a gsub "
                  "callback)", gr_waitreasons[reason]);
  lua_concat(L, 2);
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &cannotblockkey);
  return lua_error(L);
}

/* Prepares g to park: called by the owner before its waiters become
** visible to wakers (before enqueueing them). */
void gr_sched_prepark (gr_g *g, int mode, int reason,
                       void (*cancel) (gr_g *g)) {
  g->inplace = (mode == GR_BLOCK_INPLACE);
  g->suspend = (mode == GR_BLOCK_SUSPEND);
  atomic_store_explicit(&g->woken, 0, memory_order_relaxed);
  g->reason = reason;
  g->cancel = cancel;
}

/* The continuation of every park by yield. Only g's scheduler resumes a
** parked g, clearing g->parked first; anything else that resumes the
** coroutine (a coroutine.resume in user code, which got hold of it) finds
** it still parked: the coroutine yields the blocked token straight back
** and stays parked as it was, and init.lua's resume turns the token into
** an error. */
static int parkk (lua_State *L, int status, lua_KContext ctx) {
  gr_g *g = (gr_g *)ctx;
  if (g->parked) {
    lua_settop(L, g->parktop);   /* drops what the resume passed */
    lua_pushlightuserdata(L, (void *)&blockedtoken);
    return lua_yieldk(L, 1, ctx, parkk);
  }
  return g->parkk(L, status, g->parkctx);
}

/* Parks g until its waker readies it, then finishes with k(L, status,
** ctx): status is LUA_YIELD after a yield, LUA_OK after an in-place wait
** that was woken, or a negative GR_E* when the in-place wait must raise
** (k then removes its waiters and calls gr_errors_raisewait). Requires: the
** waiters of g are enqueued and no lock is held. Use as
** `return gr_sched_park(...)`. */
int gr_sched_park (lua_State *L, gr_state *S, gr_g *g, lua_KContext ctx,
                   lua_KFunction k) {
  int err;
  if (!g->inplace) {
    g->parkk = k;
    g->parkctx = ctx;
    g->parktop = lua_gettop(L);
    g->parked = 1;
    if (!g->suspend) return lua_yieldk(L, 0, (lua_KContext)g, parkk);
    /* L is a plain coroutine: the token parks g */
    lua_pushlightuserdata(L, (void *)&suspendtoken);
    return lua_yieldk(L, 1, (lua_KContext)g, parkk);
  }
  err = gr_sched_wait(L, S, g, 0);
  endhostwait(S, g);
  g->inplace = 0;
  if (err == 0) g->reason = GR_WNONE;  /* kept for the deadlock report */
  return k(L, err == 0 ? LUA_OK : err, ctx);
}


/* --- coroutines that a host resumes (gr_resume) ---------------------- */

/* co runs as a goroutine of its own for the resume (S->current), so that
** a blocking call in it parks by yield: then it stays one, anchored and
** counted, and the scheduler resumes it when it is woken. Otherwise the
** record is dropped and the resume ends as lua_resume's would. It is not
** preempted meanwhile: to the host, a preemption would look like a yield
** of its own coroutine. */
int gr_sched_resumehost (lua_State *L, gr_state *S, lua_State *co,
                         lua_Integer id, int nargs, int *nres) {
  gr_g *g, *prev = S->current;
  int status;
  for (g = S->all; g != NULL; g = g->allnext) {
    int pinned;
    /* A weak goroutine whose coroutine was collected is no match: the
    ** address may be another thread's now. */
    if (g->co != co || g->leaked || (pinned = gr_sched_pinco(L, g)) < 0)
      continue;
    lua_pop(L, pinned);
    *nres = 0;   /* the scheduler's to resume */
    lua_pushliteral(co, "cannot resume a coroutine that waits in a "
                    "goroutine");
    return LUA_ERRRUN;
  }
  if ((g = (gr_g *)calloc(1, sizeof(*g))) == NULL) return GR_ENOMEM;
  g->co = co;
  g->S = S;
  g->id = id;
  g->ref = LUA_NOREF;
  S->current = g;
  status = lua_resume(co, L, nargs, nres);
  S->current = prev;
  if (status == LUA_YIELD && g->parked) {
    lua_pop(co, *nres);
    *nres = 0;
    lua_pushthread(co);
    lua_xmove(co, L, 1);
    g->ref = luaL_ref(L, LUA_REGISTRYINDEX);  /* unref'd in finish() */
    g->allnext = S->all;
    if (S->all) S->all->allprev = g;
    S->all = g;
    atomic_fetch_add_explicit(&numg, 1, memory_order_relaxed);
    return GR_PARKED;
  }
  free(g);
  if (status == LUA_YIELD && *nres == 1 &&
      lua_touserdata(co, -1) == (void *)&blockedtoken) {
    lua_pop(co, 1);   /* a goroutine's: it waits, and goes on waiting */
    *nres = 0;
    lua_pushliteral(co, "cannot resume a coroutine that waits in a "
                    "goroutine");
    return LUA_ERRRUN;
  }
  return status;
}


/* --- spawning ---------------------------------------------------------- */

lua_Integer gr_sched_newid (void) {
  return atomic_fetch_add_explicit(&nextid, 1, memory_order_relaxed);
}

/* The message handler of a goroutine's function: keeps the traceback of
** the place the error was raised in, for the report, and returns the
** error object unchanged (to-be-closed variables receive it as it was
** raised). Runs on the coroutine that raised. */
static int gotrace (lua_State *L) {
  lua_settop(L, 1);
  luaL_traceback(L, L, NULL, 1);
  /* Kept under the coroutine's address, taken out by recorderror. */
  lua_rawsetp(L, LUA_REGISTRYINDEX, L);
  return 1;
}

static int tostringk (lua_State *L) {
  luaL_tolstring(L, 1, NULL);
  return 1;
}

/* The text of the error object at the top: strings and numbers as they
** are; other values through their __tostring, called in protected mode
** (it may raise, or try to block), else "(error object is a T value)". */
static const char *errortext (lua_State *L) {
  int e = lua_gettop(L), t = lua_type(L, e);
  if (t == LUA_TSTRING || t == LUA_TNUMBER) {
    lua_pushvalue(L, e);
    return lua_tostring(L, -1);
  }
  if (luaL_getmetafield(L, e, "__tostring") != LUA_TNIL) {
    lua_pop(L, 1);
    lua_pushcfunction(L, tostringk);
    lua_pushvalue(L, e);
    if (lua_pcall(L, 1, 1, 0) == LUA_OK) return lua_tostring(L, -1);
  }
  return lua_pushfstring(L, "(error object is a %s value)",
                         luaL_typename(L, e));
}

/* Records the error at the top of g's coroutine L as g's uncaught error:
** "goroutine N: msg" and the traceback the message handler kept. */
static void recorderror (lua_State *L, gr_state *S, gr_g *g) {
  const char *msg = errortext(L), *tb = "";
  size_t len;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, L) != LUA_TSTRING)
    lua_pop(L, 1);   /* none: a memory error does not call the handler */
  else {
    lua_pushnil(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, L);
    tb = lua_tolstring(L, -1, &len);
    /* The last frame is the body's own C function: not the user's. */
    if (len >= sizeof(BODYFRAME) - 1 &&
        strcmp(tb + len - (sizeof(BODYFRAME) - 1), BODYFRAME) == 0)
      tb = lua_pushlstring(L, tb, len - (sizeof(BODYFRAME) - 1));
    tb = lua_pushfstring(L, "\n%s", tb);
  }
  gr_sched_posterror(S, g->id, msg, tb);
}

static int gobody_k (lua_State *L, int status, lua_KContext ctx) {
  gr_state *S = (gr_state *)ctx;
  if (status != LUA_OK && status != LUA_YIELD &&
      lua_touserdata(L, -1) != (void *)&gr_sched_stoptoken)
    recorderror(L, S, S->current);
  return 0;
}

/* The function of every goroutine's coroutine: calls the goroutine's
** function (index 3, its arguments above it) in protected mode with a
** continuation. So an error unwinds inside the coroutine, where its
** to-be-closed variables run as the goroutine and may block, as Go's
** deferred calls do, and the goroutine records its own error. Index 1
** holds S, index 2 the message handler (gotrace). */
static int gobody (lua_State *L) {
  gr_state *S = (gr_state *)lua_touserdata(L, 1);
  int status = lua_pcallk(L, lua_gettop(L) - 3, 0, 2, (lua_KContext)S,
                          gobody_k);
  return gobody_k(L, status, (lua_KContext)S);
}

/* Creates a goroutine running the function below the nargs values at the
** top of L, with those values as arguments, and queues it. Pops them. id
** is 0 for a new goroutine, or the id (already counted live) that
** g.parallel gave to the goroutine it queued. */
gr_g *gr_sched_spawn (lua_State *L, gr_state *S, int nargs, lua_Integer id) {
  gr_g *g;
  lua_State *co = lua_newthread(L);
  int ref = luaL_ref(L, LUA_REGISTRYINDEX);  /* unref'd in finish() */
  g = (gr_g *)calloc(1, sizeof(*g));
  /* A new thread has LUA_MINSTACK free slots: ask for more only when the
  ** function, its arguments and gobody's three values need them. */
  if (g == NULL ||
      (nargs + 4 > LUA_MINSTACK && !lua_checkstack(co, nargs + 4))) {
    const char *why = g ? "too many arguments" : "not enough memory";
    free(g);
    luaL_unref(L, LUA_REGISTRYINDEX, ref);
    luaL_error(L, "%s", why);
  }
  lua_pushcfunction(co, gobody);
  lua_pushlightuserdata(co, S);
  lua_pushcfunction(co, gotrace);
  lua_xmove(L, co, nargs + 1);
  g->id = id ? id : gr_sched_newid();
  g->co = co;
  g->ref = ref;
  g->S = S;
  g->nargs = nargs + 3;
  g->allnext = S->all;
  if (S->all) S->all->allprev = g;
  S->all = g;
  if (!id) atomic_fetch_add_explicit(&numg, 1, memory_order_relaxed);
  GR_TRACE(g->tracefn = gr_trace_fname(co, 4);   /* gobody, S, gotrace, f */
           if (!id) g->traceflow = gr_trace_go(g->id, g->tracefn));
  runq_push(S, g);
  return g;
}

/* Counts goroutines queued by g.parallel (+1) or that ended before they
** started (-1). */
void gr_sched_addlive (int delta) {
  atomic_fetch_add_explicit(&numg, delta, memory_order_relaxed);
}

lua_Integer gr_sched_numgoroutine (void) {
  return atomic_load_explicit(&numg, memory_order_relaxed);
}

/* A uniform integer in [0, n): xorshift64* and a multiply-shift. */
uint32_t gr_sched_rand (gr_state *S, uint32_t n) {
  uint64_t x = S->rng;
  x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
  S->rng = x;
  return (uint32_t)(((x * 2685821657736338717ULL) >> 32) * n >> 32);
}

/* --- preemption ---------------------------------------------------------- */

#define MONITOR_TICK   5000000ULL    /* ns between looks at the states, at
                                        most */
#define PREEMPT_AFTER  10000000ULL   /* ns a goroutine may run unpreempted,
                                        by default (g.preempt_slice) */

static uv_once_t monlockonce = UV_ONCE_INIT;
static gr_lock monlock;              /* rank GR_LMONITOR, taken alone */
static uv_cond_t moncond;            /* signalled to stop the monitor */
static gr_state *monstates;          /* protected by monlock */
static int monrunning;               /* protected by monlock */
static uv_thread_t monthread;

static void initmonlock (void) {
  if (gr_lock_init(&monlock, GR_LMONITOR) != 0 || uv_cond_init(&moncond) != 0)
    abort();   /* at the first require: nothing can run without them */
#ifdef __NR_membarrier
  asymmetric = syscall(__NR_membarrier,
                       MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
#endif
}

/* Requires monlock (one hooker at a time). Calls hookf(g, ud) on the
** goroutine g that S runs, if it still runs it, so that g cannot end
** meanwhile; returns whether it did. A Dekker handshake with setrunning:
** the hooker announces g in S->hooking, then reads S->running; the owner
** stores S->running, then reads S->hooking. The membarrier stands for the
** owner's fence: it runs one on the owner's CPU, so either the owner's
** store is visible to the hooker's load, or the owner's load comes after
** it and sees the announcement (and waits). Without membarrier, the
** owner and the hooker both CAS S->running, which the hooker holds at
** GR_BUSY meanwhile. */
static int hookrunning (gr_state *S, gr_g *g, void (*hookf) (gr_g *g,
                        void *ud), void *ud) {
  int hooked = 0;
  GR_ASSERT(gr_lock_held(&monlock));
  if (g == NULL || g == GR_BUSY) return 0;
  if (!asymmetric) {
    if (!atomic_compare_exchange_strong(&S->running, &g, GR_BUSY))
      return 0;
    hookf(g, ud);
    atomic_store_explicit(&S->running, g, memory_order_release);
    return 1;
  }
#ifdef __NR_membarrier
  atomic_store_explicit(&S->hooking, g, memory_order_relaxed);
  if (syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0 &&
      atomic_load_explicit(&S->running, memory_order_acquire) == g) {
    hookf(g, ud);
    hooked = 1;
  }
  atomic_store_explicit(&S->hooking, NULL, memory_order_release);
#endif
  return hooked;
}

/* The one-shot hook: restores the hook it replaced on this goroutine,
** then yields the goroutine if it can (a goroutine inside a C call runs
** on, and the monitor tries again later). The saved hook is the
** goroutine's own: a goroutine hooked while inside a long C call that
** then parks keeps it while others are hooked. */
static void preempthook (lua_State *L, lua_Debug *ar) {
  gr_state *S = gr_state_get(L);
  gr_g *g = S->current;
  gr_lock_lock(&monlock);
  S->monhooked = NULL;   /* it came back to Lua code: not inside a C call */
  if (g->co == L)
    lua_sethook(L, g->savedhook, g->savedmask, g->savedcount);
  else
    lua_sethook(L, NULL, 0, 0);
  gr_lock_unlock(&monlock);
  if (ar->event == LUA_HOOKCOUNT && lua_isyieldable(L)) {
    GR_TRACE(gr_trace_preempt(g->id, 0));
    lua_yield(L, 0);
  }
}

/* Installs the one-shot preemption hook on g, saving the hook it has. */
static void hookpreempt (gr_g *g, void *ud) {
  (void)ud;
  if (lua_gethook(g->co) != preempthook) {
    g->savedhook = lua_gethook(g->co);
    g->savedmask = lua_gethookmask(g->co);
    g->savedcount = lua_gethookcount(g->co);
    lua_sethook(g->co, preempthook, LUA_MASKCOUNT, 1);
    GR_TRACE(gr_trace_preempt(g->id, 1));
  }
}

static void markincall (gr_g *g, void *ud) {
  (void)ud;
  atomic_store_explicit(&g->S->incall, 1, memory_order_relaxed);
}

/* Requires monlock. Hooks the goroutine S is running if it has run for
** its time slice. One of a worker hooked a slice ago whose hook has not
** fired (the count hook fires at Lua instructions only) while its
** thread is awake is inside a C call, or in a coroutine it resumed:
** it is marked (S->incall), and the pool told, each slice it stays. */
static void watch (gr_state *S, uint64_t now) {
  unsigned seq = atomic_load_explicit(&S->runseq, memory_order_relaxed);
  gr_g *g;
  GR_ASSERT(gr_lock_held(&monlock));
  if (seq != S->monseq) {
    S->monseq = seq;
    S->monsince = now;
    S->monhooked = NULL;
    return;
  }
  if (now - S->monsince < atomic_load_explicit(&S->slice,
                                               memory_order_relaxed))
    return;
  g = atomic_load_explicit(&S->running, memory_order_acquire);
  if (S->worker != NULL && g != NULL && g == S->monhooked &&
      !atomic_load(&S->idle)) {
    /* Marked already: the owner has not cleared it, no membarrier. */
    if (atomic_load_explicit(&S->incall, memory_order_relaxed) ||
        hookrunning(S, g, markincall, NULL))
      S->poolops->incall(S);
    S->monsince = now;
    return;
  }
  if (hookrunning(S, g, hookpreempt, NULL)) {
    S->monsince = now;
    S->monhooked = g;
  }
}

/* Requires monlock. The time between two looks: half the shortest slice
** of the watched states, so that a slice lasts from one to one and a half
** times its length, and MONITOR_TICK at most. */
static uint64_t montick (void) {
  uint64_t tick = MONITOR_TICK;
  gr_state *S;
  GR_ASSERT(gr_lock_held(&monlock));
  for (S = monstates; S != NULL; S = S->monnext) {
    uint64_t half = atomic_load_explicit(&S->slice, memory_order_relaxed) / 2;
    if (half < tick) tick = half;
  }
  return tick;
}

/* SIGQUIT: the signal handler (stack.c's) only raises quitsignal, which
** the monitor sees within a tick and answers with quitfn, out of any
** signal context and holding no lock. */
static atomic_int quitsignal;
static void (*_Atomic quitfn) (void);

void gr_sched_setquit (void (*f) (void)) {
  atomic_store(&quitfn, f);
}

void gr_sched_quitsignal (void) {
  atomic_store(&quitsignal, 1);   /* lock-free: async-signal-safe */
}

static void monitor (void *arg) {
  (void)arg;
  gr_trace_nameme("monitor", 0);
  gr_lock_lock(&monlock);
  while (monrunning) {
    gr_state *S;
    uint64_t now;
    void (*f) (void);
    gr_lock_timedwait(&monlock, &moncond, montick());
    if (atomic_exchange(&quitsignal, 0) && (f = atomic_load(&quitfn))) {
      gr_lock_unlock(&monlock);
      f();
      gr_lock_lock(&monlock);
      continue;
    }
    now = uv_hrtime();
    for (S = monstates; S != NULL; S = S->monnext)
      watch(S, now);
  }
  gr_lock_unlock(&monlock);
}

/* Sets S's time slice (S's thread); a shorter one takes effect at the
** monitor's next look, which it brings forward. */
uint64_t gr_sched_setslice (gr_state *S, uint64_t ns) {
  uint64_t prev = atomic_exchange(&S->slice, ns);
  if (ns < prev) {
    gr_lock_lock(&monlock);
    uv_cond_signal(&moncond);
    gr_lock_unlock(&monlock);
  }
  return prev;
}

/* Calls f on every state of the process, under the monitor's lock (a
** state stays alive meanwhile; f takes no lock ranked at or below it). */
void gr_sched_eachstate (void (*f) (gr_state *S, void *ud), void *ud) {
  gr_state *S;
  uv_once(&monlockonce, initmonlock);
  gr_lock_lock(&monlock);
  for (S = monstates; S != NULL; S = S->monnext) f(S, ud);
  gr_lock_unlock(&monlock);
}

static void readid (gr_g *g, void *ud) {
  *(lua_Integer *)ud = g->id;
}

/* Within gr_sched_eachstate's f: the id of the goroutine S's thread
** resumes now; 1 when it runs goroutine 1 (a host state's main chunk),
** 0 when none (a worker between goroutines). */
lua_Integer gr_sched_runningid (gr_state *S) {
  lua_Integer id = 0;
  GR_ASSERT(gr_lock_held(&monlock));
  if (hookrunning(S, atomic_load_explicit(&S->running,
                  memory_order_acquire), readid, &id))
    return id;
  return S->worker == NULL ? 1 : 0;
}

static void hookwith (gr_g *g, void *hook) {
  lua_sethook(g->co, *(lua_Hook *)hook, LUA_MASKCOUNT, 100);
}

/* Installs hook on the goroutine S is running, if any; returns 1 if it
** did. Any thread may call it, holding no lock ranked above the
** monitor's. */
int gr_sched_interrupt (gr_state *S, lua_Hook hook) {
  int done;
  uv_once(&monlockonce, initmonlock);
  gr_lock_lock(&monlock);
  done = hookrunning(S, atomic_load_explicit(&S->running,
                     memory_order_acquire), hookwith, &hook);
  gr_lock_unlock(&monlock);
  return done;
}

/* Counts goroutine 1 of a new host state among the live goroutines (a
** worker state's main thread is no goroutine) and puts the state under
** the monitor, started with the first state. */
void gr_sched_adopt (gr_state *S) {
  if (S->worker == NULL)
    atomic_fetch_add_explicit(&numg, 1, memory_order_relaxed);
  atomic_store(&S->slice, PREEMPT_AFTER);
  uv_once(&monlockonce, initmonlock);
  gr_lock_lock(&monlock);
  S->monprev = NULL;
  S->monnext = monstates;
  if (monstates) monstates->monprev = S;
  monstates = S;
  if (!monrunning)
    monrunning = uv_thread_create(&monthread, monitor, NULL) == 0;
  gr_lock_unlock(&monlock);
}

/* Takes S from the monitor; the last state stops and joins it. */
void gr_sched_forget (gr_state *S) {
  int stop;
  gr_lock_lock(&monlock);
  if (S->monprev) S->monprev->monnext = S->monnext;
  else monstates = S->monnext;
  if (S->monnext) S->monnext->monprev = S->monprev;
  stop = monstates == NULL && monrunning;
  if (stop) {
    monrunning = 0;
    uv_cond_signal(&moncond);
  }
  gr_lock_unlock(&monlock);
  if (stop) uv_thread_join(&monthread);
}

/* At state close: undoes the parking of every goroutine still alive, so
** that no object keeps a waiter that points into this state, then frees
** the records. The coroutines go with the state. */
void gr_sched_closeall (gr_state *S) {
  gr_g *g = S->all;
  while (g) {
    gr_g *next = g->allnext;
    if (g->cancel) g->cancel(g);
    if (!g->leaked)   /* a leak no longer counts */
      atomic_fetch_sub_explicit(&numg, 1, memory_order_relaxed);
    free(g);
    g = next;
  }
  S->leakq = S->weakq = NULL;
  S->all = NULL;
  S->runhead = S->runtail = NULL;
  if (S->g1) {
    free(S->g1);
    S->g1 = NULL;
    if (S->worker == NULL)
      atomic_fetch_sub_explicit(&numg, 1, memory_order_relaxed);
  }
}


/* --- leak detection's part (leak.c does the rest) ---------------------- */

void gr_sched_leakpark (gr_state *S, gr_g *g, int mode,
                        const gr_leakops *ops) {
  if (mode != GR_BLOCK_YIELD || S->leakoff) return;
  g->leakops = ops;
  g->leakprev = NULL;
  g->leaknext = S->leakq;
  if (S->leakq) S->leakq->leakprev = g;
  S->leakq = g;
  g->inleakq = 1;
}

void gr_sched_leakunlist (gr_state *S, gr_g *g) {
  if (!g->inleakq && !g->weak) return;
  if (g->leakprev) g->leakprev->leaknext = g->leaknext;
  else if (g->inleakq) S->leakq = g->leaknext;
  else S->weakq = g->leaknext;
  if (g->leaknext) g->leaknext->leakprev = g->leakprev;
  g->leaknext = g->leakprev = NULL;
  g->inleakq = 0;
}

void gr_sched_weaklist (gr_state *S, gr_g *g) {
  g->leakprev = NULL;
  g->leaknext = S->weakq;
  if (S->weakq) S->weakq->leakprev = g;
  S->weakq = g;
}

const char gr_sched_weakkey = 0;

int gr_sched_pinco (lua_State *L, gr_g *g) {
  if (!g->weak || g->wokeweak) return 0;
  if (!lua_checkstack(L, 2)) return -1;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &gr_sched_weakkey) == LUA_TTABLE &&
      lua_rawgeti(L, -1, g->ref) == LUA_TTHREAD) {
    lua_remove(L, -2);
    return 1;
  }
  lua_pop(L, lua_type(L, -1) == LUA_TTABLE ? 1 : 2);
  return -1;
}

/* Another thread may wake g from now on (an object it waits on is being
** shared): it is not weakened nor reported in this park; if it is weak
** already, it is anchored in the registry again, as by a wake (see
** gr_sched_ready), and its resume does the rest (leak.c). No lock is
** taken and nothing allocated: callable under an object's lock. */
void gr_sched_leakpin (gr_state *S, gr_g *g) {
  if (g->inleakq) gr_sched_leakunlist(S, g);
  if (g->weak && !g->wokeweak && !g->leaked) {
    lua_pushthread(g->co);
    lua_rawseti(g->co, LUA_REGISTRYINDEX, g->ref);
    g->wokeweak = 1;
  }
}

/* The goroutines found leaked were counted out and their waiters dropped
** when they were found (in a finalizer, where S->all may be under
** iteration); here they leave S->all and their coroutines their anchor,
** so that the next collection frees them. */
void gr_sched_reap (lua_State *L, gr_state *S) {
  gr_g *g = S->all;
  while (g != NULL && S->nleaked > 0) {
    gr_g *next = g->allnext;
    if (g->leaked) {
      if (g->allprev) g->allprev->allnext = g->allnext;
      else S->all = g->allnext;
      if (g->allnext) g->allnext->allprev = g->allprev;
      luaL_unref(L, LUA_REGISTRYINDEX, g->ref);  /* its anchor since the
                           leak was found */
      free(g);
      S->nleaked--;
    }
    g = next;
  }
}

/* Where g.go was called, "file.lua:30", interned in S: spawning from the
** same line again costs a lua_getinfo and a comparison with the last one.
** NULL when unknown (no Lua caller, or no memory). */
typedef struct gr_leakstrs {
  const char *lastsrc;  /* the source and line of the last lookup */
  int lastline;
  const char *last;     /* and its text */
  int n, cap;           /* texts in the open-addressing table */
  char **tab;
} gr_leakstrs;

#define MAXCREATED 65536   /* distinct places kept; then "?" */

static uint32_t strhash (const char *s) {
  uint32_t h = 2166136261u;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

static const char *intern (gr_leakstrs *t, const char *text);

const char *gr_sched_intern (gr_state *S, const char *text) {
  if (S->strs == NULL &&
      (S->strs = (gr_leakstrs *)calloc(1, sizeof(gr_leakstrs))) == NULL)
    return NULL;
  return intern(S->strs, text);
}

static const char *intern (gr_leakstrs *t, const char *text) {
  uint32_t i;
  if (t->n * 2 >= t->cap) {
    int cap = t->cap ? t->cap * 2 : 64, j;
    char **tab;
    if (t->n >= MAXCREATED) return "?";
    tab = (char **)calloc((size_t)cap, sizeof(char *));
    if (tab == NULL) return NULL;
    for (j = 0; j < t->cap; j++)
      if (t->tab[j]) {
        uint32_t k = strhash(t->tab[j]) & (uint32_t)(cap - 1);
        while (tab[k]) k = (k + 1) & (uint32_t)(cap - 1);
        tab[k] = t->tab[j];
      }
    free(t->tab);
    t->tab = tab;
    t->cap = cap;
  }
  i = strhash(text) & (uint32_t)(t->cap - 1);
  while (t->tab[i]) {
    if (strcmp(t->tab[i], text) == 0) return t->tab[i];
    i = (i + 1) & (uint32_t)(t->cap - 1);
  }
  if ((t->tab[i] = strdup(text)) == NULL) return NULL;
  t->n++;
  return t->tab[i];
}

static const char *createdat (lua_State *L, gr_state *S) {
  lua_Debug ar;
  char buf[LUA_IDSIZE + 24];
  gr_leakstrs *t = S->strs;
  if (!lua_getstack(L, 1, &ar) || !lua_getinfo(L, "Sl", &ar) ||
      ar.currentline < 0)
    return NULL;
  if (t == NULL) {
    if ((t = (gr_leakstrs *)calloc(1, sizeof(*t))) == NULL) return NULL;
    S->strs = t;
  }
  /* The source string of a live function cannot move: the same address
  ** and line is the same place. */
  if (t->last && ar.source == t->lastsrc && ar.currentline == t->lastline)
    return t->last;
  snprintf(buf, sizeof(buf), "%s:%d", ar.short_src, ar.currentline);
  t->lastsrc = ar.source;
  t->lastline = ar.currentline;
  t->last = intern(t, buf);
  return t->last;
}

/* Frees S's interned texts (at its close, after its goroutines). */
void gr_sched_freestrs (gr_state *S) {
  gr_leakstrs *t = S->strs;
  int i;
  if (t == NULL) return;
  for (i = 0; i < t->cap; i++) free(t->tab[i]);
  free(t->tab);
  free(t);
  S->strs = NULL;
}


/* --- Lua functions ------------------------------------------------------ */

/* Whether the value at idx can be called: a function, or a value whose
** __call is a function (a __call of another type would fail only once
** the value is called, in another goroutine maybe). */
int gr_sched_iscallable (lua_State *L, int idx) {
  int t;
  if (lua_type(L, idx) == LUA_TFUNCTION) return 1;
  t = luaL_getmetafield(L, idx, "__call");
  if (t != LUA_TNIL) lua_pop(L, 1);
  return t == LUA_TFUNCTION;
}

/* Raises a type error unless the value at idx can be called. */
void gr_sched_checkcallable (lua_State *L, int idx) {
  if (!gr_sched_iscallable(L, idx)) luaL_typeerror(L, idx, "function");
}

static int lgo (lua_State *L) {
  gr_state *S = gr_getstate(L);
  gr_g *g;
  gr_sched_checkcallable(L, 1);
  g = gr_sched_spawn(L, S, lua_gettop(L) - 1, 0);
  g->created = createdat(L, S);
  lua_pushinteger(L, g->id);
  return 1;
}

/* The module table's __call: g(f, ...) is g.go(f, ...). */
static int lcall (lua_State *L) {
  lua_remove(L, 1);
  return lgo(L);
}

static int lgosched (lua_State *L) {
  gr_state *S = gr_getstate(L);
  int err;
  switch (gr_sched_blockmode(L, S)) {
    case GR_BLOCK_YIELD:
      S->current->parked = 0;
      return lua_yield(L, 0);
    case GR_BLOCK_INPLACE:
      err = gr_sched_wait(L, S, S->current, 1);
      if (err) gr_sched_raiseerror(L, S);   /* only GR_EGOERR */
      return 0;
    default:  /* cannot yield here: a hint that is ignored */
      return 0;
  }
}

static int lid (lua_State *L) {
  lua_pushinteger(L, gr_getstate(L)->current->id);
  return 1;
}

/* g.preempt_slice([seconds]) -> the previous slice of this state. */
static int lpreemptslice (lua_State *L) {
  gr_state *S = gr_getstate(L);
  uint64_t prev;
  if (lua_isnoneornil(L, 1))
    prev = atomic_load(&S->slice);
  else {
    lua_Number s = luaL_checknumber(L, 1);
    luaL_argcheck(L, s >= GR_SLICE_MIN && s <= GR_SLICE_MAX, 1,
                  "must be a number of seconds from 0.0001 to 3600");
    prev = gr_sched_setslice(S, (uint64_t)(s * 1e9));
  }
  lua_pushnumber(L, (lua_Number)prev / 1e9);
  return 1;
}

static int lnumgoroutine (lua_State *L) {
  lua_pushinteger(L, gr_sched_numgoroutine());
  return 1;
}

static const luaL_Reg funcs[] = {
  {"go", lgo},
  {"_call", lcall},
  {"gosched", lgosched},
  {"id", lid},
  {"numgoroutine", lnumgoroutine},
  {"preempt_slice", lpreemptslice},
  {NULL, NULL}
};

/* Registers the functions in the module table at the top of L, and the
** suspend token and the table of resuming threads that init.lua's
** coroutine.resume maintains. */
void gr_sched_open (lua_State *L) {
  gr_state_setfuncs(L, funcs);
  lua_pushlightuserdata(L, (void *)&suspendtoken);
  lua_setfield(L, -2, "_suspend");
  lua_pushlightuserdata(L, (void *)&blockedtoken);
  lua_setfield(L, -2, "_blocked");
  gr_state_weaktable(L, &resumingkey);
  lua_setfield(L, -2, "_resuming");
}
