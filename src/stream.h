/*
** stream.h -- I/O handles that block only the goroutine: a libuv handle
** on its state's loop, queues of goroutines waiting on it, deadlines, and
** for byte streams (TCP and unix conns, pipes, terminals) the read buffer,
** the formats of Lua's file:read, and writes. net.c builds g.net on it,
** exec.c the pipes of g.exec, gos.c g.os.stdin, stdout and stderr.
*/
#ifndef GR_STREAM_H
#define GR_STREAM_H

#include "sched.h"
#include "wait.h"

/* Directions of waiting, and of deadlines. */
enum { GR_SREAD, GR_SWRITE };

/* Kinds of handle. */
enum { GR_SNONE, GR_STCP, GR_SPIPE, GR_SUDP, GR_STTY };

/* Outcome of an attempt at an operation: it must wait (otherwise the
** attempt returns the number of results it pushed). */
#define GR_SAGAIN (-1)

typedef struct gr_stream gr_stream;
typedef struct gr_wreq gr_wreq;

/* An operation on a handle, run until it completes: attempt returns the
** number of results it pushed, or GR_SAGAIN after it made sure that a
** callback will wake the waiters of direction dir. The stack holds the
** handle at index 1; ctx says the rest (see gr_stream_run). */
typedef int (*gr_sattempt) (lua_State *L, gr_stream *st, lua_KContext ctx);

/* A datagram received by a packet conn, queued until read_from. */
typedef struct gr_dgram {
  struct gr_dgram *next;
  size_t len;
  char from[64];        /* "host:port" of the sender */
  char data[];
} gr_dgram;

/* One I/O handle. The struct is malloc'd: libuv owns the handles until
** their close callbacks ran, the Lua userdata owns a pointer to it; it is
** freed when both let go (refs). Owner thread only (its state's). */
struct gr_stream {
  union {
    uv_handle_t h;
    uv_stream_t s;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
    uv_udp_t udp;
    uv_tty_t tty;
  } u;                  /* the handle itself, when kind != GR_SNONE */
  uv_timer_t timer[2];  /* deadline timers (GR_SREAD, GR_SWRITE) */
  gr_state *S;          /* owning state (immutable) */
  int kind;             /* GR_S* */
  int refs;             /* the userdata, plus each handle not yet closed */
  int closed;           /* closed by close() or __gc: no more I/O */
  int listener;         /* a listening socket */
  gr_waitq q[2];        /* goroutines waiting to read (or accept) and to
                           write (or connect); each counts in S->iowait */
  uint64_t deadline[2]; /* uv_hrtime() ns, 0 for none */
  /* byte streams: */
  char *buf;            /* read buffer, malloc'd; bytes [head, tail) */
  size_t cap, head, tail;
  size_t scanned;       /* bytes from head known to hold no '\n' */
  int rerr;             /* UV_EOF or the read error, sticky; 0 before */
  int reading;          /* uv_read_start is in effect */
  gr_wreq *wreqs;       /* writes in flight or not yet reported */
  /* operations that take a callback: */
  int status;           /* outcome of a connect (1: pending) or accept */
  int npending;         /* listener: connections ready for uv_accept */
  int pendfd;           /* listener: a connection accepted in the state
                           it moved from, for the next accept; or -1 */
  int family;           /* dial, listen: AF_UNSPEC, AF_INET, AF_INET6 */
  int port;             /* dial, listen: the port to use */
  int phase;            /* dial, listen: net.c's step (resolve, connect) */
  char *name;           /* the host name being resolved, malloc'd */
  uv_connect_t connreq; /* dial's connect request */
  uv_getaddrinfo_t *gai;  /* resolution in flight (its data: this), or
                           NULL; detached when the handle closes */
  struct addrinfo *res; /* a finished resolution, until consumed */
  /* packet conns: */
  gr_dgram *dhead, *dtail;  /* datagrams received, not yet read */
  int ndgrams;          /* length of that queue */
  /* names for messages and addr(): */
  char *laddr, *raddr;  /* "host:port" or a path; malloc'd, or NULL */
  const char *net;      /* "tcp", "tcp4", "tcp6", "unix", "udp"... */
  void (*prewrite) (gr_stream *st);  /* the upper layer's, or NULL:
                           called as a write starts (gos.c: flushes C's
                           buffer of the same fd, so output keeps order) */
  char *unlinkpath;     /* unix listener: the socket file it made */
  void (*onclose) (gr_stream *st);  /* the upper layer's, called once by
                           gr_stream_close (net.c: a dial's context) */
  void *closearg;       /* onclose's */
  int ctxdone;          /* dial: its context was canceled */
  int moved;            /* closed because it moved to another state */
  int file;             /* a file, not a socket (a pipe's end): closed,
                           it says "file already closed", as Go's os.File */
  int noread, nowrite;  /* one end of a pipe: the way it does not go
                           fails with "bad file descriptor", as EBADF */
  struct gr_move *move; /* a pack is taking it to another state */
};

/* A new handle of kind in S's userdata of metatable mt, pushed on L;
** the kind's handle is initialised by the caller (uv_tcp_init...) and
** then counted with gr_stream_adopt. Raises without memory. */
gr_stream *gr_stream_new (lua_State *L, gr_state *S, const char *mt,
                          const char *net);
/* Counts the handle st->u as initialised (closed with st). */
void gr_stream_adopt (gr_stream *st, int kind);
/* The stream of the userdata of metatable mt at idx; raises otherwise,
** or once it was finalized. */
gr_stream *gr_stream_check (lua_State *L, int idx, const char *mt);
/* Closes st: wakes every waiter, closes the handles. Idempotent. */
void gr_stream_close (gr_stream *st);
/* Runs attempt until it completes, parking the goroutine in direction
** dir between attempts; ctx goes to attempt, and k (the operation's
** continuation, which calls gr_stream_run again) resumes it after a
** yield. Use as `return ...`. */
int gr_stream_run (lua_State *L, gr_stream *st, int dir, gr_sattempt f,
                   lua_KFunction k, lua_KContext ctx);
/* Wakes the waiters of st in direction dir (the owner's callbacks). */
void gr_stream_wakeall (gr_stream *st, int dir);
/* Whether the deadline of dir has passed. */
int gr_stream_expired (gr_stream *st, int dir);
/* Pushes nil and "<op> <net> <laddr>[-><raddr>]: <what>"; returns 2. */
int gr_stream_fail (lua_State *L, gr_stream *st, const char *op,
                    const char *what);
/* The text of a libuv error as Go prints it ("connection refused"). */
const char *gr_stream_strerror (int err);
/* The length of the numeral at the front of p[0, avail), as Lua's
** file:read("n") scans it, or -1 if the bytes end before it does and
** more may come (eof: none will). Files (gos.c) scan with it too. */
int gr_stream_scannumeral (const char *p, size_t avail, int eof);
/* Raises, as Lua's file:read, unless the values from index first to last
** are read formats (a size, "l", "L", "a", "n"). */
void gr_stream_checkformats (lua_State *L, int first, int last);
/* Frees the read buffers S keeps for reuse (at its close). */
void gr_stream_closestate (gr_state *S);
/* Starts reading into the buffer if it does not already. */
void gr_stream_startread (gr_stream *st);
/* Kinds of metatable: the methods of gr_stream_setmethods accept the
** handles of a BYTES one (conns) and a FILE one (os.File-like streams),
** those of a PACKET one in part. */
enum { GR_SMETANONE, GR_SMETABYTES, GR_SMETAPACKET, GR_SMETAFILE };
/* Sets the methods of handles of metatable kind into the table at the
** top of L: close, set_deadline, set_read_deadline, set_write_deadline
** for all; read, write, lines for BYTES and FILE; local_addr for BYTES and
** PACKET; close_write, remote_addr for BYTES. */
void gr_stream_setmethods (lua_State *L, int kind);
/* Makes the process ignore SIGPIPE (once; unless a handler is set), as
** Go's runtime does: a write to a closed peer or pipe fails with "broken
** pipe" instead of killing the program. */
void gr_stream_nosigpipe (void);
/* Sets __gc, __close, __tostring, __index (the table at the top) on the
** metatable mt, which it creates, of kind GR_SMETA*. Pops the table. */
void gr_stream_newmeta (lua_State *L, const char *mt, int kind);

#endif
