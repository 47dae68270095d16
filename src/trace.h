/*
** trace.h -- the execution trace (GOROUTINES_TRACE, g.trace): events
** recorded by the scheduler, channels, timers and workers, written as
** trace-event JSON (Perfetto, chrome://tracing) by a writer thread.
**
** A layer-0 file: it knows goroutines only by their ids and names, so
** that every file above can call it. A caller tests gr_trace_enabled()
** (one relaxed load and a branch predicted not taken) before it calls an
** emit function, through GR_TRACE(call). An emit takes no lock and never
** waits for I/O: it appends to a buffer of the calling thread.
** Strings given to the emit functions must live as long as the process:
** literals, gr_waitreasons, or names from gr_trace_fname.
*/
#ifndef GR_TRACE_H
#define GR_TRACE_H

#include "gr.h"

/* 1 while a trace is being recorded (read relaxed by the hot paths). */
extern atomic_int gr_trace_on;

static inline int gr_trace_enabled (void) {
  return __builtin_expect(atomic_load_explicit(&gr_trace_on,
                                               memory_order_relaxed), 0);
}

#define GR_TRACE(call)  do { if (gr_trace_enabled()) { call; } } while (0)

/* Starts recording into the file at path, for owner (a state: its close
** stops the trace): NULL, or a message (static or in err, of size errsz)
** when a trace is already being recorded or the file cannot be opened.
** Any thread. */
const char *gr_trace_start (const char *path, const void *owner, char *err,
                            size_t errsz);
/* Stops recording and finishes the file: 1, or 0 when no trace was being
** recorded. Any thread. */
int gr_trace_stop (void);

/* Counts a state made (delta 1) or closed (-1): the close of a trace's
** owner stops it; once no state is left, the names and the records of
** the threads are freed. */
void gr_trace_addstate (const void *S, int delta);

/* Names the calling thread's track ("main", "worker"...); numbered adds
** a number per name ("worker 2"). Takes effect for a thread that has not
** recorded an event yet. Costs nothing while not tracing. */
void gr_trace_nameme (const char *name, int numbered);

/* The name of a goroutine's function, "file.lua:12", interned for the
** life of the process: the function at idx of co (idx > 0), or, for a
** coroutine that runs already (idx 0), the function at the bottom of its
** stack. co is not running. NULL without memory. */
const char *gr_trace_fname (lua_State *co, int idx);

/* Goroutine id starts running on this thread (fn: its function's name,
** or NULL); *flow, when not 0, is the flow that led to it (a wake, a
** spawn), which ends here: it is cleared. */
void gr_trace_begin (lua_Integer id, const char *fn, uint64_t *flow);
/* Goroutine id stops running: state says why ("chan receive", "runnable",
** "dead"...). The slice it interrupted on this thread goes on. */
void gr_trace_end (lua_Integer id, const char *state);
/* Goroutine id blocks for reason in place, without giving back its
** thread (goroutine 1): its slice ends here, with reason as its state. (A
** goroutine that parks by a yield says why in gr_trace_end's state.) */
void gr_trace_block (lua_Integer id, const char *reason);
/* Goroutine id, which blocked in place, runs again (*flow as in begin). */
void gr_trace_unblock (lua_Integer id, const char *fn, uint64_t *flow);
/* Goroutine id, which waited for reason, is woken by this thread: the
** start of a flow, whose id is returned for the woken one's next begin. */
uint64_t gr_trace_wake (lua_Integer id, const char *reason);
/* Goroutine id, of function fn (or NULL), was spawned by the calling
** thread (g.go): the start of a flow to its first run. */
uint64_t gr_trace_go (lua_Integer id, const char *fn);
/* Goroutine id was queued by g.parallel, its function and arguments
** copied in bytes bytes and ns ns: a flow to its first run on a worker. */
uint64_t gr_trace_parallel (lua_Integer id, size_t bytes, uint64_t ns);
/* Goroutine id is preempted at the end of its time slice (its thread),
** or asked to be (request: the monitor's thread). */
void gr_trace_preempt (lua_Integer id, int request);
/* A garbage collection cycle of the calling thread's Lua state ended. */
void gr_trace_gc (void);

#endif
