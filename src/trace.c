/*
** trace.c -- the execution trace: per-thread event buffers and the writer
** thread that turns them into trace-event JSON while the program runs.
**
** Each thread that records an event gets a record (tthread) at its first
** event, kept for the life of the process (its thread-local pointer stays
** valid), with a list of chunks of events. The thread is the only one
** that fills its chunks: it publishes each event with a release store of
** the chunk's count, and a full chunk by linking the next one. The writer
** thread reads behind it (one producer, one consumer per thread), every
** WRITER_TICK, and gives a chunk back to its thread (t->ret) once it is
** drained and its successor is linked; the thread fills it again. So an
** emit takes no lock and never waits for I/O, and in steady state it
** mallocs no chunk: fresh memory costs a page fault per 4 KiB, a third of
** a traced switch's time when every chunk was new.
**
** Invariants:
**   Only a thread's own emits touch its t->cur, its spares and its stack
**     of slices, and they do only while t->busy is 1 and gr_trace_on was 1
**     after it was set (a Dekker handshake with gr_trace_stop, which clears
**     gr_trace_on and then waits for t->busy to be 0: from then on no
**     emit touches a chunk, and the stopper drains and frees them all).
**     The fence between each side's store and load is the stopper's
**     membarrier where the kernel has it (an emit then takes no locked
**     instruction), else a sequentially consistent store in the emit.
**   A chunk is in exactly one place: on its thread's list (first..cur,
**     the writer reading behind), given back (t->ret, pushed by the writer
**     only), or spare (owner only). Nothing is kept from one trace to the
**     next.
**   Per thread, events are in the order of their timestamps (one clock,
**     stamp(), read by the thread that records them; the writer turns
**     them into ns and never writes one below the last of the thread).
**   The writer closes, at the end of the trace, the slices still open, so
**     that every "B" has its "E" on the same thread.
** Lock order: life (GR_LTRACELIFE: start and stop) before reg (GR_LTRACE:
**   the list of thread records, the table of names, the writer's
**   condition), a leaf: an emit takes it at a thread's first event only,
**   and gr_trace_fname to intern a name, under any other lock.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#ifdef __linux__
#include <linux/membarrier.h>
#endif
#if defined(__x86_64__) && defined(__linux__)
#include <x86intrin.h>
#define HAVE_TSC 1
#endif

#include "trace.h"

atomic_int gr_trace_on = 0;

/* Kinds of events. EPARSIZE carries what EPAR's record has no room for,
** and is recorded just before it. */
enum { EBEGIN, EEND, EWAKE, EGO, EPAR, EPARSIZE, EPREEMPT, EPREEMPTREQ, EGC };

/* An event: 32 bytes, two to a cache line. The writer reads every line
** that an emit writes, from the other core, and the thread writes it again
** when the chunk comes back: the fewer lines an event takes, the less the
** program pays for the trace. */
typedef struct trec {
  uint64_t ts;          /* stamp() when it happened */
  uint64_t idkind;      /* the goroutine it is about << 8 | the kind */
  union {
    const char *s;      /* by kind: a function's name, a reason, a state */
    uint64_t u;         /* EPARSIZE: the ns of the copy */
  } x;
  uint64_t a;           /* by kind: a flow id; EPARSIZE: the bytes */
} trec;

#define CHUNKCAP 2048   /* events per chunk: 64 KiB, below malloc's mmap
                           threshold */

typedef struct chunk {
  _Atomic(struct chunk *) next;   /* set once, by the owner, when full */
  atomic_uint n;        /* events published (release by the owner) */
  trec r[CHUNKCAP];
} chunk;

#define STACKMAX 16     /* nested runs of goroutines on one thread */

/* A goroutine slice of a thread: the one it runs now, and those that it
** interrupted (goroutine 1, whose blocking call runs the others). */
typedef struct slice {
  lua_Integer id;
  const char *fn;
  unsigned char open;     /* its "B" is written and its "E" not yet */
  unsigned char blocked;  /* blocked in place: not open again when the
                             slice above it ends */
} slice;

typedef struct tthread {
  struct tthread *next; /* in the list of records (immutable once in) */
  int tid;              /* the track's number (immutable) */
  char name[32];        /* the track's name (immutable) */
  atomic_int busy;      /* 1 while the owner is inside an emit */
  _Atomic(chunk *) first;  /* the first chunk of the trace, or NULL: set
                           by the owner, read by the writer to begin */
  _Atomic(chunk *) ret; /* chunks drained, linked by next: pushed by the
                           writer, taken all at once by the owner */
  /* owner only, inside an emit (the stopper while none can be): */
  chunk *cur;           /* the chunk it fills, or NULL */
  chunk *spare, *sparetail;  /* chunks taken from ret, to fill next */
  unsigned gen;         /* the trace its stack belongs to */
  uint64_t flowseq;     /* flows it started (newflow) */
  int depth, over;      /* slices on the stack; nested beyond STACKMAX */
  slice stk[STACKMAX];
  /* the writer only (the starter and the stopper while it does not run): */
  chunk *wchunk;        /* the chunk it reads, or NULL before the first */
  unsigned wdone;       /* events of wchunk written */
  unsigned wgen;        /* the trace whose thread name it wrote */
  int wopen;            /* slices written open ("B" without its "E") */
  uint64_t wlast;       /* the last timestamp written */
  char wpre[64];        /* ","pid":P,"tid":T,"ts":, made once a trace */
  uint64_t wbytes, wns; /* the last EPARSIZE's, for the EPAR after it */
  size_t wprelen;       /* its length, 0 before it is made */
} tthread;

static uv_once_t once = UV_ONCE_INIT;
static gr_lock life;    /* rank GR_LTRACELIFE: start, stop */
static gr_lock reg;     /* rank GR_LTRACE: threads, names, wcond */
static uv_cond_t wcond; /* wakes the writer to stop */
static tthread *threads;  /* protected by reg */
static int ntids;       /* protected by reg */
static atomic_uint gen; /* the current trace's number (bumped at start) */
static atomic_ullong dropped;  /* events lost for want of memory */

/* Protected by life: */
static int active;      /* a trace is being recorded */
static const void *owner;  /* the state whose close stops it */
static int nstates;     /* states made and not closed */
static uv_thread_t writer;
static int wstop;       /* protected by reg: the writer must end */
static FILE *out;
static uint64_t t0;     /* stamp() at start */
static uint64_t t0ns;   /* uv_hrtime() at start */
static double nsper = 1;  /* ns per unit of stamp(): the writer's */
static long pid;
static int wfirst;      /* no event written yet (the writer's) */

static void init (void) {
  if (gr_lock_init(&life, GR_LTRACELIFE) != 0 ||
      gr_lock_init(&reg, GR_LTRACE) != 0 || uv_cond_init(&wcond) != 0)
    abort();   /* at the first use: a trace cannot run without them */
}


/* --- names --------------------------------------------------------------- */

/* Interned names, already escaped for JSON: never freed, so that a
** goroutine keeps a pointer to its own across traces. Protected by reg. */
static char **names;
static size_t nnames, namecap;

static uint32_t hash (const char *s) {
  uint32_t h = 2166136261u;
  while (*s) h = (h ^ (unsigned char)*s++) * 16777619u;
  return h;
}

/* The interned copy of s, escaped; NULL without memory. Requires reg. */
static const char *intern (const char *s) {
  size_t i, len = 0;
  char *e;
  const char *p;
  GR_ASSERT(gr_lock_held(&reg));
  if (nnames * 2 >= namecap) {
    size_t ncap = namecap ? namecap * 2 : 256;
    char **nt = (char **)calloc(ncap, sizeof(*nt));
    if (nt == NULL) return NULL;
    for (i = 0; i < namecap; i++)
      if (names[i]) {
        size_t j = hash(names[i]) & (ncap - 1);
        while (nt[j]) j = (j + 1) & (ncap - 1);
        nt[j] = names[i];
      }
    free(names);
    names = nt;
    namecap = ncap;
  }
  /* The escaped form is the key: escaping is a function of s. */
  for (p = s; *p; p++) len += (*p == '"' || *p == '\\') ? 2 :
                              ((unsigned char)*p < 0x20 ? 6 : 1);
  if ((e = (char *)malloc(len + 1)) == NULL) return NULL;
  for (p = s, len = 0; *p; p++) {
    unsigned char ch = (unsigned char)*p;
    if (ch == '"' || ch == '\\') { e[len++] = '\\'; e[len++] = (char)ch; }
    else if (ch < 0x20) len += (size_t)sprintf(e + len, "\\u%04x", ch);
    else e[len++] = (char)ch;
  }
  e[len] = '\0';
  for (i = hash(e) & (namecap - 1); names[i]; i = (i + 1) & (namecap - 1))
    if (strcmp(names[i], e) == 0) {
      free(e);
      return names[i];
    }
  names[i] = e;
  nnames++;
  return e;
}

const char *gr_trace_fname (lua_State *co, int idx) {
  lua_Debug ar;
  char buf[LUA_IDSIZE + 32];
  const char *r;
  if (idx > 0) {
    if (!lua_checkstack(co, 1)) return NULL;
    lua_pushvalue(co, idx);
    lua_getinfo(co, ">S", &ar);
  }
  else {
    /* The bottom frame is the goroutine's body, a C function, and the one
    ** above it the goroutine's function; a coroutine that a host resumed
    ** (gr_resume) has its own function at the bottom. */
    int level = 0;
    while (lua_getstack(co, level + 1, &ar)) level++;
    if (!lua_getstack(co, level, &ar) || !lua_getinfo(co, "S", &ar))
      return NULL;
    if (ar.what[0] == 'C' && level > 0 &&
        (!lua_getstack(co, level - 1, &ar) || !lua_getinfo(co, "S", &ar)))
      return NULL;
  }
  if (ar.what[0] == 'C') snprintf(buf, sizeof(buf), "[C]");
  else snprintf(buf, sizeof(buf), "%s:%d", ar.short_src, ar.linedefined);
  uv_once(&once, init);
  gr_lock_lock(&reg);
  r = intern(buf);
  gr_lock_unlock(&reg);
  return r;
}


/* --- the clock ------------------------------------------------------------ */

/* Events are stamped with the CPU's time-stamp counter where the kernel
** keeps its own time with it (it has then checked that the counter is
** invariant and the same on every core): it reads in half the time of
** clock_gettime, and a traced switch reads the clock three times. Else
** with uv_hrtime. Decided at the first start, for the life of the process,
** so that no event of one clock is read with the other. */
static atomic_int clocktsc;

static int tsc_is_kernel_clock (void) {
#ifdef HAVE_TSC
  char buf[16] = "";
  FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/"
                  "current_clocksource", "r");
  if (f == NULL) return 0;
  if (fgets(buf, sizeof(buf), f) == NULL) buf[0] = '\0';
  fclose(f);
  return strcmp(buf, "tsc\n") == 0;
#else
  return 0;
#endif
}

static inline uint64_t stamp (void) {
#ifdef HAVE_TSC
  if (atomic_load_explicit(&clocktsc, memory_order_relaxed))
    return __rdtsc();
#endif
  return uv_hrtime();
}

/* Measures nsper over the trace so far (the writer, or the stopper once
** it has joined the writer). */
static void calibrate (void) {
  uint64_t units, ns;
  if (!atomic_load_explicit(&clocktsc, memory_order_relaxed)) return;
  units = stamp() - t0;
  ns = uv_hrtime() - t0ns;
  if (units > 0 && ns > 0) nsper = (double)ns / (double)units;
}

/* ns since the start, of d units of stamp() since it. */
static uint64_t tons (uint64_t d) {
  return (uint64_t)((double)d * nsper);
}


/* --- recording ------------------------------------------------------------ */

/* The calling thread's record, valid while myepoch is epoch (bumped when
** the records are freed). */
static atomic_uint epoch;
static _Thread_local tthread *me;
static _Thread_local unsigned myepoch;
static _Thread_local const char *myname;
static _Thread_local int mynumber;

void gr_trace_nameme (const char *name, int numbered) {
  static atomic_int counter;
  myname = name;
  mynumber = numbered ? atomic_fetch_add(&counter, 1) + 1 : 0;
}

/* The record of the calling thread, made at its first event; NULL
** without memory. */
static tthread *registerme (void) {
  tthread *t = (tthread *)calloc(1, sizeof(*t));
  if (t == NULL) return NULL;
  uv_once(&once, init);
  gr_lock_lock(&reg);
  t->tid = ++ntids;
  if (myname == NULL)
    snprintf(t->name, sizeof(t->name), "thread %d", t->tid);
  else if (mynumber)
    snprintf(t->name, sizeof(t->name), "%s %d", myname, mynumber);
  else
    snprintf(t->name, sizeof(t->name), "%s", myname);
  t->gen = t->wgen = (unsigned)-1;
  t->next = threads;
  threads = t;
  gr_lock_unlock(&reg);
  me = t;
  myepoch = atomic_load_explicit(&epoch, memory_order_relaxed);
  return t;
}

/* Enters an emit: the calling thread's record, or NULL when no trace is
** being recorded (or without memory). Pairs with leave. */
/* 1 when stop fences every thread of the process with membarrier (set at
** start, before gr_trace_on, once the kernel has said it can). */
static atomic_int asymfence;

/* Registers the process for membarrier's expedited fences: 1 if it can. */
static int membarrier_ready (void) {
#if defined(__linux__) && defined(SYS_membarrier)
  static int ready = -1;   /* protected by life */
  if (ready < 0) {
    long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    ready = cmds >= 0 &&
            (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
            syscall(SYS_membarrier,
                    MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
  }
  return ready;
#else
  return 0;
#endif
}

/* A full fence on every thread of the process that runs now. */
static void fenceall (void) {
#if defined(__linux__) && defined(SYS_membarrier)
  if (syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0)
    return;
#endif
  abort();   /* registered at start: the kernel said it could */
}

static tthread *enter (void) {
  tthread *t = me;
  unsigned g;
  if ((t == NULL ||
       myepoch != atomic_load_explicit(&epoch, memory_order_relaxed)) &&
      (t = registerme()) == NULL)
    return NULL;
  /* busy, then gr_trace_on: the stopper does the reverse, with a fence
  ** between that either side pays. With membarrier the stopper pays it for
  ** every thread, and the emit's own order needs only the compiler's. */
  if (atomic_load_explicit(&asymfence, memory_order_relaxed)) {
    atomic_store_explicit(&t->busy, 1, memory_order_relaxed);
    atomic_signal_fence(memory_order_seq_cst);
  }
  else atomic_store(&t->busy, 1);
  if (!atomic_load(&gr_trace_on)) {   /* after busy: see stop */
    atomic_store_explicit(&t->busy, 0, memory_order_release);
    return NULL;
  }
  g = atomic_load_explicit(&gen, memory_order_relaxed);
  if (t->gen != g) {   /* the first event of this trace on this thread */
    t->gen = g;
    t->depth = t->over = 0;
  }
  return t;
}

static void leave (tthread *t) {
  atomic_store_explicit(&t->busy, 0, memory_order_release);
}

/* Moves the chunks the writer gave back to the end of t's spares, oldest
** first: the one it read last is still in its core's cache, and writing
** that one at once would take each of its lines back from there. */
static void takeback (tthread *t) {
  chunk *k = atomic_exchange_explicit(&t->ret, NULL, memory_order_acquire);
  chunk *rev = NULL;
  while (k != NULL) {   /* ret is newest first */
    chunk *next = atomic_load_explicit(&k->next, memory_order_relaxed);
    atomic_store_explicit(&k->next, rev, memory_order_relaxed);
    rev = k;
    k = next;
  }
  if (rev == NULL) return;
  if (t->sparetail)
    atomic_store_explicit(&t->sparetail->next, rev, memory_order_relaxed);
  else t->spare = rev;
  for (k = rev; atomic_load_explicit(&k->next, memory_order_relaxed); )
    k = atomic_load_explicit(&k->next, memory_order_relaxed);
  t->sparetail = k;
}

/* The next record of t's chunk (in a new chunk when it is full), to fill
** and then publish; NULL without memory. */
static trec *slot (tthread *t) {
  chunk *k = t->cur;
  if (k == NULL || atomic_load_explicit(&k->n, memory_order_relaxed) ==
                   CHUNKCAP) {
    chunk *nk;
    takeback(t);
    if ((nk = t->spare) != NULL) {
      t->spare = atomic_load_explicit(&nk->next, memory_order_relaxed);
      if (t->spare == NULL) t->sparetail = NULL;
    }
    else if ((nk = (chunk *)malloc(sizeof(*nk))) == NULL) {
      atomic_fetch_add_explicit(&dropped, 1, memory_order_relaxed);
      return NULL;
    }
    /* Relaxed: the release store that links nk publishes these too. */
    atomic_store_explicit(&nk->next, NULL, memory_order_relaxed);
    atomic_store_explicit(&nk->n, 0, memory_order_relaxed);
    if (k) atomic_store_explicit(&k->next, nk, memory_order_release);
    else atomic_store_explicit(&t->first, nk, memory_order_release);
    t->cur = k = nk;
  }
  return &k->r[atomic_load_explicit(&k->n, memory_order_relaxed)];
}

/* Publishes the record slot returned: the writer may read it from now. */
static void publish (tthread *t) {
  chunk *k = t->cur;
  atomic_store_explicit(&k->n,
                        atomic_load_explicit(&k->n, memory_order_relaxed) + 1,
                        memory_order_release);
}

/* Appends an event to t's chunk. */
static void put (tthread *t, int kind, uint64_t ts, lua_Integer id,
                 const char *s, uint64_t a) {
  trec *r = slot(t);
  if (r == NULL) return;
  r->ts = ts;
  r->idkind = (uint64_t)id << 8 | (uint64_t)kind;
  r->x.s = s;
  r->a = a;
  publish(t);
}

/* Ends the top slice if it is open. */
static void closetop (tthread *t, uint64_t ts, const char *state) {
  slice *s;
  if (t->depth == 0) return;
  s = &t->stk[t->depth - 1];
  if (s->open) {
    put(t, EEND, ts, s->id, state, 0);
    s->open = 0;
  }
}

/* The top slice of t's stack, or NULL. */
static slice *top (tthread *t) {
  return t->depth > 0 ? &t->stk[t->depth - 1] : NULL;
}

/* Pushes goroutine id's slice, open, ending the one it interrupts. */
static void push (tthread *t, uint64_t ts, lua_Integer id, const char *fn,
                  uint64_t *flow) {
  slice *s;
  if (t->depth == STACKMAX) {
    t->over++;
    return;
  }
  if (t->depth > 0) closetop(t, ts, "runnable");
  s = &t->stk[t->depth++];
  s->id = id;
  s->fn = fn;
  s->open = 1;
  s->blocked = 0;
  put(t, EBEGIN, ts, id, fn, *flow);
  *flow = 0;
}

void gr_trace_begin (lua_Integer id, const char *fn, uint64_t *flow) {
  tthread *t = enter();
  if (t == NULL) return;
  push(t, stamp(), id, fn, flow);
  leave(t);
}

void gr_trace_end (lua_Integer id, const char *state) {
  tthread *t = enter();
  uint64_t ts;
  slice *s;
  if (t == NULL) return;
  if (t->over > 0) t->over--;
  else if ((s = top(t)) != NULL && s->id == id) {
    ts = stamp();
    closetop(t, ts, state);
    t->depth--;
    if ((s = top(t)) != NULL && !s->blocked) {   /* the interrupted one
                                                    goes on */
      put(t, EBEGIN, ts, s->id, s->fn, 0);
      s->open = 1;
    }
  }
  leave(t);
}

void gr_trace_block (lua_Integer id, const char *reason) {
  tthread *t = enter();
  if (t == NULL) return;
  if (t->over == 0) {
    slice *s = top(t);
    if (s != NULL && s->id == id)
      closetop(t, stamp(), reason);
    else if (t->depth < STACKMAX) {   /* it had no slice in this trace */
      s = &t->stk[t->depth++];
      s->id = id;
      s->fn = NULL;
      s->open = 0;
    }
    else {
      t->over++;
      leave(t);
      return;
    }
    t->stk[t->depth - 1].blocked = 1;
  }
  leave(t);
}

void gr_trace_unblock (lua_Integer id, const char *fn, uint64_t *flow) {
  tthread *t = enter();
  slice *s;
  if (t == NULL) return;
  s = top(t);
  if (t->over == 0 && s != NULL && s->id == id && !s->open) {
    s->blocked = 0;
    s->open = 1;
    if (fn) s->fn = fn;
    put(t, EBEGIN, stamp(), id, s->fn, *flow);
    *flow = 0;
  }
  else if (t->over > 0)
    t->over--;
  else if (s == NULL || s->id != id)
    push(t, stamp(), id, fn, flow);
  leave(t);
}

/* Kinds of flows, named in the trace by flownames. */
enum { FWAKE, FGO, FPARALLEL };

/* A new flow's id, unique in the trace without a shared counter: the
** thread's number and its own count. Its kind is the id modulo 3, so that
** its end, which knows only the id, gets the same name as its start. Below
** 2^53 while tid < 2^19: a viewer reads ids as doubles. */
static uint64_t newflow (tthread *t, int fk) {
  uint64_t seq = ++t->flowseq & 0xffffffffu;
  return ((uint64_t)t->tid << 32 | seq) * 3 + (uint64_t)fk;
}

uint64_t gr_trace_wake (lua_Integer id, const char *reason) {
  tthread *t = enter();
  uint64_t f;
  if (t == NULL) return 0;
  f = newflow(t, FWAKE);
  put(t, EWAKE, stamp(), id, reason, f);
  leave(t);
  return f;
}

uint64_t gr_trace_go (lua_Integer id, const char *fn) {
  tthread *t = enter();
  uint64_t f;
  if (t == NULL) return 0;
  f = newflow(t, FGO);
  put(t, EGO, stamp(), id, fn, f);
  leave(t);
  return f;
}

uint64_t gr_trace_parallel (lua_Integer id, size_t bytes, uint64_t ns) {
  tthread *t = enter();
  uint64_t f, ts;
  trec *r;
  if (t == NULL) return 0;
  f = newflow(t, FPARALLEL);
  ts = stamp();
  if ((r = slot(t)) != NULL) {
    r->ts = ts;
    r->idkind = EPARSIZE;
    r->x.u = ns;
    r->a = (uint64_t)bytes;
    publish(t);
  }
  put(t, EPAR, ts, id, NULL, f);
  leave(t);
  return f;
}

void gr_trace_preempt (lua_Integer id, int request) {
  tthread *t = enter();
  if (t == NULL) return;
  put(t, request ? EPREEMPTREQ : EPREEMPT, stamp(), id, NULL, 0);
  leave(t);
}

void gr_trace_gc (void) {
  tthread *t = enter();
  if (t == NULL) return;
  put(t, EGC, stamp(), 0, NULL, 0);
  leave(t);
}


/* --- the writer -------------------------------------------------------- */

#define WRITER_TICK  10000000ULL   /* ns between two drains */
#define OUTBUF       (1 << 16)

/* The writer's output buffer (the writer only, or the thread that starts
** or stops while it does not run). Every write makes room for itself; the
** literals go through OLIT, which knows their length. */
static char obuf[OUTBUF];
static size_t olen;

static void oflush (void) {
  if (olen > 0) fwrite(obuf, 1, olen, out);
  olen = 0;
}

static void oputlong (const char *s, size_t n) {
  oflush();
  if (n > OUTBUF) fwrite(s, 1, n, out);
  else {
    memcpy(obuf, s, n);
    olen = n;
  }
}

static inline void oput (const char *s, size_t n) {
  if (__builtin_expect(olen + n > OUTBUF, 0)) oputlong(s, n);
  else {
    memcpy(obuf + olen, s, n);
    olen += n;
  }
}

#define OLIT(s)  oput(s, sizeof(s) - 1)

static void ostr (const char *s) {
  oput(s, strlen(s));
}

static const char digits[] =
  "00010203040506070809101112131415161718192021222324252627282930313233"
  "34353637383940414243444546474849505152535455565758596061626364656667"
  "6869707172737475767778798081828384858687888990919293949596979899";

/* Two digits at a time: a division by a constant is a multiplication. */
static void ouint (uint64_t v) {
  char b[20];
  int i = 20;
  while (v >= 100) {
    unsigned d = (unsigned)(v % 100);
    v /= 100;
    i -= 2;
    memcpy(b + i, digits + 2 * d, 2);
  }
  if (v >= 10) {
    i -= 2;
    memcpy(b + i, digits + 2 * v, 2);
  }
  else b[--i] = (char)('0' + v);
  oput(b + i, (size_t)(20 - i));
}

static void oint (lua_Integer v) {
  if (v < 0) {
    OLIT("-");
    ouint((uint64_t)0 - (uint64_t)v);
  }
  else ouint((uint64_t)v);
}

/* A time in µs since the start, with its ns as decimals. */
static void otime (uint64_t ns) {
  char b[4];
  unsigned r = (unsigned)(ns % 1000);
  ouint(ns / 1000);
  b[0] = '.';
  b[1] = (char)('0' + r / 100);
  memcpy(b + 2, digits + 2 * (r % 100), 2);
  oput(b, 4);
}

/* Opens an event of phase ph on t's track at ts: the part of it that is
** the same for every event of t is made once per trace. */
static void ohead (tthread *t, const char *ph, uint64_t ts) {
  if (t->wprelen == 0) {
    int n = snprintf(t->wpre, sizeof(t->wpre), "\",\"pid\":%ld,\"tid\":%d,"
                     "\"ts\":", pid, t->tid);
    t->wprelen = n > 0 && (size_t)n < sizeof(t->wpre) ? (size_t)n : 0;
  }
  if (wfirst) OLIT("\n{\"ph\":\"");
  else OLIT(",\n{\"ph\":\"");
  wfirst = 0;
  oput(ph, 1);
  oput(t->wpre, t->wprelen);
  otime(ts);
}

static void oinstant (tthread *t, uint64_t ts, const char *name,
                      lua_Integer id) {
  ohead(t, "i", ts);
  OLIT(",\"s\":\"t\",\"name\":\"");
  ostr(name);
  OLIT("\",\"args\":{\"id\":");
  oint(id);
}

static const char *const flownames[] = { "wake", "go", "parallel" };

/* The start of a flow at ts, inside the slice that is open on t's track,
** or inside a slice of its own. */
static void oflowstart (tthread *t, uint64_t ts, uint64_t flow,
                        lua_Integer id, const char *reason) {
  if (t->wopen == 0) {   /* the scheduler itself, a timer, a callback */
    ohead(t, "X", ts);
    OLIT(",\"dur\":0.001,\"name\":\"");
    ostr(flownames[flow % 3]);
    OLIT("\",\"args\":{\"id\":");
    oint(id);
    if (reason) {
      OLIT(",\"reason\":\"");
      ostr(reason);
      OLIT("\"");
    }
    OLIT("}}");
  }
  ohead(t, "s", ts);
  OLIT(",\"cat\":\"flow\",\"name\":\"");
  ostr(flownames[flow % 3]);
  OLIT("\",\"id\":");
  ouint(flow);
  OLIT("}");
}

/* Writes one event of t. */
static void oevent (tthread *t, const trec *r) {
  lua_Integer id = (lua_Integer)((int64_t)r->idkind >> 8);
  const char *str = r->x.s;
  uint64_t ts;
  if (r->ts < t0) return;   /* recorded before this trace began */
  ts = tons(r->ts - t0);
  if (ts < t->wlast) ts = t->wlast;
  t->wlast = ts;
  switch ((int)(r->idkind & 0xff)) {
    case EBEGIN:
      ohead(t, "B", ts);
      OLIT(",\"name\":\"goroutine ");
      oint(id);
      if (str) {
        OLIT(" ");
        ostr(str);
      }
      else if (id == 1) OLIT(" main");
      OLIT("\",\"args\":{\"id\":");
      oint(id);
      OLIT("}}");
      t->wopen++;
      if (r->a) {
        ohead(t, "f", ts);
        OLIT(",\"bp\":\"e\",\"cat\":\"flow\",\"name\":\"");
        ostr(flownames[r->a % 3]);
        OLIT("\",\"id\":");
        ouint(r->a);
        OLIT("}");
      }
      break;
    case EEND:
      if (t->wopen == 0) break;
      ohead(t, "E", ts);
      OLIT(",\"args\":{\"state\":\"");
      ostr(str);
      OLIT("\"}}");
      t->wopen--;
      break;
    case EWAKE:
      oflowstart(t, ts, r->a, id, str);
      break;
    case EGO:
      oinstant(t, ts, "go", id);
      if (str) {
        OLIT(",\"fn\":\"");
        ostr(str);
        OLIT("\"");
      }
      OLIT("}}");
      oflowstart(t, ts, r->a, id, NULL);
      break;
    case EPAR:
      oinstant(t, ts, "parallel", id);
      OLIT(",\"bytes\":");
      ouint(t->wbytes);
      OLIT(",\"copy_us\":");
      otime(t->wns);
      t->wbytes = t->wns = 0;
      OLIT("}}");
      oflowstart(t, ts, r->a, id, NULL);
      break;
    case EPARSIZE:
      t->wbytes = r->a;
      t->wns = r->x.u;
      break;
    case EPREEMPT:
      oinstant(t, ts, "preempt", id);
      OLIT("}}");
      break;
    case EPREEMPTREQ:
      oinstant(t, ts, "preempt request", id);
      OLIT("}}");
      break;
    case EGC:
      ohead(t, "i", ts);
      OLIT(",\"s\":\"t\",\"name\":\"GC\"}");
      break;
  }
}

/* Gives the drained chunk k back to t. The writer is the only pusher (the
** stopper while it does not run) and the owner takes the whole list, so
** no node is taken while it is pushed and the exchange has no ABA. */
static void giveback (tthread *t, chunk *k) {
  chunk *head = atomic_load_explicit(&t->ret, memory_order_relaxed);
  do atomic_store_explicit(&k->next, head, memory_order_relaxed);
  while (!atomic_compare_exchange_weak_explicit(&t->ret, &head, k,
                                                memory_order_release,
                                                memory_order_relaxed));
}

/* Frees the chunks of the list k, linked by next. */
static void freechunks (chunk *k) {
  while (k) {
    chunk *next = atomic_load_explicit(&k->next, memory_order_relaxed);
    free(k);
    k = next;
  }
}

/* Writes what t recorded since the last drain, giving back the chunks
** done. */
static void drain (tthread *t) {
  unsigned g = atomic_load_explicit(&gen, memory_order_relaxed);
  for (;;) {
    chunk *k = t->wchunk, *next;
    unsigned n;
    if (k == NULL &&
        (k = t->wchunk = atomic_load_explicit(&t->first,
                                              memory_order_acquire)) == NULL)
      return;
    n = atomic_load_explicit(&k->n, memory_order_acquire);
    if (n > t->wdone && t->wgen != g) {   /* its first events: its name */
      t->wgen = g;
      ohead(t, "M", 0);
      OLIT(",\"name\":\"thread_name\",\"args\":{\"name\":\"");
      ostr(t->name);
      OLIT("\"}}");
    }
    for (; t->wdone < n; t->wdone++) oevent(t, &k->r[t->wdone]);
    if (n < CHUNKCAP ||
        (next = atomic_load_explicit(&k->next, memory_order_acquire)) == NULL)
      return;
    giveback(t, k);
    t->wchunk = next;
    t->wdone = 0;
  }
}

/* Drains every thread listed at head (a record, once listed, stays). */
static void drainall (tthread *head) {
  tthread *t;
  for (t = head; t != NULL; t = t->next) drain(t);
  oflush();
}

/* The writer runs at a lower priority than the program: on a machine
** with no core to spare, the program's threads go first (the chunks wait
** in memory), and on one with a core to spare it takes that core. */
#define WRITER_NICE  5

static void writermain (void *arg) {
  (void)arg;
#ifdef __linux__
  (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), WRITER_NICE);
#endif
  gr_lock_lock(&reg);
  while (!wstop) {
    tthread *head;
    gr_lock_timedwait(&reg, &wcond, WRITER_TICK);
    head = threads;
    gr_lock_unlock(&reg);
    calibrate();
    drainall(head);
    gr_lock_lock(&reg);
  }
  gr_lock_unlock(&reg);
}


/* --- start and stop ---------------------------------------------------- */

const char *gr_trace_start (const char *path, const void *S, char *err,
                            size_t errsz) {
  FILE *f;
  tthread *t;
  uv_once(&once, init);
  gr_lock_lock(&life);
  if (active) {
    gr_lock_unlock(&life);
    return "tracing is already enabled";
  }
  if ((f = fopen(path, "w")) == NULL) {
    snprintf(err, errsz, "%s: %s", path, strerror(errno));
    gr_lock_unlock(&life);
    return err;
  }
  out = f;
  pid = (long)getpid();
  olen = 0;
  wfirst = 1;
  OLIT("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[");
  OLIT("\n{\"ph\":\"M\",\"pid\":");
  oint(pid);
  OLIT(",\"name\":\"process_name\",\"args\":{\"name\":\"goroutines\"}}");
  wfirst = 0;
  oflush();
  gr_lock_lock(&reg);
  for (t = threads; t != NULL; t = t->next) {
    t->wchunk = NULL;
    t->wdone = 0;
    t->wopen = 0;
    t->wlast = 0;
    t->wprelen = 0;
  }
  wstop = 0;
  gr_lock_unlock(&reg);
  atomic_fetch_add(&gen, 1);
  {
    static int decided;   /* protected by life */
    if (!decided) {
      atomic_store(&clocktsc, tsc_is_kernel_clock());
      decided = 1;
    }
  }
  t0 = stamp();
  t0ns = uv_hrtime();
  nsper = 1;
  if (uv_thread_create(&writer, writermain, NULL) != 0) {
    fclose(f);
    out = NULL;
    gr_lock_unlock(&life);
    return "cannot start the trace writer";
  }
  owner = S;
  active = 1;
  atomic_store(&asymfence, membarrier_ready());
  atomic_store(&gr_trace_on, 1);
  gr_lock_unlock(&life);
  return NULL;
}

/* Stops the trace; requires life and an active trace. */
static int stop (void) {
  tthread *t;
  uint64_t end, lost;
  int r = 1;
  GR_ASSERT(gr_lock_held(&life) && active);
  atomic_store(&gr_trace_on, 0);
  if (atomic_load(&asymfence)) fenceall();   /* see enter */
  gr_lock_lock(&reg);
  wstop = 1;
  uv_cond_signal(&wcond);
  gr_lock_unlock(&reg);
  uv_thread_join(&writer);
  gr_lock_lock(&reg);
  /* No emit touches a chunk once its thread is out of the one it is in. */
  for (t = threads; t != NULL; t = t->next)
    while (atomic_load(&t->busy)) sched_yield();
  calibrate();
  end = tons(stamp() - t0);
  for (t = threads; t != NULL; t = t->next) {
    drain(t);
    for (; t->wopen > 0; t->wopen--) {   /* still running: ends here */
      ohead(t, "E", end > t->wlast ? end : t->wlast);
      OLIT(",\"args\":{\"state\":\"running\"}}");
    }
    /* The chunks still listed, and those given back: none of them is
    ** kept from one trace to the next. */
    freechunks(t->wchunk ? t->wchunk : atomic_load(&t->first));
    freechunks(atomic_exchange(&t->ret, NULL));
    freechunks(t->spare);
    t->wchunk = t->cur = t->spare = t->sparetail = NULL;
    atomic_store(&t->first, NULL);
  }
  gr_lock_unlock(&reg);
  if ((lost = atomic_exchange(&dropped, 0)) > 0) {   /* no memory for them */
    OLIT(",\n{\"ph\":\"M\",\"pid\":");
    oint(pid);
    OLIT(",\"name\":\"process_labels\",\"args\":{\"labels\":\"");
    ouint(lost);
    OLIT(" events lost\"}}");
  }
  OLIT("\n]}\n");
  oflush();
  if (ferror(out)) r = -1;
  if (fclose(out) != 0) r = -1;
  out = NULL;
  active = 0;
  owner = NULL;
  return r;
}

int gr_trace_stop (void) {
  int r = 0;
  uv_once(&once, init);
  gr_lock_lock(&life);
  if (active) r = stop();
  gr_lock_unlock(&life);
  return r;
}

/* Frees the names and the thread records, once no state is left: no
** goroutine refers to a name, and no thread records an event. A thread
** that would record one later makes a new record (epoch). Requires life
** and no active trace. */
static void freeall (void) {
  size_t i;
  tthread *t;
  gr_lock_lock(&reg);
  for (i = 0; i < namecap; i++) free(names[i]);
  free(names);
  names = NULL;
  nnames = namecap = 0;
  atomic_fetch_add(&epoch, 1);
  while ((t = threads) != NULL) {
    threads = t->next;
    free(t);
  }
  gr_lock_unlock(&reg);
}

void gr_trace_addstate (const void *S, int delta) {
  uv_once(&once, init);
  gr_lock_lock(&life);
  if (delta < 0 && active && owner == S) stop();
  nstates += delta;
  if (nstates == 0 && !active) freeall();
  gr_lock_unlock(&life);
}
