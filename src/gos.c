/*
** gos.c -- g.os: files and the file system after Go's os package, on
** libuv's thread pool (uv_fs_*), so that only the calling goroutine waits.
**
** Every operation that needs the thread pool submits one request (an
** fsreq) and parks its goroutine on the request, as on a channel (the
** main chunk blocks in place); the request's callback, on the state's
** loop thread, is the single waker. Results follow Lua's io (`nil,
** message`), messages follow Go ("open /nope: no such file or
** directory", "read f: file already closed").
**
** Ownership:
**   A request is malloc'd and owned by its goroutine, which keeps it as a
**     light userdata on the top of its stack between attempts; if the
**     goroutine leaves before the callback ran (its state closes, an
**     in-place wait raises, or a close of its file woke it) it marks the
**     request abandoned and the callback frees it alone, closing the fd a
**     late open produced. If it leaves after (woken by the callback, never
**     resumed), its cancel frees it.
**   A file (gr_file) is malloc'd, held by its userdata and by the request
**     that holds its busy slot; it is freed when both let go. While busy
**     is set, one request of the file is in flight or done and not yet
**     seen: the fd stays open (a close only marks the file closed, and the
**     request's release closes the fd), so no fd number is reused under a
**     request. Other goroutines that use the file meanwhile wait on f->q.
**   A goroutine parked here counts once in S->iowait: the thread pool
**     will wake it, so it is never part of a deadlock.
**
** g.os.stdin, stdout and stderr are made at first use, after what fd 0, 1
** or 2 is: a terminal (uv_tty_t) or a pipe, fifo or socket (uv_pipe_t),
** on stream.c's handles, which wait on the loop and never hold a thread
** of the pool (a state with a stdin reader still closes at once); any
** other file (a regular file, /dev/null, a closed fd) becomes a file of
** this file on a dup of the fd. libuv makes the fd it polls non-blocking:
** it gets a file description of its own (a terminal is reopened by
** uv_tty_init, a pipe through /proc/self/fd), so that Lua's io library
** keeps blocking writes on fds 0-2. Where that cannot be (a socket), the
** shared description is non-blocking while the stream is open, and its
** flags come back when it closes.
**   Each of the three belongs to one state at a time, process-wide
**     (stdfds[n].owner, claimed by a host state at first use, let go
**     when the stream closes); the owner alone reads and writes the rest
**     of its record. A worker state never claims them.
** Lock order: none; everything runs on the thread of the state.
*/
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errors.h"
#include "gos.h"
#include "state.h"
#include "stream.h"

#define FILEMT "goroutines.file"
#define READCHUNK 65536   /* bytes asked of each read, at least */
#define MAXNUMERAL 200    /* Lua's L_MAXLENNUM */
#define HUGEPAGE ((uintptr_t)2 << 20)   /* a transparent huge page */
#define HUGEREAD (8u << 20)   /* reads this large ask for huge pages */

/* The outcome of an attempt that must wait. */
#define AGAIN (-1)

/* What a parked goroutine waits on (its waiter's dir). */
enum { ONREQ, ONFILE };

/* Operations, for what a finished request gives back. */
enum { OP_OPEN, OP_READ, OP_WRITE, OP_STAT, OP_SCANDIR, OP_UNLINK,
       OP_RMDIR, OP_RENAME, OP_MKDIR };

typedef struct gr_file gr_file;

/* The stream of fd 0, 1 or 2 (g.os.stdin, stdout, stderr). */
typedef struct stdfd {
  _Atomic(gr_state *) owner;  /* the state whose stream it is, or NULL */
  FILE *cfile;          /* C's stream of the fd, flushed before a write */
  int shared;           /* owner only: the stream polls the fd's own file
                           description, whose flags go back at close */
  int flags;            /* owner only: those flags (F_GETFL) */
} stdfd;

typedef struct fsreq {
  uv_fs_t req;          /* libuv's; req.data is this */
  gr_state *S;          /* owning state (immutable) */
  int op;               /* OP_* */
  gr_file *f;           /* the file whose busy slot it holds, or NULL */
  gr_waitq q;           /* its goroutine while parked on it */
  int done;             /* the callback ran */
  int abandoned;        /* its goroutine left: the callback frees it */
  char *buf;            /* read: the bytes read; write: those to write */
  size_t len, off;      /* size of buf; write: bytes written so far */
} fsreq;

/* An open file. Owner thread only. */
struct gr_file {
  gr_state *S;          /* owning state (immutable) */
  uv_file fd;           /* -1 before the open completed and once closed */
  int refs;             /* the userdata, plus the busy request */
  int closed;           /* close() or __gc ran: no more I/O */
  int readable, writable;
  stdfd *std;           /* g.os.stdin...'s record, or NULL */
  fsreq *busy;          /* the request in flight or unseen, or NULL */
  gr_waitq q;           /* goroutines waiting for busy to clear */
  char *buf;            /* read-ahead, malloc'd; bytes [head, tail) */
  size_t cap, head, tail;
  size_t scanned;       /* bytes from head known to hold no '\n' */
  int eof;              /* the last read of this call returned 0 bytes */
  int rerr;             /* the error of the last read of this call */
  char path[];          /* as opened, for messages */
};

typedef struct { gr_file *f; } filebox;


/* --- requests and waiting ---------------------------------------------- */

static void unref (gr_file *f) {
  if (--f->refs == 0) {
    GR_ASSERT(f->q.first == NULL && f->busy == NULL);
    free(f->buf);
    free(f);
  }
}

static void closefd (gr_file *f) {
  if (f->fd >= 0) {
    uv_fs_t r;
    uv_fs_close(NULL, &r, f->fd, NULL);   /* close(2): it does not wait */
    uv_fs_req_cleanup(&r);
    f->fd = -1;
  }
}

static void wakeall (gr_file *f) {
  gr_waiter *w;
  while ((w = f->q.first) != NULL) {
    gr_waitq_remove(&f->q, w);
    f->S->iowait--;
    gr_wait_wake(f->S, w);
  }
}

/* The busy slot of f is free again: its waiters try again; a file closed
** meanwhile closes its fd now. */
static void release (gr_file *f) {
  f->busy = NULL;
  wakeall(f);
  if (f->closed) closefd(f);
  unref(f);
}

static void freereq (fsreq *r) {
  if (r->op == OP_OPEN && r->req.result >= 0 && r->done) {
    uv_fs_t c;   /* an open whose goroutine left: nobody owns the fd */
    uv_fs_close(NULL, &c, (uv_file)r->req.result, NULL);
    uv_fs_req_cleanup(&c);
  }
  if (r->f) release(r->f);
  uv_fs_req_cleanup(&r->req);
  free(r->buf);
  free(r);
}

static void oncomplete (uv_fs_t *req) {
  fsreq *r = (fsreq *)req->data;
  gr_waiter *w = r->q.first;
  r->done = 1;
  if (r->abandoned) {
    freereq(r);
    return;
  }
  if (w) {
    gr_waitq_remove(&r->q, w);
    r->S->iowait--;
    gr_wait_wake(r->S, w);
  }
}

/* A new request of op, for file f (its busy slot) or none. NULL without
** memory. */
static fsreq *newreq (gr_state *S, int op, gr_file *f, size_t len) {
  fsreq *r = (fsreq *)calloc(1, sizeof(*r));
  if (r == NULL) return NULL;
  if (len > 0 && (r->buf = (char *)malloc(len)) == NULL) {
    free(r);
    return NULL;
  }
  if (len >= HUGEREAD) {
    /* A read of a whole large file (read_file) fills fresh memory: in 2
    ** MiB pages, as Go's heap gets, it costs 1/512 of the page faults. */
    uintptr_t a = ((uintptr_t)r->buf + HUGEPAGE - 1) & ~(HUGEPAGE - 1);
    uintptr_t e = ((uintptr_t)r->buf + len) & ~(HUGEPAGE - 1);
    if (e > a) madvise((void *)a, e - a, MADV_HUGEPAGE);   /* a hint */
  }
  r->len = len;
  r->S = S;
  r->op = op;
  r->req.data = r;
  if (f) {
    r->f = f;
    f->busy = r;
    f->refs++;
  }
  return r;
}

/* The request on top of the stack, above base values, or NULL. */
static fsreq *toreq (lua_State *L, int base) {
  if (lua_gettop(L) > base && lua_islightuserdata(L, -1))
    return (fsreq *)lua_touserdata(L, -1);
  return NULL;
}

/* The request on top, which finished, leaves the stack and is freed. */
static void dropreq (lua_State *L, fsreq *r) {
  lua_pop(L, 1);
  r->op = -1;   /* its result is seen: an opened fd has its owner */
  freereq(r);
}

/* The cancel of a goroutine parked here, at its state's close, or after
** an in-place wait that raises. */
static void fscancel (gr_g *g) {
  fsreq *r;
  if (g->w.dir == ONFILE) {
    if (g->w.inq) {
      gr_waitq_remove(&((gr_file *)g->w.obj)->q, &g->w);
      g->S->iowait--;
    }
    return;
  }
  r = (fsreq *)g->w.obj;
  if (g->w.inq) {
    gr_waitq_remove(&r->q, &g->w);
    g->S->iowait--;
  }
  if (!r->done) r->abandoned = 1;   /* in flight (or woken by a close):
                                       the callback frees it */
  else freereq(r);   /* done, never seen */
}

/* What an attempt waits on when it returns AGAIN. */
typedef struct waiton {
  int mode;             /* GR_BLOCK_*, or GR_BLOCK_ASK until mayblock
                           found it out */
  void *obj;            /* the request, or the file */
  int dir;              /* ONREQ, ONFILE */
} waiton;

/* Whether the goroutine may block here: an attempt asks before it
** submits a request, as a request in flight commits it to wait. */
static int mayblock (lua_State *L, gr_state *S, waiton *on) {
  if (on->mode == GR_BLOCK_ASK) on->mode = gr_sched_quickmode(L, S);
  if (on->mode == GR_BLOCK_ASK) on->mode = gr_sched_blockmode(L, S);
  return on->mode != GR_BLOCK_NO;
}

/* An operation, run until it completes: returns the number of results
** pushed, or AGAIN after it set *on. ctx says the arguments. */
typedef int (*attemptf) (lua_State *L, gr_state *S, lua_KContext ctx,
                         waiton *on);

/* Parks the goroutine in one attempt's waits until attempt completes;
** k (which calls run again) resumes it after a yield. */
static int run (lua_State *L, gr_state *S, attemptf attempt,
                lua_KFunction k, lua_KContext ctx) {
  for (;;) {
    gr_g *g = S->current;
    waiton on;
    gr_waitq *q;
    int n, err;
    g->cancel = NULL;   /* a park here that ended */
    on.mode = GR_BLOCK_ASK;
    n = attempt(L, S, ctx, &on);
    if (n != AGAIN) return n;
    if (on.dir == ONREQ && ((fsreq *)on.obj)->done) continue;  /* refused */
    if (!mayblock(L, S, &on)) return gr_sched_cannotblock(L, GR_WIO);
    q = on.dir == ONREQ ? &((fsreq *)on.obj)->q : &((gr_file *)on.obj)->q;
    gr_wait_prepare(&g->w, g, on.obj, on.dir);
    gr_sched_prepark(g, on.mode, GR_WIO, fscancel);
    gr_waitq_push(q, &g->w);
    S->iowait++;
    if (on.mode != GR_BLOCK_INPLACE) return gr_sched_park(L, S, g, ctx, k);
    err = gr_sched_wait(L, S, g, 0);
    g->inplace = 0;
    if (err) {
      if (on.dir == ONREQ) lua_pop(L, 1);   /* fscancel owns it now */
      fscancel(g);
      g->cancel = NULL;
      gr_errors_raisewait(L, S, err);
    }
    g->reason = GR_WNONE;
  }
}

/* Makes the goroutine wait on r, which a uv_fs_* call returning rc
** submitted: the request goes on the stack. A request that libuv refused
** at once is done, with rc as its result (run sees it without waiting). */
static int submitted (lua_State *L, fsreq *r, int rc, waiton *on) {
  if (rc < 0) {
    r->req.result = rc;
    r->done = 1;
  }
  lua_pushlightuserdata(L, r);
  on->obj = r;
  on->dir = ONREQ;
  return AGAIN;
}

/* Pushes nil and "<op> <path>: <what>"; returns 2. */
static int fail (lua_State *L, const char *op, const char *path,
                 const char *what) {
  lua_pushnil(L);
  lua_pushfstring(L, "%s %s: %s", op, path, what);
  return 2;
}

static int failerr (lua_State *L, const char *op, const char *path,
                    int err) {
  return fail(L, op, path, gr_stream_strerror(err));
}

static int nomem (lua_State *L) {
  return luaL_error(L, "not enough memory");
}


/* --- files: the handle ---------------------------------------------------- */

static const char *const CLOSEDMSG = "file already closed";

/* The file of box, if it is not finalized and the runtime not closed. */
static gr_file *boxfile (lua_State *L, filebox *box) {
  if (box->f == NULL) luaL_error(L, "attempt to use a finalized file");
  gr_getstate(L);   /* raises once the runtime is closed */
  return box->f;
}

/* The file at index 1, for the methods of files (GR_UV_OWNMT). */
static gr_file *checkfile (lua_State *L) {
  filebox *box = (filebox *)gr_testud(L, 1, GR_UV_OWNMT);
  if (box == NULL) luaL_typeerror(L, 1, FILEMT);
  return boxfile(L, box);
}

/* Marks f closed: its waiters fail, the one parked on the busy request
** too (it abandons the request, which a read of a pipe may keep in the
** thread pool for long); the fd closes now, or when the busy request is
** released. Idempotent. */
static void closefile (gr_file *f) {
  gr_waiter *w;
  if (f->closed) return;
  f->closed = 1;
  if (f->std) atomic_store(&f->std->owner, NULL);
  wakeall(f);
  if (f->busy == NULL) closefd(f);
  else if ((w = f->busy->q.first) != NULL) {
    gr_waitq_remove(&f->busy->q, w);
    f->S->iowait--;
    gr_wait_wake(f->S, w);
  }
}

/* The request r on top of the stack, woken before it finished (its file
** closed): it leaves the stack, and its callback frees it. */
static void abandon (lua_State *L, fsreq *r) {
  lua_pop(L, 1);
  r->abandoned = 1;
}

static int lfile_gc (lua_State *L) {
  filebox *box = (filebox *)lua_touserdata(L, 1);
  gr_file *f = box->f;
  if (f == NULL) return 0;   /* idempotent */
  box->f = NULL;
  closefile(f);
  unref(f);
  return 0;
}

static int lfile_tostring (lua_State *L) {
  filebox *box = (filebox *)lua_touserdata(L, 1);
  if (box->f && !box->f->closed)
    lua_pushfstring(L, "goroutines.file (%s)", box->f->path);
  else lua_pushliteral(L, "goroutines.file (closed)");
  return 1;
}

/* The buffered bytes that the fd's offset is ahead of the reader go back
** (lseek does not wait on the device), so that a write or a seek sees
** the reader's position. */
static int unread (gr_file *f) {
  size_t n = f->tail - f->head;
  free(f->buf);
  f->buf = NULL;
  f->cap = f->head = f->tail = f->scanned = 0;
  if (n > 0 && lseek(f->fd, -(off_t)n, SEEK_CUR) < 0) return -errno;
  return 0;
}

/* The start of an attempt on f at stack base: takes the finished read of
** this goroutine into the buffer; 0 to go on, AGAIN to wait for the busy
** slot (*on set), or a failure pushed (positive). */
static int enter (lua_State *L, gr_file *f, int base, const char *op,
                  waiton *on) {
  fsreq *r = toreq(L, base);
  if (r && !r->done) abandon(L, r);
  else if (r) {
    GR_ASSERT(r->f == f && r->op == OP_READ);
    if (!f->closed) {
      ssize_t n = r->req.result;
      if (n > 0 && f->head == f->tail) {   /* the request's buffer */
        free(f->buf);
        f->buf = r->buf;
        f->cap = r->len;
        f->head = f->scanned = 0;
        f->tail = (size_t)n;
        r->buf = NULL;
      }
      else if (n > 0) {
        if (f->cap - f->tail < (size_t)n) {
          size_t cap = f->tail - f->head + (size_t)n;
          char *buf;
          if (f->head > 0) {
            memmove(f->buf, f->buf + f->head, f->tail - f->head);
            f->tail -= f->head;
            f->head = 0;
          }
          if (cap > f->cap) {
            if (cap < 2 * f->cap) cap = 2 * f->cap;
            if ((buf = (char *)realloc(f->buf, cap)) == NULL) {
              dropreq(L, r);
              return nomem(L);
            }
            f->buf = buf;
            f->cap = cap;
          }
        }
        memcpy(f->buf + f->tail, r->buf, (size_t)n);
        f->tail += (size_t)n;
      }
      else if (n == 0) f->eof = 1;
      else f->rerr = (int)n;
    }
    dropreq(L, r);
  }
  if (f->closed) return fail(L, op, f->path, CLOSEDMSG);
  if (f->busy) {
    on->obj = f;
    on->dir = ONFILE;
    return AGAIN;
  }
  return 0;
}


/* --- files: reading ------------------------------------------------------- */

/* Outcomes of a format besides a value pushed (1). */
enum { FMT_EOF = 0, FMT_ERR = -2, FMT_NONUM = -3, FMT_MORE = -4 };

static int starved (gr_file *f) {
  if (f->rerr) return FMT_ERR;
  if (f->eof) return FMT_EOF;
  return FMT_MORE;
}

static void consume (gr_file *f, size_t n) {
  f->head += n;
  f->scanned = f->scanned > n ? f->scanned - n : 0;
  if (f->head == f->tail) f->head = f->tail = f->scanned = 0;
}

static int readline (lua_State *L, gr_file *f, int keepnl) {
  size_t avail = f->tail - f->head;
  const char *p = f->buf ? f->buf + f->head : "", *nl = NULL;
  if (avail > f->scanned)
    nl = (const char *)memchr(p + f->scanned, '\n', avail - f->scanned);
  if (nl != NULL) {
    size_t len = (size_t)(nl - p);
    lua_pushlstring(L, p, keepnl ? len + 1 : len);
    consume(f, len + 1);
    return 1;
  }
  f->scanned = avail;
  if ((f->eof || f->rerr) && avail > 0) {   /* the last line, unended */
    lua_pushlstring(L, p, avail);
    consume(f, avail);
    return 1;
  }
  return starved(f);
}

/* Up to n bytes: all n unless the file ends first (Lua's rule). */
static int readchars (lua_State *L, gr_file *f, lua_Integer n) {
  size_t avail = f->tail - f->head;
  if ((lua_Unsigned)n > avail || avail == 0) {
    int r = starved(f);
    if (r == FMT_MORE || avail == 0) return r;
  }
  if ((lua_Unsigned)n < avail) avail = (size_t)n;
  lua_pushlstring(L, avail ? f->buf + f->head : "", avail);
  consume(f, avail);
  return 1;
}

static int readall (lua_State *L, gr_file *f) {
  size_t avail = f->tail - f->head;
  if (f->rerr) return FMT_ERR;
  if (!f->eof) return FMT_MORE;
  lua_pushlstring(L, avail ? f->buf + f->head : "", avail);
  consume(f, avail);
  return 1;
}

static int readnumber (lua_State *L, gr_file *f) {
  char num[MAXNUMERAL + 1];
  int len;
  while (f->head < f->tail && isspace((unsigned char)f->buf[f->head]))
    consume(f, 1);
  if (f->head == f->tail) return starved(f);
  len = gr_stream_scannumeral(f->buf + f->head, f->tail - f->head,
                              f->eof || f->rerr);
  if (len < 0) return FMT_MORE;
  memcpy(num, f->buf + f->head, (size_t)len);
  num[len] = '\0';
  consume(f, (size_t)len);
  if (lua_stringtonumber(L, num) == 0) return FMT_NONUM;
  return 1;
}

/* One format at index arg (checked by lread); *want: bytes to ask. */
static int readformat (lua_State *L, gr_file *f, int arg, size_t *want) {
  const char *p;
  *want = READCHUNK;
  if (lua_type(L, arg) == LUA_TNUMBER) {
    lua_Integer n = lua_tointeger(L, arg);
    size_t avail = f->tail - f->head;
    if ((lua_Unsigned)n > avail && (lua_Unsigned)n - avail > READCHUNK)
      *want = (size_t)n - avail;
    return readchars(L, f, n);
  }
  p = lua_tostring(L, arg);
  if (*p == '*') p++;
  switch (*p) {
    case 'l': return readline(L, f, 0);
    case 'L': return readline(L, f, 1);
    case 'a': {
      struct stat sb;
      off_t pos = lseek(f->fd, 0, SEEK_CUR);
      if (pos >= 0 && fstat(f->fd, &sb) == 0 && S_ISREG(sb.st_mode)) {
        if (sb.st_size - pos > (off_t)*want)   /* what the file has left */
          *want = (size_t)(sb.st_size - pos);
      }
      else if (f->cap > *want) *want = f->cap;   /* grows as it comes */
      return readall(L, f);
    }
    default: return readnumber(L, f);
  }
}

/* ctx of a read: the number of formats, and LINES for the iterator of
** lines(), which raises its errors and ends at EOF. */
#define LINES 0x10000

static int readfail (lua_State *L, gr_file *f, lua_KContext ctx, int nres,
                     int r) {
  if (r == FMT_NONUM) {   /* "n" read no numeral: Lua's fail */
    lua_pushnil(L);
    return nres + 1;
  }
  if (r == FMT_EOF) {
    if (ctx & LINES) {
      lua_pushnil(L);
      return 1;
    }
    lua_pushnil(L);
    lua_pushliteral(L, "EOF");
  }
  else failerr(L, "read", f->path, f->rerr);
  if (ctx & LINES) return lua_error(L);
  return nres + 2;
}

static int readattempt (lua_State *L, gr_state *S, lua_KContext ctx,
                        waiton *on) {
  gr_file *f = ((filebox *)lua_touserdata(L, 1))->f;
  int nf = (int)(ctx & 0xffff), base = nf + 1, nres, r;
  if (toreq(L, base) == NULL) nres = lua_gettop(L) - base;
  else nres = lua_gettop(L) - base - 1;
  r = enter(L, f, base + nres, "read", on);
  if (r == AGAIN) return r;
  if (r > 0) return (ctx & LINES) ? lua_error(L) : nres + r;
  if (!f->readable) {
    f->rerr = UV_EBADF;
    return readfail(L, f, ctx, nres, FMT_ERR);
  }
  for (; nres < nf; nres++) {
    size_t want;
    fsreq *q;
    uv_buf_t b;
    r = readformat(L, f, 2 + nres, &want);
    if (r == 1) continue;
    if (r != FMT_MORE) return readfail(L, f, ctx, nres, r);
    if (!mayblock(L, S, on)) return gr_sched_cannotblock(L, GR_WIO);
    if ((q = newreq(S, OP_READ, f, want)) == NULL) return nomem(L);
    b = uv_buf_init(q->buf, (unsigned)(want > 0x40000000 ? 0x40000000
                                                           : want));
    return submitted(L, q, uv_fs_read(&S->loop, &q->req, f->fd, &b, 1, -1,
                                      oncomplete), on);
  }
  return nf;
}

static int readk (lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  return run(L, gr_getstate(L), readattempt, readk, ctx);
}

/* file:read(...) -> values of Lua's file:read formats */
static int lfile_read (lua_State *L) {
  gr_file *f = checkfile(L);
  int nf;
  if (lua_gettop(L) == 1) lua_pushliteral(L, "l");
  nf = lua_gettop(L) - 1;
  if (nf > 250) luaL_argerror(L, 252, "too many formats");
  gr_stream_checkformats(L, 2, nf + 1);
  luaL_checkstack(L, nf + 8, "too many formats");
  f->eof = f->rerr = 0;   /* a file may grow: each call reads on */
  return run(L, f->S, readattempt, readk, nf);
}

static int linesiter (lua_State *L) {
  gr_file *f;
  lua_settop(L, 0);
  lua_pushvalue(L, lua_upvalueindex(GR_NUPVALUES + 1));
  lua_pushvalue(L, lua_upvalueindex(GR_NUPVALUES + 2));
  f = boxfile(L, (filebox *)lua_touserdata(L, 1));   /* lines checked it */
  f->eof = f->rerr = 0;
  if (f->busy == NULL && !f->closed && f->readable &&
      lua_type(L, 2) == LUA_TSTRING) {   /* a buffered line: at once */
    const char *p = lua_tostring(L, 2);
    if (*p == '*') p++;
    if ((*p == 'l' || *p == 'L') && readline(L, f, *p == 'L') == 1)
      return 1;
  }
  return run(L, f->S, readattempt, readk, 1 | LINES);
}

/* file:lines([fmt]) -> an iterator of reads of fmt, nil at the end */
static int lfile_lines (lua_State *L) {
  checkfile(L);
  if (lua_gettop(L) == 1) lua_pushliteral(L, "l");
  lua_settop(L, 2);
  gr_stream_checkformats(L, 2, 2);
  lua_pushvalue(L, GR_UV_STATE);
  lua_pushvalue(L, GR_UV_CHANMT);
  lua_pushvalue(L, GR_UV_CASEMT);
  lua_pushvalue(L, 1);
  lua_pushvalue(L, 2);
  lua_pushcclosure(L, linesiter, GR_NUPVALUES + 2);
  return 1;
}


/* --- files: writing, seeking, closing --------------------------------------- */

static int writeattempt (lua_State *L, gr_state *S, lua_KContext ctx,
                         waiton *on) {
  gr_file *f = ((filebox *)lua_touserdata(L, 1))->f;
  int n = (int)ctx, i, r;
  fsreq *q = toreq(L, n + 1);
  size_t total = 0, off = 0;
  uv_buf_t b;
  if (q && !q->done) {
    abandon(L, q);
    return fail(L, "write", f->path, CLOSEDMSG);
  }
  if (q) {
    ssize_t res = q->req.result;
    if (res >= 0 && q->off + (size_t)res < q->len && !f->closed) {
      q->off += (size_t)res;   /* a short write: the rest, on the slot */
      q->done = 0;
      uv_fs_req_cleanup(&q->req);
      b = uv_buf_init(q->buf + q->off, (unsigned)(q->len - q->off));
      lua_pop(L, 1);
      return submitted(L, q, uv_fs_write(&S->loop, &q->req, f->fd, &b, 1,
                                         -1, oncomplete), on);
    }
    dropreq(L, q);
    if (res < 0) return failerr(L, "write", f->path, (int)res);
    if (f->closed) return fail(L, "write", f->path, CLOSEDMSG);
    lua_pushvalue(L, 1);
    return 1;
  }
  if ((r = enter(L, f, n + 1, "write", on)) != 0) return r;
  if (!f->writable) return failerr(L, "write", f->path, UV_EBADF);
  for (i = 0; i < n; i++) total += lua_rawlen(L, 2 + i);
  if (total == 0) {
    lua_pushvalue(L, 1);
    return 1;
  }
  if (!mayblock(L, S, on)) return gr_sched_cannotblock(L, GR_WIO);
  if (f->std && f->std->cfile) fflush(f->std->cfile);   /* print's first */
  if ((r = unread(f)) < 0) return failerr(L, "write", f->path, r);
  if ((q = newreq(S, OP_WRITE, f, total)) == NULL) return nomem(L);
  for (i = 0; i < n; i++) {
    size_t len;
    const char *s = lua_tolstring(L, 2 + i, &len);
    memcpy(q->buf + off, s, len);
    off += len;
  }
  b = uv_buf_init(q->buf, (unsigned)(total > 0x40000000 ? 0x40000000
                                                          : total));
  return submitted(L, q, uv_fs_write(&S->loop, &q->req, f->fd, &b, 1, -1,
                                     oncomplete), on);
}

static int writek (lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  return run(L, gr_getstate(L), writeattempt, writek, ctx);
}

/* file:write(...) -> file, or nil and a message: every byte written */
static int lfile_write (lua_State *L) {
  gr_file *f = checkfile(L);
  int n = lua_gettop(L) - 1, i;
  for (i = 2; i <= n + 1; i++)
    luaL_checklstring(L, i, NULL);   /* a number becomes a string */
  luaL_checkstack(L, 8, "too many arguments");
  return run(L, f->S, writeattempt, writek, n);
}

static int seekattempt (lua_State *L, gr_state *S, lua_KContext ctx,
                        waiton *on) {
  static const int modes[] = { SEEK_SET, SEEK_CUR, SEEK_END };
  gr_file *f = ((filebox *)lua_touserdata(L, 1))->f;
  int whence = modes[ctx & 3], r;
  lua_Integer off = lua_tointeger(L, 3);
  off_t pos;
  (void)S;
  if ((r = enter(L, f, 3, "seek", on)) != 0) return r;
  if (whence == SEEK_CUR) off -= (lua_Integer)(f->tail - f->head);
  free(f->buf);
  f->buf = NULL;
  f->cap = f->head = f->tail = f->scanned = 0;
  if ((pos = lseek(f->fd, (off_t)off, whence)) < 0)
    return failerr(L, "seek", f->path, -errno);
  lua_pushinteger(L, (lua_Integer)pos);
  return 1;
}

static int seekk (lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  return run(L, gr_getstate(L), seekattempt, seekk, ctx);
}

/* file:seek([whence [, offset]]) -> position, as Lua's */
static int lfile_seek (lua_State *L) {
  static const char *const names[] = { "set", "cur", "end", NULL };
  gr_file *f = checkfile(L);
  int op = luaL_checkoption(L, 2, "cur", names);
  lua_Integer off = luaL_optinteger(L, 3, 0);
  lua_settop(L, 1);
  lua_pushinteger(L, op);
  lua_pushinteger(L, off);
  return run(L, f->S, seekattempt, seekk, op);
}

/* file:close() -> true, or nil and "close P: file already closed" */
static int lfile_close (lua_State *L) {
  gr_file *f = checkfile(L);
  if (f->closed) return fail(L, "close", f->path, CLOSEDMSG);
  closefile(f);
  lua_pushboolean(L, 1);
  return 1;
}

/* __close: as close(), silently for a closed file. */
static int lfile_toclose (lua_State *L) {
  filebox *box = (filebox *)lua_touserdata(L, 1);
  if (box->f) closefile(box->f);
  return 0;
}


/* --- g.os: open and the file system --------------------------------------- */

/* Stack of open: path, mode, the file's userdata (made before the
** request, so that nothing can fail once the fd exists). */
static int openattempt (lua_State *L, gr_state *S, lua_KContext ctx,
                        waiton *on) {
  gr_file *f = ((filebox *)lua_touserdata(L, 3))->f;
  fsreq *r = toreq(L, 3);
  if (r) {
    ssize_t fd = r->req.result;
    dropreq(L, r);   /* r->op is no longer OP_OPEN: the fd is kept */
    if (fd < 0) return failerr(L, "open", f->path, (int)fd);
    f->fd = (uv_file)fd;
    f->closed = 0;
    return 1;
  }
  if (!mayblock(L, S, on)) return gr_sched_cannotblock(L, GR_WIO);
  if ((r = newreq(S, OP_OPEN, NULL, 0)) == NULL) return nomem(L);
  return submitted(L, r, uv_fs_open(&S->loop, &r->req, f->path,
                                    (int)ctx | O_CLOEXEC, 0666,
                                    oncomplete), on);
}

static int openk (lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  return run(L, gr_getstate(L), openattempt, openk, ctx);
}

/* A new file of S named path (len bytes), closed, in a userdata pushed
** on L. Raises without memory. */
static gr_file *newfile (lua_State *L, gr_state *S, const char *path,
                         size_t len) {
  filebox *box = (filebox *)lua_newuserdatauv(L, sizeof(*box), 0);
  gr_file *f;
  box->f = NULL;
  luaL_setmetatable(L, FILEMT);
  f = (gr_file *)calloc(1, sizeof(*f) + len + 1);
  if (f == NULL) nomem(L);
  f->S = S;
  f->fd = -1;
  f->refs = 1;
  f->closed = 1;
  memcpy(f->path, path, len + 1);
  box->f = f;
  return f;
}

/* g.os.open(path [, mode]) -> file, or nil and a message */
static int los_open (lua_State *L) {
  gr_state *S = gr_getstate(L);
  size_t len;
  const char *path = luaL_checklstring(L, 1, &len);
  const char *mode = luaL_optstring(L, 2, "r"), *m = mode;
  int flags, plus;
  gr_file *f;
  switch (*m++) {
    case 'r': flags = 0; break;
    case 'w': flags = O_CREAT | O_TRUNC; break;
    case 'a': flags = O_CREAT | O_APPEND; break;
    default: return luaL_argerror(L, 2, "invalid mode");
  }
  plus = *m == '+';
  if (plus) m++;
  if (*m == 'b') m++;
  if (*m != '\0') return luaL_argerror(L, 2, "invalid mode");
  if (strlen(path) != len)
    return luaL_argerror(L, 1, "path contains a zero byte");
  flags |= plus ? O_RDWR : *mode == 'r' ? O_RDONLY : O_WRONLY;
  lua_settop(L, 2);
  f = newfile(L, S, path, len);   /* closed until the open completes */
  f->readable = plus || *mode == 'r';
  f->writable = plus || *mode != 'r';
  return run(L, S, openattempt, openk, flags);
}

/* Every call of g.os but open: the arguments (checked) at 1..nargs; ctx
** is the OP_*. */
static const char *argpath (lua_State *L, int i) {
  size_t len;
  const char *p = luaL_checklstring(L, i, &len);
  if (strlen(p) != len) luaL_argerror(L, i, "path contains a zero byte");
  return p;
}

/* The last element of path p, as Go's filepath.Base: trailing slashes
** dropped ("/tmp/" gives "tmp", "/" gives "/"). */
static void pushbase (lua_State *L, const char *p) {
  size_t n = strlen(p), i;
  while (n > 1 && p[n - 1] == '/') n--;
  for (i = n; i > 0 && p[i - 1] != '/'; i--) {}
  if (i == n) lua_pushlstring(L, p, n);   /* "/" */
  else lua_pushlstring(L, p + i, n - i);
}

static int cmpname (const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The results of the finished request r of op on the stack; r is freed. */
static int fsresults (lua_State *L, fsreq *r, int op) {
  ssize_t res = r->req.result;
  const char *p = lua_tostring(L, 1);
  if (res < 0) {
    int err = (int)res;
    if (op == OP_UNLINK && (err == UV_EISDIR || err == UV_EPERM)) {
      dropreq(L, r);   /* Go's Remove: a directory goes with rmdir */
      return -1;
    }
    dropreq(L, r);
    switch (op) {
      case OP_STAT: return failerr(L, "stat", p, err);
      case OP_SCANDIR:
        return failerr(L, err == UV_ENOTDIR ? "readdirent" : "open", p,
                       err);
      case OP_UNLINK: case OP_RMDIR: return failerr(L, "remove", p, err);
      case OP_MKDIR: return failerr(L, "mkdir", p, err);
      default: {
        lua_pushnil(L);
        lua_pushfstring(L, "rename %s %s: %s", p, lua_tostring(L, 2),
                        gr_stream_strerror(err));
        return 2;
      }
    }
  }
  if (op == OP_STAT) {
    uv_stat_t st = r->req.statbuf;
    dropreq(L, r);
    lua_createtable(L, 0, 5);
    pushbase(L, p);
    lua_setfield(L, -2, "name");
    lua_pushinteger(L, (lua_Integer)st.st_size);
    lua_setfield(L, -2, "size");
    lua_pushinteger(L, (lua_Integer)(st.st_mode & 07777));
    lua_setfield(L, -2, "mode");
    lua_pushboolean(L, S_ISDIR(st.st_mode));
    lua_setfield(L, -2, "is_dir");
    lua_pushnumber(L, (lua_Number)st.st_mtim.tv_sec +
                      (lua_Number)st.st_mtim.tv_nsec / 1e9);
    lua_setfield(L, -2, "mtime");
    return 1;
  }
  if (op == OP_SCANDIR) {
    uv_dirent_t ent;
    const char **names;
    int n = 0, i;
    lua_pop(L, 1);   /* the request: nothing below raises but memory */
    lua_createtable(L, (int)res, 0);   /* the names, as listed */
    lua_createtable(L, 0, (int)res);   /* name -> is_dir */
    while (uv_fs_scandir_next(&r->req, &ent) != UV_EOF) {
      lua_pushstring(L, ent.name);
      lua_rawseti(L, -3, ++n);
      lua_pushboolean(L, ent.type == UV_DIRENT_DIR);
      lua_setfield(L, -2, ent.name);
    }
    r->op = -1;
    freereq(r);
    names = (const char **)lua_newuserdatauv(
        L, (size_t)(n ? n : 1) * sizeof(char *), 0);
    for (i = 0; i < n; i++) {   /* the list keeps the strings */
      lua_rawgeti(L, -3, i + 1);
      names[i] = lua_tostring(L, -1);
      lua_pop(L, 1);
    }
    qsort(names, (size_t)n, sizeof(*names), cmpname);
    lua_createtable(L, n, 0);
    for (i = 0; i < n; i++) {
      lua_createtable(L, 0, 2);
      lua_pushstring(L, names[i]);
      lua_setfield(L, -2, "name");
      lua_getfield(L, -4, names[i]);
      lua_setfield(L, -2, "is_dir");
      lua_rawseti(L, -2, i + 1);
    }
    return 1;
  }
  dropreq(L, r);
  lua_pushboolean(L, 1);
  return 1;
}

static int fsattempt (lua_State *L, gr_state *S, lua_KContext ctx,
                      waiton *on) {
  int op = (int)(ctx & 0xff), nargs = (int)(ctx >> 8), rc;
  fsreq *r = toreq(L, nargs);
  const char *p = lua_tostring(L, 1);
  if (r) {
    int n = fsresults(L, r, op);
    if (n >= 0) return n;
    op = OP_RMDIR;   /* the same call goes on with rmdir */
  }
  if (!mayblock(L, S, on)) return gr_sched_cannotblock(L, GR_WIO);
  if ((r = newreq(S, op, NULL, 0)) == NULL) return nomem(L);
  switch (op) {
    case OP_STAT:
      rc = uv_fs_stat(&S->loop, &r->req, p, oncomplete);
      break;
    case OP_SCANDIR:
      rc = uv_fs_scandir(&S->loop, &r->req, p, 0, oncomplete);
      break;
    case OP_UNLINK:
      rc = uv_fs_unlink(&S->loop, &r->req, p, oncomplete);
      break;
    case OP_RMDIR:
      rc = uv_fs_rmdir(&S->loop, &r->req, p, oncomplete);
      break;
    case OP_MKDIR:
      rc = uv_fs_mkdir(&S->loop, &r->req, p, (int)lua_tointeger(L, 2),
                       oncomplete);
      break;
    default:
      rc = uv_fs_rename(&S->loop, &r->req, p, lua_tostring(L, 2),
                        oncomplete);
      break;
  }
  return submitted(L, r, rc, on);
}

static int fsk (lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  return run(L, gr_getstate(L), fsattempt, fsk, ctx);
}

static int fsop (lua_State *L, int op, int nargs) {
  gr_state *S = gr_getstate(L);
  lua_settop(L, nargs);
  return run(L, S, fsattempt, fsk, (lua_KContext)(op | nargs << 8));
}

/* g.os.stat(path) -> {name, size, mode, is_dir, mtime} */
static int los_stat (lua_State *L) {
  argpath(L, 1);
  return fsop(L, OP_STAT, 1);
}

/* g.os.readdir(path) -> list of {name, is_dir}, sorted by name */
static int los_readdir (lua_State *L) {
  argpath(L, 1);
  return fsop(L, OP_SCANDIR, 1);
}

/* g.os.remove(path) -> true: a file, or an empty directory */
static int los_remove (lua_State *L) {
  argpath(L, 1);
  return fsop(L, OP_UNLINK, 1);
}

/* g.os.rename(old, new) -> true */
static int los_rename (lua_State *L) {
  argpath(L, 1);
  argpath(L, 2);
  return fsop(L, OP_RENAME, 2);
}

/* g.os.mkdir(path [, perm]) -> true; perm defaults to 0777 (umask'd) */
static int los_mkdir (lua_State *L) {
  lua_Integer perm = luaL_optinteger(L, 2, 0777);
  argpath(L, 1);
  luaL_argcheck(L, perm >= 0 && perm <= 07777, 2, "invalid permissions");
  lua_settop(L, 1);
  lua_pushinteger(L, perm);
  return fsop(L, OP_MKDIR, 2);
}

/* g.os.getpid() -> the process id */
static int los_getpid (lua_State *L) {
  lua_pushinteger(L, (lua_Integer)uv_os_getpid());
  return 1;
}

/* --- g.os.stdin, stdout, stderr ------------------------------------------ */

#define STDIOMT "goroutines.stdio"

static stdfd stdfds[3];
static const char *const stdnames[] = { "stdin", "stdout", "stderr", NULL };
static const char *const stdpaths[] = {
  "/dev/stdin", "/dev/stdout", "/dev/stderr"
};

/* The stream's close: the fd's description gets its flags back, and the
** fd is free for another state. */
static void stdclose (gr_stream *st) {
  stdfd *d = (stdfd *)st->closearg;
  if (d->shared) fcntl((int)(d - stdfds), F_SETFL, d->flags);
  atomic_store(&d->owner, NULL);
}

static void stdprewrite (gr_stream *st) {
  fflush(((stdfd *)st->closearg)->cfile);   /* what print left first */
}

/* fd, moved above 2 if it took the number of a closed fd 0-2 (libuv
** never closes those); -1 if that fails. */
static int highfd (int fd) {
  int high;
  if (fd > 2) return fd;
  high = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  close(fd);
  return high;
}

/* An fd for libuv to poll in place of fd n, a pipe or a socket: one of
** its own file description if it can be had (a pipe or a fifo reopened
** through /proc, non-blocking), else a dup; -1 if neither works. */
static int pipefd (int n, int *shared) {
  char path[32];
  int fd;
  snprintf(path, sizeof(path), "/proc/self/fd/%d", n);
  fd = open(path, (n == 0 ? O_RDONLY : O_WRONLY) | O_NONBLOCK | O_CLOEXEC);
  *shared = fd < 0;   /* a socket cannot be reopened (ENXIO) */
  if (fd < 0) return fcntl(n, F_DUPFD_CLOEXEC, 3);
  return highfd(fd);
}

/* Opens the handle of fd n, a terminal or a pipe, in st: 0, or libuv's
** error (st keeps no handle, and no fd is left open). */
static int openstdhandle (gr_stream *st, stdfd *d, int n, int tty) {
  uv_os_fd_t hfd;
  int fd, r;
  d->flags = fcntl(n, F_GETFL);
  if (d->flags < 0) return -errno;
  if (tty) {
    /* uv_tty_init reopens a terminal (a description of its own) and
    ** dup2's it over the fd it gets: give it a dup of n to replace. */
    if ((fd = fcntl(n, F_DUPFD_CLOEXEC, 3)) < 0) return -errno;
    if ((r = uv_tty_init(&st->S->loop, &st->u.tty, fd, 0)) < 0) {
      close(fd);
      return r;
    }
    gr_stream_adopt(st, GR_STTY);
    uv_fileno(&st->u.h, &hfd);
    d->shared = hfd == fd;   /* not reopened: the shared description */
    if (hfd != fd) close(fd);   /* a copy of the handle's own fd */
    return 0;
  }
  if ((fd = pipefd(n, &d->shared)) < 0) return -errno;
  uv_pipe_init(&st->S->loop, &st->u.pipe, 0);   /* cannot fail */
  gr_stream_adopt(st, GR_SPIPE);
  if ((r = uv_pipe_open(&st->u.pipe, fd)) < 0) {
    close(fd);
    if (d->shared) fcntl(n, F_SETFL, d->flags);
    gr_stream_close(st);
  }
  return r;
}

/* Pushes the stream of fd n for S (a light userdata at 1, n at 2), whose
** record S owns; raises only without memory. */
static int openstd (lua_State *L) {
  gr_state *S = (gr_state *)lua_touserdata(L, 1);
  int n = (int)lua_tointeger(L, 2);
  stdfd *d = &stdfds[n];
  uv_handle_type type = uv_guess_handle(n);
  gr_file *f;
  d->cfile = n == 0 ? NULL : n == 1 ? stdout : stderr;
  d->shared = 0;
  if (type == UV_TTY || type == UV_NAMED_PIPE || type == UV_TCP) {
    gr_stream *st = gr_stream_new(L, S, STDIOMT, stdpaths[n]);
    st->file = 1;   /* "read /dev/stdin: file already closed" */
    if (openstdhandle(st, d, n, type == UV_TTY) == 0) {
      st->onclose = stdclose;
      st->closearg = d;
      if (n > 0) st->prewrite = stdprewrite;
      gr_stream_nosigpipe();
      return 1;
    }
    lua_pop(L, 1);   /* a closed stream: n goes to the thread pool */
  }
  /* A file on the thread pool: a regular file, a device, a closed fd (a
  ** dup fails: every call says "bad file descriptor"). */
  f = newfile(L, S, stdpaths[n], strlen(stdpaths[n]));
  f->fd = fcntl(n, F_DUPFD_CLOEXEC, 3);
  f->closed = 0;
  f->readable = n == 0 && f->fd >= 0;
  f->writable = n > 0 && f->fd >= 0;
  f->std = d;
  return 1;
}

/* __index of g.os: g.os.stdin, stdout and stderr, made at first use and
** kept in g.os. */
static int los_index (lua_State *L) {
  gr_state *S;
  gr_state *none = NULL;
  int n;
  if (lua_type(L, 2) != LUA_TSTRING) return 0;
  for (n = 0; stdnames[n]; n++)
    if (strcmp(lua_tostring(L, 2), stdnames[n]) == 0) break;
  if (stdnames[n] == NULL) return 0;
  S = gr_getstate(L);
  if (S->worker != NULL)
    return luaL_error(L, "g.os.%s belongs to the main state (a parallel "
                      "goroutine can send to it over a channel)",
                      stdnames[n]);
  if (!atomic_compare_exchange_strong(&stdfds[n].owner, &none, S))
    return luaL_error(L, "g.os.%s is in use by another Lua state",
                      stdnames[n]);
  lua_pushcfunction(L, openstd);
  lua_pushlightuserdata(L, S);
  lua_pushinteger(L, n);
  if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
    atomic_store(&stdfds[n].owner, NULL);
    return lua_error(L);
  }
  lua_pushvalue(L, 2);
  lua_pushvalue(L, -2);
  lua_rawset(L, 1);
  return 1;
}

/* stdio:seek(): as a file's, on a stream that cannot seek. */
static int lstd_seek (lua_State *L) {
  static const char *const names[] = { "set", "cur", "end", NULL };
  gr_stream *st = gr_stream_check(L, 1, STDIOMT);
  luaL_checkoption(L, 2, "cur", names);
  luaL_optinteger(L, 3, 0);
  return gr_stream_fail(L, st, "seek", st->closed ? CLOSEDMSG
                                                  : "illegal seek");
}

static const luaL_Reg filemethods[] = {
  {"read", lfile_read},
  {"write", lfile_write},
  {"lines", lfile_lines},
  {"seek", lfile_seek},
  {"close", lfile_close},
  {NULL, NULL}
};

static const luaL_Reg funcs[] = {
  {"open", los_open},
  {"stat", los_stat},
  {"readdir", los_readdir},
  {"remove", los_remove},
  {"rename", los_rename},
  {"mkdir", los_mkdir},
  {"getpid", los_getpid},
  {NULL, NULL}
};

static const luaL_Reg osmeta[] = {
  {"__index", los_index},
  {NULL, NULL}
};

void gr_os_open (lua_State *L) {
  luaL_newmetatable(L, FILEMT);
  lua_pushcfunction(L, lfile_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, lfile_toclose);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, lfile_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_newtable(L);
  gr_state_setmethods(L, filemethods, -2);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lua_newtable(L);
  gr_stream_setmethods(L, GR_SMETAFILE);
  lua_pushcfunction(L, lstd_seek);
  lua_setfield(L, -2, "seek");
  gr_stream_newmeta(L, STDIOMT, GR_SMETAFILE);
  lua_newtable(L);
  gr_state_setfuncs(L, funcs);
  lua_newtable(L);   /* its metatable */
  gr_state_setfuncs(L, osmeta);
  lua_setmetatable(L, -2);
  lua_setfield(L, -2, "os");
}
