/*
** sched.h -- goroutines and the per-state scheduler.
**
** A goroutine is a Lua coroutine anchored in the registry from spawn to
** death, plus a gr_g record (malloc'd, owned by its state); while it is
** parked on objects only its own state can reach, leak detection may
** move the anchor to those objects' handles (leak.c says where).
** Goroutines of one state run only on the thread that currently runs that state, one at
** a time, in FIFO order.
**
** Parking: a blocking operation enqueues a gr_waiter on an object (a
** channel, a wait group...) under the object's lock, drops the lock, then
** parks: a goroutine yields to the scheduler (lua_yieldk with a
** continuation that finishes the operation); the main chunk (goroutine 1)
** and plain coroutines, which cannot yield to the scheduler, run the
** scheduler in place until they are woken ("in-place" blocking).
**
** Waking (gr_sched_ready) may happen on any thread: it only queues the
** goroutine for its state's thread, or sets the in-place flag, and rings
** that state's loop when the waker runs elsewhere. The waker never touches
** the goroutine's Lua stack: values travel in the gr_waiter and are pushed
** by the owner thread in the continuation.
*/
#ifndef GR_SCHED_H
#define GR_SCHED_H

#include <uv.h>

#include "gr.h"
#include "copy.h"
#include "wait.h"   /* the waiter type only: wait.c is a layer above */

/* Why a goroutine is parked; the deadlock report prints the text. */
enum {
  GR_WNONE, GR_WCHANRECV, GR_WCHANSEND, GR_WSELECT, GR_WSELECTNOCASES,
  GR_WSLEEP, GR_WWAITGROUP, GR_WMUTEX, GR_WONCE, GR_WRWRLOCK, GR_WRWLOCK,
  GR_WCOND, GR_WSEMACQUIRE, GR_WIO
};
extern const char *const gr_waitreasons[];

/* Raised (as a light userdata of its address) to end a goroutine that
** must stop, such as at shutdown: the goroutine ends without a report. */
extern const char gr_sched_stoptoken;

/* What leak detection needs of a park that it may weaken (the operation's
** file provides it; leak.c uses it, on g's state's thread only). */
typedef struct gr_leakops {
  /* Pushes onto L the handles whose reachability decides whether g can
  ** be woken (one per object it waits on; a view's root handle), read
  ** from the top frame of g's parked coroutine; returns their count. */
  int (*roots) (lua_State *L, gr_g *g);
  /* Takes g's waiters out of their queues for good and drops what they
  ** hold: g was found leaked (L: its state's thread). */
  void (*drop) (lua_State *L, gr_g *g);
} gr_leakops;

/* One goroutine. */
struct gr_g {
  lua_Integer id;       /* 1 for the main chunk */
  lua_State *co;        /* its coroutine (the main thread for goroutine 1) */
  gr_state *S;          /* owning state (immutable) */
  int ref;              /* registry ref anchoring co; LUA_NOREF for g1;
                           released once, in finish() or by the reap of
                           a leak (leak.c); holds false while weak */
  /* owner thread only: */
  int nargs;            /* arguments on co's stack for its first resume */
  gr_g *runnext;        /* link in the run queue or the remote queue */
  gr_g *allprev, *allnext;  /* link in S->all */
  gr_waiter w;          /* the waiter of a single (non-select) operation */
  struct gr_selblock *sel;  /* select: its waiters while parked */
  gr_timer *sleep;      /* time.sleep: its timer while parked */
  void (*cancel) (gr_g *g);  /* undoes the parking at state close: removes
                           the waiters still queued, drops their refs */
  /* owner thread only, while parked by a yield: */
  lua_KFunction parkk;  /* the operation's continuation, and its */
  lua_KContext parkctx; /* context (gr_sched_park's own continuation */
  int parktop;          /* checks who resumes); the stack top to keep */
  /* (bytes: the record of a million goroutines stays small) */
  unsigned char parked; /* set before yielding to wait; cleared by resume */
  unsigned char reason; /* GR_W*: what it waits for while parked */
  /* written by the owner before its waiters are queued, read by wakers: */
  unsigned char inplace;  /* blocking in place */
  unsigned char suspend;  /* parked through a plain coroutine's yield */
  /* owner thread only: */
  unsigned char hostwait; /* parked on a host channel: counted in
                           S->hostwait until it runs again */
  /* written by waker, read by owner after the wake: */
  atomic_int woken;     /* in-place blocker: set once by its waker */
  atomic_int seldone;   /* select: the waker that CASes 0->1 completes it */
  int selwin;           /* select: index of the case that completed */
  /* the trace (trace.h), owner thread only but traceflow, which its
  ** single waker writes before it readies it: */
  const char *tracefn;  /* the function's name, or NULL: not asked yet */
  uint64_t traceflow;   /* the flow to its next run (a wake), or 0 */
  /* protected by monlock: */
  int savedmask, savedcount;  /* restored when the preemption hook fires */
  lua_Hook savedhook;   /* the hook that preemption replaced on co */
  /* leak detection (leak.c), owner thread only: */
  const gr_leakops *leakops;  /* set by a park that leak detection
                           may weaken (objects of this state only), until
                           the resume; NULL otherwise */
  gr_g *leaknext, *leakprev;  /* link in S->leakq, or S->weakq while weak */
  const char *where;    /* while weak: where it blocked, interned in S */
  const char *created;  /* "file.lua:30" where g.go was called, interned
                           by S (leak.c), or NULL */
  unsigned char inleakq;  /* in S->leakq: parked weakable, still strong */
  unsigned char weak;   /* anchored by its objects' handles (ref false):
                           in S->weakq; co may be freed once the weak
                           table at gr_sched_weakkey no longer holds it */
  unsigned char wokeweak;  /* readied while weak: anchored in the registry
                           again by the wake; resume does the rest */
  unsigned char leaked; /* found leaked: waits for the reap (leak.c); co
                           is never read again */
};

/* An uncaught goroutine error kept as a C string "goroutine N: msg" with
** its traceback, so that it can cross states to its host. */
typedef struct gr_errmsg {
  struct gr_errmsg *next;
  size_t len;
  char msg[];
} gr_errmsg;

/* The idle and deadlock policy of a state that has a worker pool: the
** pool (parallel.c, a layer above) installs it in S->poolops, so that
** the scheduler and the error report never call upwards. */
typedef struct gr_poolops {
  /* Spins briefly for work; returns 1 when some came (me: an in-place
  ** blocker whose wake counts as work, or NULL). */
  int (*spin) (gr_state *S, gr_g *me);
  /* Whether a thread of the pool other than S's may still make
  ** progress (and so wake S's goroutines). */
  int (*canprogress) (gr_state *S);
  /* Whether S's thread must not go to sleep: a job waits for it, or the
  ** pool is stopping. */
  int (*mustwake) (gr_state *S);
  /* S's thread goes to sleep in its loop (asleep 1, with timers pending
  ** or not) or wakes from it (asleep 0). */
  void (*sleeping) (gr_state *S, int asleep, int timers);
  /* The state whose goroutine 1 raises S's uncaught errors. */
  gr_state *(*host) (gr_state *S);
  /* Hands e, an uncaught error of a goroutine of the worker state S, to
  ** the host whose goroutine 1 raises it (gr_sched_mailerror); S's
  ** thread, holding no lock. */
  void (*deliver) (gr_state *S, struct gr_errmsg *e);
  /* The monitor found the worker state S inside a call that the
  ** preemption hook cannot reach (S->incall): the pool may lend a thread.
  ** Called under the monitor's lock: it waits for no lock. */
  void (*incall) (gr_state *S);
  /* The goroutine of S that was inside such a call returned from its
  ** resume (S's thread, holding no lock). */
  void (*returned) (gr_state *S);
  /* Calls f on every worker state of S's pool, under the pool's lock. */
  void (*eachworker) (gr_state *S, void (*f) (gr_state *W, void *ud),
                      void *ud);
} gr_poolops;

/* The timers of a state, as its scheduler sees them: installed by
** timer.c (a layer above) when the state is made. */
typedef struct gr_timerops {
  /* Fires the timers of S whose deadline has passed (S's thread). */
  void (*fire) (lua_State *L, gr_state *S);
  /* Whether a timer of S can still wake something by itself. */
  int (*pending) (gr_state *S);
  /* Arms the loop's timer at the earliest deadline, before S sleeps. */
  void (*arm) (gr_state *S);
  /* Ns until the earliest deadline (0: due), or -1 without timers. */
  int64_t (*next) (gr_state *S);
} gr_timerops;

/* The scheduler of one Lua state. */
struct gr_state {
  lua_State *L;         /* main thread of the state (immutable) */
  gr_statebox *box;     /* its anchor in the registry (state.c) */
  gr_g *g1;             /* goroutine 1: the main chunk (immutable) */
  /* owner thread only: */
  gr_g *current;        /* goroutine on whose behalf code runs now */
  gr_g *runhead, *runtail;  /* FIFO run queue */
  gr_g *all;            /* every live goroutine except g1 */
  uint64_t rng;         /* xorshift state for select */
  struct gr_timerheap *timers;  /* timer.c */
  const gr_timerops *timerops;  /* timer.c: set with timers */
  void *selspare;       /* select.c: blocks of waiters kept for reuse */
  int selsparecap;      /* select.c: the waiters they have room for */
  void *iospare;        /* stream.c: read buffers kept for reuse */
  gr_pack *sparepack;   /* chan.c: the small pack of the last string a
                           goroutine received from a host channel, for
                           the next receive to give back to one */
  struct gr_errmsg *errlocal, *errlocaltail;  /* uncaught errors waiting
                           to be raised in goroutine 1 */
  void (*errhandler) (lua_State *L, const char *msg, void *ud);  /* an
                           embedding host's (gr_set_error_handler): gets
                           the uncaught errors instead of goroutine 1 */
  void *errud;          /* errhandler's argument */
  int embedded;         /* loaded by gr_open: the close never exits */
  void (*hostclose) (gr_state *S, void *ud);  /* the embedding layer's, run
                           first when S closes (gr_set_loop), or NULL */
  void *hostcloseud;    /* hostclose's argument */
  int gcstress;         /* full collection at every scheduling point */
  int inhostrun;        /* gr_run is on the stack (embed.c): a finalizer
                           that runs between goroutines cannot re-enter */
  int hostwait;         /* goroutines parked on a host channel (among
                           other waits, for select): a host thread may
                           wake them, so S is not deadlocked */
  int iowait;           /* goroutines queued on I/O handles (stream.c) or
                           file requests (gos.c), plus signals watched
                           (gsignal.c): the world outside may wake them */
  unsigned iopoll;      /* scheduling steps since the loop was polled */
  uv_loop_t loop;       /* timers and wakeups of this state */
  uv_async_t async;     /* doorbell rung by remote wakers */
  uv_timer_t uvtimer;   /* armed at the earliest of S->timers */
  /* preemption (the monitor thread of sched.c): */
  _Atomic(gr_g *) running;  /* goroutine being resumed; NULL between
                           resumes and for goroutine 1; GR_BUSY while the
                           monitor hooks it (without membarrier) */
  _Atomic(gr_g *) hooking;  /* the goroutine that a hooker (holding
                           monlock) is about to hook, or NULL (with
                           membarrier) */
  atomic_uint runseq;   /* bumped by every resume */
  atomic_ullong slice;  /* ns a goroutine may run before the monitor
                           preempts it (g.preempt_slice; any thread reads) */
  atomic_int incall;    /* set by the monitor, while it holds the running
                           goroutine (hookrunning), when that goroutine has
                           not reached the preemption hook for a slice:
                           it is inside a C call; cleared by S's thread
                           when that resume returns */
  gr_g *monhooked;      /* protected by monlock: the goroutine the monitor
                           hooked whose hook has not fired since */
  unsigned monseq;      /* monitor only: runseq when last seen changing */
  uint64_t monsince;    /* monitor only: when runseq last changed */
  gr_state *monnext, *monprev;  /* protected by monlock: watched states */
  /* parallel goroutines (parallel.c): */
  struct gr_pool *pool; /* the worker pool this state spawns into, or NULL
                           (a host state creates it on first g.parallel;
                           a worker state shares its host's) */
  struct gr_worker *worker;  /* the worker running this state, or NULL */
  const gr_poolops *poolops;  /* the pool's policy, set with pool */
  atomic_int idle;      /* 0 while its thread runs; GR_IDLE_TIMERS or
                           GR_IDLE_DONE while it sleeps in uv_run, or, for
                           an embedding host, while it is outside gr_run */
  atomic_int rung;      /* the doorbell was rung since the host's last
                           gr_run: its loop must run to clear it */
  /* protected by rlock: */
  gr_mutex rlock;
  gr_g *rhead, *rtail;  /* goroutines readied by other threads */
  struct gr_errmsg *errors, *errtail;  /* uncaught errors of goroutines of
                           other threads, not yet seen by the owner */
  atomic_int rpending;  /* 1 when rhead or errors may be non-empty, or a
                           dump is asked for */
  unsigned dumpgen;     /* a dump request not yet answered (stack.c), 0 */
  /* owner thread only: */
  void (*ondump) (lua_State *L, gr_state *S, unsigned gen);  /* stack.c's:
                           answers dump request gen at a scheduling point */
  /* leak detection (leak.c), owner thread only: */
  gr_g *leakq;          /* parked goroutines that may be weakened */
  gr_g *weakq;          /* the weak ones */
  int nleaked;          /* goroutines found leaked, not yet reaped */
  struct gr_leakreport *reports, **reportstail;  /* leaks found, not yet
                           returned by g.leaks() */
  struct gr_leakstrs *strs;  /* the interned "file:line" texts */
  void (*strengthen) (lua_State *L, gr_g *g);  /* leak.c's: makes the weak
                           g, woken, strong again before it runs */
  unsigned char leakoff;  /* GOROUTINES_DEBUG=leakcheck=0 */
  unsigned char leakprint;  /* GOROUTINES_DEBUG=leaks: print at close */
};

/* Values of S->idle: asleep with timers pending, or with nothing. */
enum { GR_IDLE_TIMERS = 1, GR_IDLE_DONE = 2 };

/* Modes of blocking, decided before the goroutine parks: the goroutine
** yields to the scheduler; a plain coroutine that a goroutine resumed
** through the module's coroutine.resume yields a token that each resume
** in the chain passes up, so that the goroutine parks (SUSPEND); the code
** runs the scheduler in place; it cannot block at all; not asked yet
** (gr_sched_quickmode). */
enum { GR_BLOCK_YIELD, GR_BLOCK_SUSPEND, GR_BLOCK_INPLACE, GR_BLOCK_NO,
       GR_BLOCK_ASK };

/* How the code on L may block (GR_BLOCK_*). It takes no lock, allocates
** nothing and raises nothing: it may be asked under an object's lock. */
int gr_sched_blockmode (lua_State *L, gr_state *S);
/* gr_sched_blockmode where it costs nothing: a goroutine on its own
** coroutine; elsewhere GR_BLOCK_ASK, and the caller asks
** gr_sched_blockmode (which looks for a finalizer or a chain of resumes:
** too dear for an operation that does not block) once it would block. */
static inline int gr_sched_quickmode (lua_State *L, gr_state *S) {
  gr_g *g = S->current;
  if (L == g->co && g != S->g1)
    return lua_isyieldable(L) ? GR_BLOCK_YIELD : GR_BLOCK_NO;
  return GR_BLOCK_ASK;
}
/* Raises "<reason>: cannot block here..." (for GR_BLOCK_NO). */
int gr_sched_cannotblock (lua_State *L, int reason);
/* Prepares g to park, before its waiters become visible to wakers. */
void gr_sched_prepark (gr_g *g, int mode, int reason,
                       void (*cancel) (gr_g *g));
/* Parks g (yield, suspend or in place), then finishes with k. */
int gr_sched_park (lua_State *L, gr_state *S, gr_g *g, lua_KContext ctx,
                   lua_KFunction k);
/* Makes the parked g runnable, from any thread (S: the caller's). */
void gr_sched_ready (gr_state *S, gr_g *g);
/* Runs the scheduler in place until me is woken: 0 or a GR_E* code. */
int gr_sched_wait (lua_State *L, gr_state *S, gr_g *me, int runonly);
/* Posts goroutine id's uncaught error to its host's mailbox. */
void gr_sched_posterror (gr_state *S, lua_Integer id, const char *msg,
                        const char *traceback);
/* Queues e, an uncaught error from another thread, in the mailbox of the
** host state H and rings it (any thread; H must be alive). */
void gr_sched_mailerror (gr_state *H, gr_errmsg *e);
/* Hands goroutine 1's uncaught errors to S->errhandler, oldest first
** (S's thread, where goroutine 1 runs; requires a handler). */
void gr_sched_passerrors (gr_state *S);
/* Raises goroutine 1's oldest uncaught goroutine error. */
void gr_sched_raiseerror (lua_State *L, gr_state *S);
/* Resumes co for its host (gr_resume), as goroutine id for the resume:
** as lua_resume, or GR_PARKED when co blocked and became goroutine id of
** S; GR_ENOMEM. */
int gr_sched_resumehost (lua_State *L, gr_state *S, lua_State *co,
                         lua_Integer id, int nargs, int *nres);
/* A new goroutine of the function and nargs arguments on top of L. */
gr_g *gr_sched_spawn (lua_State *L, gr_state *S, int nargs, lua_Integer id);
/* One scheduling step of a worker: 0 ran none, 1 ran one, 2 requeued. */
int gr_sched_runonce (lua_State *L, gr_state *S);
/* Modes of gr_sched_runhost (goroutines.h's GR_RUN_*). */
enum { GR_HOSTRUN_DEFAULT, GR_HOSTRUN_ONCE, GR_HOSTRUN_NOWAIT };
/* Runs S's scheduler for its host (gr_run), from its main thread L
** outside any goroutine: 0, GR_EGOERR (an uncaught error for main) or
** GR_EDEADLOCK. */
int gr_sched_runhost (lua_State *L, gr_state *S, int mode);
/* What the host's poll loop waits for: 0 when S has work now, else the
** ns until its next timer, or -1 with nothing pending (S's thread). */
int64_t gr_sched_hosttimeout (gr_state *S);
/* Sleeps in S's loop until a timer is due or another thread kicks S. */
void gr_sched_sleep (gr_state *S, gr_g *me, int spin);
/* Rings S's doorbell if its thread sleeps (any thread). */
void gr_sched_kick (gr_state *S);
/* Hooks the goroutine S is running, if any (any thread). */
int gr_sched_interrupt (gr_state *S, lua_Hook hook);
/* Whether the value at idx can be called (a function, or a function as
** __call); raises a type error unless it can. */
int gr_sched_iscallable (lua_State *L, int idx);
void gr_sched_checkcallable (lua_State *L, int idx);
/* The next goroutine id (process-wide). */
lua_Integer gr_sched_newid (void);
/* g, about to park (after gr_sched_prepark), waits on a host channel:
** a host thread may wake it, so its state is not deadlocked while it
** waits. Counted until g runs again. Owner thread. */
static inline void gr_sched_hostwait (gr_g *g) {
  if (!g->hostwait) {
    g->hostwait = 1;
    g->S->hostwait++;
  }
}
/* Counts goroutines that g.parallel queued (+1) or dropped (-1). */
void gr_sched_addlive (int delta);
/* Live goroutines of every state. */
lua_Integer gr_sched_numgoroutine (void);
/* A uniform integer in [0, n), from S's generator. */
uint32_t gr_sched_rand (gr_state *S, uint32_t n);
/* Asks S for the dump of its goroutines (request gen, not 0): S's thread
** calls S->ondump at its next scheduling point. Any thread. */
void gr_sched_askdump (gr_state *S, unsigned gen);
/* Takes what other threads handed over to S (and answers a dump
** request); S's thread. */
void gr_sched_takeremote (lua_State *L, gr_state *S);
/* Calls f on every state of the process, under the monitor's lock. */
void gr_sched_eachstate (void (*f) (gr_state *S, void *ud), void *ud);
/* In gr_sched_eachstate's f: the id of the goroutine S runs now (1 for a
** host's main chunk, 0 for none). */
lua_Integer gr_sched_runningid (gr_state *S);
/* Sets what the monitor thread runs, holding no lock, once
** gr_sched_quitsignal was called (SIGQUIT; stack.c). */
void gr_sched_setquit (void (*f) (void));
/* Asks the monitor for the SIGQUIT action; async-signal-safe. */
void gr_sched_quitsignal (void);
/* The range of a time slice, in seconds (g.preempt_slice). */
#define GR_SLICE_MIN  0.0001
#define GR_SLICE_MAX  3600.0
/* Sets S's time slice to ns (> 0) and returns the previous one. */
uint64_t gr_sched_setslice (gr_state *S, uint64_t ns);
/* Counts a new state's goroutine 1 and puts S under the monitor. */
void gr_sched_adopt (gr_state *S);
/* Takes S from the monitor (the last state stops the monitor). */
void gr_sched_forget (gr_state *S);
/* At S's close: undoes every parked goroutine and frees the records. */
void gr_sched_closeall (gr_state *S);
/* Lets leak detection weaken g, which parks in mode on objects of S
** alone (not shared, no timer or host behind them), described by ops. */
void gr_sched_leakpark (gr_state *S, gr_g *g, int mode,
                        const gr_leakops *ops);
/* Takes g out of S->leakq or S->weakq if it is there (S's thread). */
void gr_sched_leakunlist (gr_state *S, gr_g *g);
/* Puts g, weak now, in S->weakq. */
void gr_sched_weaklist (gr_state *S, gr_g *g);
/* g, parked, may be woken by another thread from now on: leak detection
** keeps it (S: g's state, its thread; no Lua call, no raise). */
void gr_sched_leakpin (gr_state *S, gr_g *g);
/* Frees the goroutines found leaked (S's thread, not in a finalizer). */
void gr_sched_reap (lua_State *L, gr_state *S);
/* Frees the texts of g->created (at S's close). */
void gr_sched_freestrs (gr_state *S);
/* text interned in S until its close, or NULL without memory. */
const char *gr_sched_intern (gr_state *S, const char *text);
/* The registry key of the weak-valued table: ref -> coroutine of a weak
** goroutine (cleared by the collector once the coroutine is garbage). */
extern const char gr_sched_weakkey;
/* Whether g->co may be read (S's thread): 0 when g is strong; 1 when it
** is weak and alive, pushed so that it stays alive while it is read; -1
** when the collector found it garbage (nothing pushed). */
int gr_sched_pinco (lua_State *L, gr_g *g);
/* Registers go, gosched, id, numgoroutine in the module table. */
void gr_sched_open (lua_State *L);

#endif
