/*
** goroutines.h -- the embedding API of goroutines: a C host drives the
** runtime of its own Lua states and talks to their goroutines.
**
** Link with libgoroutines (pkg-config goroutines); the host provides Lua
** 5.4 (liblua5.4, or its own copy) and libuv. Every function says which
** thread may call it:
**   "L's thread": the thread that runs the Lua state L at that moment (a
**     Lua state is run by one thread at a time), outside any goroutine of
**     L unless stated;
**   "any thread": any thread, with or without a Lua state, holding no
**     lock of the runtime (so not from inside a callback of the runtime
**     unless stated).
** Results: GR_OK (0) or another outcome that is no failure (positive), or
** a failure (negative). A failure that has a message pushes it on L's
** stack (GR_ERROR); GR_EINVAL reports a bad argument that the function
** could tell (a NULL pointer, a value type the API does not carry).
*/
#ifndef GOROUTINES_H
#define GOROUTINES_H

#include "lua.h"

/* libuv's loop, named without <uv.h> (which a strict -std=c11 host could
** not include without feature macros): uv_loop_t is this struct. */
struct uv_loop_s;

#if defined(__GNUC__) || defined(__clang__)
#define GR_API  __attribute__((visibility("default")))
#else
#define GR_API
#endif

#define GR_OK        0
#define GR_CLOSED    1      /* the channel is closed (and, to a receive,
                               drained) */
#define GR_TIMEOUT   3      /* a channel operation's timeout passed (or,
                               with timeout 0, it would have blocked) */
#define GR_ERROR   (-3)     /* failed: the message is on L's stack */
#define GR_EINVAL  (-4)     /* a bad argument (NULL, a value the API does
                               not carry); nothing was done */
#define GR_ENOMEM  (-5)     /* no memory; nothing was done, except as
                               gr_chan_recv says */

/* The Lua module's entry point (what `require "goroutines.core"` calls).
** L's thread. */
GR_API int luaopen_goroutines_core (lua_State *L);

/* Loads the runtime into L, a state the host owns: makes its scheduler
** and sets package.preload so that `require "goroutines"` (and
** "goroutines.core") finds this copy of the runtime without LUA_PATH or
** LUA_CPATH, in L and in the worker states of its g.parallel goroutines.
** The state is then an embedded one: the runtime never calls exit() in
** it, and the uncaught errors of its goroutines go to the host, not to
** stderr (gr_set_error_handler, gr_run). Needs the package library only for `require` itself. Returns
** GR_OK, or GR_ERROR with the message on L's stack (no memory). L's
** thread, once per state (later calls do nothing and return GR_OK). */
GR_API int gr_open (lua_State *L);

/* Sets the time slice of L's state, as g.preempt_slice(seconds) does: a
** goroutine of that state that computes for that long without blocking
** is preempted (default 0.01). seconds: from 0.0001 to 3600. Returns
** GR_OK, or GR_EINVAL (L NULL or not loaded with the runtime, seconds
** out of range). L's thread. */
GR_API int gr_set_preempt_slice (lua_State *L, double seconds);

/* Uncaught goroutine errors of L's state (and of its g.parallel
** goroutines) go to f instead of being raised in the main chunk or
** returned by gr_run: msg is "goroutine N: message" and its traceback,
** valid during the call. f runs on L's thread, inside the runtime (a
** blocking call of the main chunk, gr_run, or lua_close for the errors
** still pending when L closes, where L is closing): it must leave L's
** stack as it found it, and neither raise nor call the runtime. With or
** without a handler, the runtime never calls exit() in a state that
** gr_open loaded, nor prints its goroutines' errors; without a handler,
** the errors still pending at lua_close are dropped. f NULL removes the handler. Returns GR_OK, or GR_EINVAL (L
** NULL, not loaded with the runtime, or a worker state). L's thread. */
GR_API int gr_set_error_handler (lua_State *L,
                                 void (*f) (lua_State *L, const char *msg,
                                            void *ud),
                                 void *ud);

/* f(W, ud) runs in every worker state that starts from now on, after the
** standard libraries and before the runtime is required there: to open
** the host's own C libraries for g.parallel goroutines (their globals
** fall back to the worker state's). An error it raises fails that
** worker's set-up (the goroutines waiting for a worker fail in main when
** no worker can start). f NULL removes it. Process-wide: set before
** gr_open (a worker that starts while another call replaces the pair gets
** the old f and ud or the new ones, never a mix). Any thread; f runs on
** the worker's thread. */
GR_API void gr_set_worker_init (void (*f) (lua_State *W, void *ud),
                                void *ud);

/* Whether SIGQUIT prints the dump of every goroutine (g.stack) to stderr
** and exits with status 2, as in Go (on by default). Process-wide: set
** before the first gr_open (or require); the runtime also leaves SIGQUIT
** alone when a handler is already installed then. Any thread. */
GR_API void gr_set_sigquit (int on);

/* How gr_run drives the scheduler. */
typedef enum gr_runmode {
  GR_RUN_DEFAULT,  /* until no goroutine is left, or none can ever be woken
                      (GR_ERROR with the deadlock report) */
  GR_RUN_ONCE,     /* waits for at least one goroutine to run (a timer, a
                      wake from another thread), runs what is ready */
  GR_RUN_NOWAIT    /* never waits: runs every goroutine that is ready and
                      every timer that is due, and what becomes ready
                      meanwhile within a budget of about 1 ms (a frame) */
} gr_runmode;

/* Runs the goroutines of L's state, on L's thread, outside any goroutine
** (GR_EINVAL from inside one or from inside gr_run, such as from a
** finalizer that runs between goroutines, with a bad mode, or without the
** runtime).
** Returns GR_OK, or GR_ERROR with the message on L's stack: a goroutine's
** uncaught error (unless an error handler is set: it gets them, and
** gr_run returns GR_OK), or the deadlock report (GR_RUN_DEFAULT and
** GR_RUN_ONCE, when goroutines are left and nothing can wake them; it
** lists them, each with its wait reason and place, and not goroutine 1:
** the host's call is none). */
GR_API int gr_run (lua_State *L, gr_runmode mode);

/* For a host with its own poll loop: an fd that becomes readable when a
** goroutine of L's state is woken from another thread, or GR_EINVAL.
** Poll it with the timeout that gr_backend_timeout gives, then call
** gr_run(L, GR_RUN_NOWAIT). L's thread. */
GR_API int gr_backend_fd (lua_State *L);

/* The milliseconds until L's state needs gr_run again: 0 when goroutines
** are ready now, the time until its next timer, or -1 when nothing is
** ready or pending (only the fd can bring work then); GR_EINVAL as
** gr_backend_fd. Call it after gr_run, right before polling. L's
** thread. */
GR_API int gr_backend_timeout (lua_State *L);

/* For a host that runs a libuv loop of its own, before gr_open (which
** then puts the state on loop, or returns GR_ERROR when it cannot) or
** after it: the goroutines of L's state run from callbacks of loop,
** whenever they are ready, their timers are due or another thread wakes
** them, while the host runs uv_run(loop, ...) on L's thread. The runtime
** keeps a loop of its own (a blocking call of the main chunk runs that
** one, never loop), whose fd loop watches; its handles on loop keep it
** alive only while a goroutine of the state is left (uv_run(loop,
** UV_RUN_DEFAULT) returns once they are all done; no deadlock is reported
** there). Uncaught goroutine errors go to the error handler; without one,
** an error stops loop (uv_stop: uv_run returns) and stays for the host's
** next gr_run, which returns it (each turn of loop stops it again until
** then). lua_close closes those handles: run loop once more to free them.
** Returns GR_OK, GR_EINVAL (L or loop NULL, set already, or from inside a
** goroutine or gr_run) or GR_ENOMEM. L's thread. */
GR_API int gr_set_loop (lua_State *L, struct uv_loop_s *loop);
/* The loop set with gr_set_loop (before gr_open too), or NULL. L's
** thread. */
GR_API struct uv_loop_s *gr_loop (lua_State *L);

/* Starts a goroutine in L's state: the function below nargs arguments on
** the top of L's stack; pops them, as lua_call does. It first runs at the
** next gr_run (or when the main chunk blocks). Returns the goroutine's
** id (> 0), GR_EINVAL (no runtime, fewer values than nargs + 1 on the
** stack, or a value that cannot be called: the values are popped), or
** GR_ERROR with the message (no memory). L's thread, from a goroutine
** too. */
GR_API int gr_go (lua_State *L, int nargs);

/* What gr_resume returns for a coroutine that blocked: distinct from
** every lua_resume status. */
#define GR_PARKED   16

/* Resumes co, a coroutine of L's state, as lua_resume(co, L, nargs, nres)
** does, except when it blocks (on a channel, select, sleep, a lock...):
** then it becomes a goroutine of L's state and gr_resume returns
** GR_PARKED at once (*nres 0); the runtime resumes it when it is woken,
** from gr_run or a blocking call of the main chunk, and its end and its
** errors are a goroutine's (not the host's to see). A coroutine resumed
** with plain lua_resume that blocks instead runs the scheduler in place,
** and lua_resume returns only once its operation has completed. co is
** goroutine number g.id() from its first gr_resume on (the id stays its
** own across resumes, parks and deadlock reports). A
** coroutine that is a goroutine (it blocked before) is the scheduler's:
** gr_resume returns LUA_ERRRUN with "cannot resume a coroutine that waits
** in a goroutine" on co's stack. Returns GR_EINVAL (L or co NULL, co the
** main thread or a coroutine of another Lua state, fewer than nargs values
** on co's stack, L not loaded with the runtime, or called from inside a
** goroutine or from inside gr_run, such as from a finalizer that runs
** between goroutines: nothing was done), GR_ENOMEM, a lua_resume status,
** or GR_PARKED. nres may be NULL. L's thread. */
GR_API int gr_resume (lua_State *L, lua_State *co, int nargs, int *nres);

/* --- host channels -------------------------------------------------- */

/* A host channel is a channel of the runtime that the host makes and
** uses from any of its threads without a Lua state, and that goroutines
** of any state use through a Lua handle (gr_chan_push) as any channel:
** send, recv, select, close, range. It carries only the values a host can
** hold without Lua (gr_hostval): a Lua send of a table, function or
** userdata on it raises "cannot send a table on a host channel (it
** carries nil, booleans, numbers and strings)". A host thread that waits
** sleeps on a condition variable, queued on the channel as a goroutine
** would be, and is woken by the goroutine that completes its operation.
** A goroutine parked on a host channel (or in a select with one among its
** cases) counts as waiting, not deadlocked, since a host thread may still
** complete its operation; the goroutines of a state that wait on nothing
** else are reported as deadlocked, whatever host channels live. */

typedef struct gr_chan gr_chan;

/* The types of gr_hostval. */
#define GR_TNIL      0
#define GR_TBOOLEAN  1
#define GR_TINTEGER  2
#define GR_TNUMBER   3
#define GR_TSTRING   4

/* A value that crosses a host channel. A send copies the bytes of a
** string; a received string is malloc'd, NUL-terminated (it may also
** hold NULs: len says how long it is) and the caller's, to free with
** gr_hostval_free. A Lua float that has an integer value stays a float
** (GR_TNUMBER), as Lua keeps it. */
typedef struct gr_hostval {
  int type;             /* GR_T* */
  union {
    int b;              /* GR_TBOOLEAN: 0 or 1 (a send takes any int) */
    lua_Integer i;      /* GR_TINTEGER */
    lua_Number n;       /* GR_TNUMBER */
    struct {
      const char *p;    /* GR_TSTRING: the bytes (NULL only if len is 0) */
      size_t len;
    } s;
  } u;
} gr_hostval;

/* A new host channel with a buffer of cap values (0: unbuffered), and one
** reference, the caller's; NULL without memory (or cap over 2^36). It
** outlives every state, with its buffered values, until its last
** reference is released. Any thread. */
GR_API gr_chan *gr_chan_new (size_t cap);
/* Takes one more reference on c (NULL: nothing). Any thread. */
GR_API void gr_chan_retain (gr_chan *c);
/* Drops one reference (NULL: nothing); the last frees c and the values in
** its buffer. Any thread. */
GR_API void gr_chan_release (gr_chan *c);

/* Sends *v on c. timeout in seconds: < 0 blocks until a receiver or the
** buffer takes it, 0 never blocks, > 0 waits at most that long. Returns
** GR_OK, GR_CLOSED (c is closed: nothing sent), GR_TIMEOUT (nothing sent),
** GR_EINVAL (c or v NULL, c no host channel, v of no GR_T* type or a
** string of 4 GiB or more, timeout NaN) or GR_ENOMEM. Any thread, without
** touching a Lua state: never from inside the runtime's callbacks (an
** error handler) with a timeout other than 0. */
GR_API int gr_chan_send (gr_chan *c, const gr_hostval *v, double timeout);
/* Receives from c into *v (nil unless GR_OK), waiting as gr_chan_send.
** Returns GR_OK, GR_CLOSED (closed and drained), GR_TIMEOUT, GR_EINVAL
** (as gr_chan_send; *v NULL) or GR_ENOMEM (no memory to copy a string
** out: that value is lost). Any thread, as gr_chan_send. */
GR_API int gr_chan_recv (gr_chan *c, gr_hostval *v, double timeout);
/* Closes c and wakes everything that waits on it, as Lua's close does.
** Returns GR_OK, GR_CLOSED (closed already) or GR_EINVAL (NULL, no host
** channel). Any thread. */
GR_API int gr_chan_close (gr_chan *c);
/* Frees the string a receive put in *v, and makes *v nil (NULL, or a
** value of another type: nothing to free). Any thread. */
GR_API void gr_hostval_free (gr_hostval *v);

/* Pushes a Lua handle of c on L's stack (a channel that sends and
** receives), which holds a reference of its own. Returns GR_OK, or
** GR_EINVAL with nothing pushed (L or c NULL, c no host channel, L not
** loaded with the runtime, no stack space); raises on no memory, as
** lua_newuserdata does. L's thread. */
GR_API int gr_chan_push (lua_State *L, gr_chan *c);
/* The host channel of the handle at idx of L's stack, borrowed (retain
** it to keep it past the handle); raises a Lua error if the value is no
** channel handle ("goroutines.chan expected"), a finalized one, or a
** channel that is no host channel. L's thread. */
GR_API gr_chan *gr_chan_check (lua_State *L, int idx);

#endif
