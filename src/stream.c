/*
** stream.c -- I/O handles that block only the goroutine (stream.h): the
** wait queues and deadlines of a libuv handle, and the byte stream on top
** of it: a read buffer in C that serves Lua's file:read formats, writes
** that complete or fail as a whole, close and close_write.
**
** Everything here runs on the thread of the handle's state, on its loop:
** the libuv callbacks only move bytes and ready goroutines (they never
** run Lua code), so a goroutine blocked in I/O parks as on a channel and
** the callback is its single waker.
**
** Invariants (owner thread):
**   A waiter is in st->q[dir] only while its goroutine is parked on st,
**     and each queued waiter counts once in S->iowait (the scheduler's
**     deadlock check: the outside world may wake it).
**   Once st->closed is set no waiter is queued again and no write request
**     points to a goroutine: a closed stream only waits for its handles'
**     close callbacks, and is freed when refs (the userdata, plus each
**     handle not yet closed) drops to 0.
**   A write request is in st->wreqs from uv_write until it is freed: by
**     its callback if its goroutine left (w NULL: timed out, or the stream
**     closed), else by that goroutine once it saw the outcome.
**   A goroutine parked on st holds st's userdata on its stack, so a
**     collection never finalizes a handle with waiters; lua_close does,
**     and the handle then closes before the scheduler cancels the parked
**     goroutines (their cancel finds them dequeued).
** Lock order: none; no lock is taken here.
*/
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "errors.h"
#include "state.h"
#include "stream.h"

#define READFIRST  16384    /* the first buffer of a stream that has none */
#define MAXSPARE   64       /* READFIRST buffers a state keeps for reuse */
#define READCHUNK  65536    /* bytes offered to each read once it grows */
#define READMIN    4096     /* less room than this: compact or grow */
#define HIGHWATER  65536    /* buffered bytes that stop read-ahead */
#define MAXNUMERAL 200      /* Lua's L_MAXLENNUM */

/* A write that could not complete at once: the bytes left, copied. */
struct gr_wreq {
  uv_write_t req;
  gr_stream *st;
  gr_wreq *next, *prev;  /* in st->wreqs */
  gr_waiter *w;         /* the writer's waiter, NULL once it left */
  int done;             /* the callback ran, with status */
  int status;
  char data[];
};

/* The key of a stream metatable's kind (GR_SMETA*). */
static const char kindkey = 0;

/* The userdata of a handle. A box knows its metatable's kind, so that a
** method checks its handle without a table lookup (checkkind): magic is
** &kindkey in every box. */
typedef struct {
  gr_stream *st;
  const char *magic;
  int kind;
} streambox;

#define CLOSEDMSG closedmsg(st)
static const char *const TIMEOUTMSG = "i/o timeout";


/* What an operation on a closed stream says. */
static const char *closedmsg (gr_stream *st) {
  if (st->moved) return "use of moved connection";
  return st->file ? "file already closed"
                  : "use of closed network connection";
}

static uv_once_t sigpipeonce = UV_ONCE_INIT;

static void ignoresigpipe (void) {
  struct sigaction sa;
  if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL &&
      !(sa.sa_flags & SA_SIGINFO))
    signal(SIGPIPE, SIG_IGN);
}

void gr_stream_nosigpipe (void) {
  uv_once(&sigpipeonce, ignoresigpipe);
}

/* --- life cycle ------------------------------------------------------- */

static void unlinkwreq (gr_stream *st, gr_wreq *wr) {
  if (wr->prev) wr->prev->next = wr->next;
  else st->wreqs = wr->next;
  if (wr->next) wr->next->prev = wr->prev;
}

static void freestream (gr_stream *st) {
  gr_dgram *d = st->dhead;
  GR_ASSERT(st->wreqs == NULL && st->q[0].first == NULL &&
            st->q[1].first == NULL);
  while (d) {
    gr_dgram *next = d->next;
    free(d);
    d = next;
  }
  if (st->res) uv_freeaddrinfo(st->res);
  if (st->pendfd >= 0) close(st->pendfd);
  free(st->buf);
  free(st->laddr);
  free(st->raddr);
  free(st->unlinkpath);
  free(st->name);
  free(st);
}

static void unref (gr_stream *st) {
  if (--st->refs == 0) freestream(st);
}

static void onclosed (uv_handle_t *h) {
  unref((gr_stream *)h->data);
}

static void ontimer (uv_timer_t *t);

gr_stream *gr_stream_new (lua_State *L, gr_state *S, const char *mt,
                          const char *net) {
  streambox *box = (streambox *)lua_newuserdatauv(L, sizeof(*box), 0);
  gr_stream *st;
  int i;
  box->st = NULL;
  box->magic = &kindkey;
  luaL_setmetatable(L, mt);
  box->kind = GR_SMETANONE;
  if (lua_getmetatable(L, -1)) {
    lua_rawgetp(L, -1, &kindkey);
    box->kind = (int)lua_tointeger(L, -1);
    lua_pop(L, 2);
  }
  st = (gr_stream *)calloc(1, sizeof(*st));
  if (st == NULL) luaL_error(L, "not enough memory");
  st->S = S;
  st->net = net;
  st->refs = 1;   /* the userdata's */
  st->pendfd = -1;
  for (i = 0; i < 2; i++) {
    uv_timer_init(&S->loop, &st->timer[i]);   /* cannot fail */
    st->timer[i].data = st;
    st->refs++;
  }
  box->st = st;
  return st;
}

void gr_stream_adopt (gr_stream *st, int kind) {
  st->kind = kind;
  st->u.h.data = st;
  st->refs++;
}

gr_stream *gr_stream_check (lua_State *L, int idx, const char *mt) {
  streambox *box = (streambox *)luaL_checkudata(L, idx, mt);
  if (box->st == NULL) luaL_error(L, "attempt to use a finalized %s", mt);
  return box->st;
}

static void dequeue (gr_stream *st, int dir, gr_waiter *w) {
  gr_waitq_remove(&st->q[dir], w);
  st->S->iowait--;
}

void gr_stream_wakeall (gr_stream *st, int dir) {
  gr_waiter *w;
  while ((w = st->q[dir].first) != NULL) {
    dequeue(st, dir, w);
    gr_wait_wake(st->S, w);
  }
}

void gr_stream_close (gr_stream *st) {
  gr_wreq *wr, *next;
  int i;
  if (st->closed) return;
  st->closed = 1;
  if (st->onclose) st->onclose(st);
  gr_stream_wakeall(st, GR_SREAD);
  gr_stream_wakeall(st, GR_SWRITE);
  for (wr = st->wreqs; wr != NULL; wr = next) {
    next = wr->next;
    if (wr->done) {       /* its writer has not looked yet: it will see
                             the stream closed, not the request */
      unlinkwreq(st, wr);
      free(wr);
    }
    else wr->w = NULL;    /* freed by its callback (UV_ECANCELED) */
  }
  if (st->gai) {          /* its callback frees it */
    st->gai->data = NULL;
    uv_cancel((uv_req_t *)st->gai);
    st->gai = NULL;
  }
  if (st->unlinkpath) unlink(st->unlinkpath);
  if (st->kind != GR_SNONE) uv_close(&st->u.h, onclosed);
  for (i = 0; i < 2; i++) uv_close((uv_handle_t *)&st->timer[i], onclosed);
}

/* __close: closes the handle, as close() does. */
static int lstream_close (lua_State *L) {
  streambox *box = (streambox *)lua_touserdata(L, 1);
  if (box->st) gr_stream_close(box->st);
  return 0;
}

/* __gc: closes the handle and lets go of it. */
static int lstream_gc (lua_State *L) {
  streambox *box = (streambox *)lua_touserdata(L, 1);
  gr_stream *st = box->st;
  if (st == NULL) return 0;   /* idempotent */
  box->st = NULL;
  gr_stream_close(st);
  unref(st);
  return 0;
}

static int lstream_tostring (lua_State *L) {
  luaL_getmetafield(L, 1, "__name");
  lua_pushfstring(L, "%s: %p", lua_tostring(L, -1), lua_touserdata(L, 1));
  return 1;
}


/* --- waiting ---------------------------------------------------------- */

int gr_stream_expired (gr_stream *st, int dir) {
  return st->deadline[dir] != 0 && uv_hrtime() >= st->deadline[dir];
}

/* Arms the deadline timer of dir, for the waiters just queued. */
static void arm (gr_stream *st, int dir) {
  uint64_t now, d = st->deadline[dir], ms;
  if (d == 0 || st->closed) return;
  now = uv_hrtime();
  ms = d > now ? (d - now + 999999) / 1000000 : 0;
  uv_update_time(&st->S->loop);
  uv_timer_start(&st->timer[dir], ontimer, ms, 0);
}

/* A deadline timer: wakes the waiters of its direction once the deadline
** has passed (they fail), or waits on for a deadline moved later. The
** scheduler sleeps in uv_run(UV_RUN_ONCE), which polls after its timers:
** uv_stop makes that poll return at once. */
static void ontimer (uv_timer_t *t) {
  gr_stream *st = (gr_stream *)t->data;
  int dir = t == &st->timer[GR_SWRITE];
  if (st->q[dir].first == NULL) return;
  if (gr_stream_expired(st, dir)) {
    gr_stream_wakeall(st, dir);
    uv_stop(t->loop);
  }
  else arm(st, dir);
}

/* The cancel of a goroutine parked on a stream, at its state's close. */
static void iocancel (gr_g *g) {
  gr_stream *st = (gr_stream *)g->w.obj;
  gr_wreq *wr, *next;
  if (!g->w.inq) return;   /* woken: its stream may be gone */
  dequeue(st, g->w.dir, &g->w);
  for (wr = st->wreqs; wr != NULL; wr = next) {
    next = wr->next;
    if (wr->w != &g->w) continue;
    if (wr->done) {
      unlinkwreq(st, wr);
      free(wr);
    }
    else wr->w = NULL;
  }
}

int gr_stream_run (lua_State *L, gr_stream *st, int dir, gr_sattempt f,
                   lua_KFunction k, lua_KContext ctx) {
  gr_state *S = st->S;
  for (;;) {
    gr_g *g = S->current;
    int n, mode, err;
    g->cancel = NULL;      /* a park on st that ended */
    n = f(L, st, ctx);
    if (n != GR_SAGAIN) return n;
    mode = gr_sched_blockmode(L, S);
    if (mode == GR_BLOCK_NO) return gr_sched_cannotblock(L, GR_WIO);
    gr_wait_prepare(&g->w, g, st, dir);
    gr_sched_prepark(g, mode, GR_WIO, iocancel);
    gr_waitq_push(&st->q[dir], &g->w);
    S->iowait++;
    arm(st, dir);
    if (mode != GR_BLOCK_INPLACE) return gr_sched_park(L, S, g, ctx, k);
    err = gr_sched_wait(L, S, g, 0);
    g->inplace = 0;
    if (err) {
      if (g->w.inq) dequeue(st, dir, &g->w);
      g->cancel = NULL;
      gr_errors_raisewait(L, S, err);
    }
    g->reason = GR_WNONE;
  }
}


/* --- messages ---------------------------------------------------------- */

const char *gr_stream_strerror (int err) {
  static __thread char buf[128];
  const char *s;
  if (err == UV_EOF) return "EOF";
  if (err == UV_ECANCELED) return "operation was canceled";
  if (err == UV_EAI_NONAME || err == UV_EAI_NODATA) return "no such host";
  if (err <= UV_EAI_ADDRFAMILY && err >= UV_EAI_SOCKTYPE)
    return uv_strerror(err);
  /* Go prints the C library's text, lower-cased at the start. */
  s = strerror(-err);
  snprintf(buf, sizeof(buf), "%s", s);
  buf[0] = (char)tolower((unsigned char)buf[0]);
  return buf;
}

int gr_stream_fail (lua_State *L, gr_stream *st, const char *op,
                    const char *what) {
  luaL_Buffer b;
  lua_pushnil(L);
  luaL_buffinit(L, &b);
  luaL_addstring(&b, op);
  luaL_addchar(&b, ' ');
  luaL_addstring(&b, st->net);
  if (st->laddr || st->raddr) {
    luaL_addchar(&b, ' ');
    if (st->laddr) luaL_addstring(&b, st->laddr);
    if (st->laddr && st->raddr) luaL_addstring(&b, "->");
    if (st->raddr) luaL_addstring(&b, st->raddr);
  }
  luaL_addstring(&b, ": ");
  luaL_addstring(&b, what);
  luaL_pushresult(&b);
  return 2;
}


/* --- reading ----------------------------------------------------------- */

/* A buffer emptied is kept in S->iospare for the next stream that reads
** (up to MAXSPARE of them, linked through their first bytes): an idle
** stream holds no buffer, and a busy server does not take one from malloc
** and give it back at each message. */
typedef struct spare {
  struct spare *next;
  int n;                /* buffers in the list from this one on */
} spare;

static void putspare (gr_state *S, char *buf) {
  spare *sp = (spare *)(void *)buf, *head = (spare *)S->iospare;
  int n = head ? head->n : 0;
  if (n >= MAXSPARE) {
    free(buf);
    return;
  }
  sp->next = head;
  sp->n = n + 1;
  S->iospare = sp;
}

void gr_stream_closestate (gr_state *S) {
  spare *sp = (spare *)S->iospare;
  S->iospare = NULL;
  while (sp) {
    spare *next = sp->next;
    free(sp);
    sp = next;
  }
}

/* Offers libuv the room at the end of the buffer, compacting or growing
** it first; no room (no memory) makes the read fail with UV_ENOBUFS. */
static void onalloc (uv_handle_t *h, size_t suggested, uv_buf_t *b) {
  gr_stream *st = (gr_stream *)h->data;
  (void)suggested;
  if (st->buf == NULL && st->S->iospare) {
    spare *sp = (spare *)st->S->iospare;
    st->S->iospare = sp->next;
    st->buf = (char *)sp;
    st->cap = READFIRST;
  }
  if (st->cap - st->tail < READMIN && st->head > 0) {
    memmove(st->buf, st->buf + st->head, st->tail - st->head);
    st->tail -= st->head;
    st->head = 0;
  }
  if (st->cap - st->tail < READMIN) {
    size_t cap = st->cap == 0 ? READFIRST
               : st->cap * 2 > st->tail + READCHUNK ? st->cap * 2
                                                    : st->tail + READCHUNK;
    char *buf = (char *)realloc(st->buf, cap);
    if (buf == NULL) {
      *b = uv_buf_init(NULL, 0);
      return;
    }
    st->buf = buf;
    st->cap = cap;
  }
  *b = uv_buf_init(st->buf + st->tail, (unsigned)(st->cap - st->tail));
}

static void stopread (gr_stream *st) {
  if (st->reading) {
    uv_read_stop(&st->u.s);
    st->reading = 0;
  }
}

/* Data, the end of the stream or an error: wakes the readers. Without
** readers, reads ahead up to HIGHWATER bytes. */
static void onread (uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  gr_stream *st = (gr_stream *)s->data;
  (void)b;
  if (n > 0) st->tail += (size_t)n;
  else if (n < 0) {
    st->rerr = (int)n;
    stopread(st);
  }
  else return;
  if (st->q[GR_SREAD].first) gr_stream_wakeall(st, GR_SREAD);
  else if (st->tail - st->head >= HIGHWATER) stopread(st);
}

void gr_stream_startread (gr_stream *st) {
  if (!st->reading && st->rerr == 0 && !st->closed) {
    int r = uv_read_start(&st->u.s, onalloc, onread);
    if (r < 0) st->rerr = r;
    else st->reading = 1;
  }
}

/* Drops n bytes from the front of the buffer; an empty buffer is given
** back (an idle connection costs no buffer). */
static void consume (gr_stream *st, size_t n) {
  st->head += n;
  st->scanned = st->scanned > n ? st->scanned - n : 0;
  if (st->head == st->tail) {
    if (st->cap == READFIRST) putspare(st->S, st->buf);
    else free(st->buf);
    st->buf = NULL;
    st->cap = st->head = st->tail = st->scanned = 0;
  }
}

/* Outcomes of one format, besides a value pushed (1). */
enum { FMT_EOF = 0, FMT_ERR = -2, FMT_NONUM = -3, FMT_AGAIN = GR_SAGAIN };

/* What a format that needs more bytes than it has gets: the end of the
** stream, a read error, or a wait. */
static int starved (gr_stream *st) {
  if (st->rerr == UV_EOF) return FMT_EOF;
  if (st->rerr) return FMT_ERR;
  return FMT_AGAIN;
}

static int readline (lua_State *L, gr_stream *st, int keepnl) {
  size_t avail = st->tail - st->head;
  const char *p = st->buf ? st->buf + st->head : "", *nl = NULL;
  if (avail > st->scanned)
    nl = (const char *)memchr(p + st->scanned, '\n', avail - st->scanned);
  if (nl != NULL) {
    size_t len = (size_t)(nl - p);
    lua_pushlstring(L, p, keepnl ? len + 1 : len);
    consume(st, len + 1);
    return 1;
  }
  st->scanned = avail;
  if (st->rerr == UV_EOF && avail > 0) {   /* the last line, unended */
    lua_pushlstring(L, p, avail);
    consume(st, avail);
    return 1;
  }
  return starved(st);
}

static int readchars (lua_State *L, gr_stream *st, lua_Integer n) {
  size_t avail = st->tail - st->head;
  if (avail == 0 && (n > 0 || st->rerr)) return starved(st);
  if ((lua_Unsigned)n < avail) avail = (size_t)n;
  lua_pushlstring(L, avail ? st->buf + st->head : "", avail);
  consume(st, avail);
  return 1;
}

static int readall (lua_State *L, gr_stream *st) {
  size_t avail = st->tail - st->head;
  if (st->rerr != UV_EOF) return st->rerr ? FMT_ERR : FMT_AGAIN;
  lua_pushlstring(L, avail ? st->buf + st->head : "", avail);
  consume(st, avail);
  return 1;
}

/* The numeral at the front of the buffer, as Lua's read_number scans it
** (whitespace, sign, 0x, digits, point, exponent): its length, or -1 if
** the bytes end before the numeral does (more may come). */
int gr_stream_scannumeral (const char *p, size_t avail, int eof) {
  size_t i = 0;
  int hex = 0, count = 0;
#define PEEK() (i < avail ? (unsigned char)p[i] : (eof ? -2 : -1))
#define NEED(c) do { if ((c) == -1) return -1; } while (0)
  int c = PEEK();
  NEED(c);
  if (c == '-' || c == '+') { i++; c = PEEK(); NEED(c); }
  if (c == '0') {
    i++; c = PEEK(); NEED(c);
    if (c == 'x' || c == 'X') { hex = 1; i++; }
    else count = 1;
  }
  for (;;) {
    c = PEEK(); NEED(c);
    if (c >= 0 && (hex ? isxdigit(c) : isdigit(c)) && i < MAXNUMERAL) {
      i++; count++;
    }
    else break;
  }
  if (c == '.') {
    i++;
    for (;;) {
      c = PEEK(); NEED(c);
      if (c >= 0 && (hex ? isxdigit(c) : isdigit(c)) && i < MAXNUMERAL) {
        i++; count++;
      }
      else break;
    }
  }
  if (count > 0 && (hex ? (c == 'p' || c == 'P') : (c == 'e' || c == 'E'))) {
    i++; c = PEEK(); NEED(c);
    if (c == '-' || c == '+') i++;
    for (;;) {
      c = PEEK(); NEED(c);
      if (c >= 0 && isdigit(c) && i < MAXNUMERAL) i++;
      else break;
    }
  }
#undef PEEK
#undef NEED
  return (int)(i > MAXNUMERAL ? MAXNUMERAL : i);
}

static int readnumber (lua_State *L, gr_stream *st) {
  char num[MAXNUMERAL + 1];
  int len;
  while (st->head < st->tail && isspace((unsigned char)st->buf[st->head]))
    consume(st, 1);
  if (st->head == st->tail) return starved(st);
  len = gr_stream_scannumeral(st->buf + st->head, st->tail - st->head,
                    st->rerr != 0);
  if (len < 0) return FMT_AGAIN;   /* only before the end of the stream */
  memcpy(num, st->buf + st->head, (size_t)len);
  num[len] = '\0';
  consume(st, (size_t)len);
  if (lua_stringtonumber(L, num) == 0) return FMT_NONUM;
  return 1;
}

/* One format at index arg (checked by lread). */
static int readformat (lua_State *L, gr_stream *st, int arg) {
  const char *p;
  if (lua_type(L, arg) == LUA_TNUMBER)
    return readchars(L, st, lua_tointeger(L, arg));
  p = lua_tostring(L, arg);
  if (*p == '*') p++;
  switch (*p) {
    case 'l': return readline(L, st, 0);
    case 'L': return readline(L, st, 1);
    case 'a': return readall(L, st);
    default: return readnumber(L, st);   /* 'n' */
  }
}

/* ctx of a read: the number of formats, and READLINES for an iterator of
** lines(), which raises its errors and ends at EOF. */
#define READLINES 0x10000

/* The results pushed so far, then nil and the message (or for lines(),
** nothing at EOF, else the error raised). */
static int readfail (lua_State *L, gr_stream *st, lua_KContext ctx,
                     int nres, const char *what) {
  if (what == NULL) {   /* "n" read no numeral: Lua's fail */
    lua_pushnil(L);
    return nres + 1;
  }
  if (strcmp(what, "EOF") == 0) {
    lua_pushnil(L);
    lua_pushliteral(L, "EOF");
  }
  else gr_stream_fail(L, st, "read", what);
  if (ctx & READLINES) {
    if (lua_isstring(L, -1) && strcmp(lua_tostring(L, -1), "EOF") == 0) {
      lua_pushnil(L);
      return 1;
    }
    return lua_error(L);
  }
  return nres + 2;
}

static int readattempt (lua_State *L, gr_stream *st, lua_KContext ctx) {
  int nf = (int)(ctx & 0xffff);
  int nres = lua_gettop(L) - (nf + 1);
  if (st->closed) return readfail(L, st, ctx, nres, CLOSEDMSG);
  if (st->noread) return readfail(L, st, ctx, nres, "bad file descriptor");
  if (gr_stream_expired(st, GR_SREAD))
    return readfail(L, st, ctx, nres, TIMEOUTMSG);
  for (; nres < nf; nres++) {
    int r = readformat(L, st, 2 + nres);
    if (r == 1) continue;
    if (r == FMT_AGAIN) {
      gr_stream_startread(st);
      if (st->rerr == 0) return GR_SAGAIN;
      r = starved(st);
    }
    if (r == FMT_EOF) return readfail(L, st, ctx, nres, "EOF");
    if (r == FMT_NONUM) return readfail(L, st, ctx, nres, NULL);
    return readfail(L, st, ctx, nres, gr_stream_strerror(st->rerr));
  }
  return nf;
}

static int readk (lua_State *L, int status, lua_KContext ctx) {
  gr_stream *st = (gr_stream *)((streambox *)lua_touserdata(L, 1))->st;
  (void)status;
  return gr_stream_run(L, st, GR_SREAD, readattempt, readk, ctx);
}

/* Checks the formats from index first to last (Lua's file:read formats). */
void gr_stream_checkformats (lua_State *L, int first, int last) {
  int i;
  for (i = first; i <= last; i++) {
    if (lua_type(L, i) == LUA_TNUMBER) {
      if (!lua_isinteger(L, i))
        luaL_argerror(L, i, "number has no integer representation");
      if (lua_tointeger(L, i) < 0)
        luaL_argerror(L, i, "size must be non-negative");
    }
    else {
      const char *p = luaL_checkstring(L, i);
      if (*p == '*') p++;
      if (*p != 'l' && *p != 'L' && *p != 'a' && *p != 'n')
        luaL_argerror(L, i, "invalid format");
    }
  }
}

/* The stream at index 1: a byte stream (a conn or a file stream), or
** with any a packet conn too (the kinds of gr_stream_newmeta). */
static gr_stream *checkkind (lua_State *L, int any) {
  streambox *box;
  luaL_checktype(L, 1, LUA_TUSERDATA);
  box = (streambox *)lua_touserdata(L, 1);
  if (lua_rawlen(L, 1) == sizeof(*box) && box->magic == &kindkey &&
      (box->kind == GR_SMETABYTES || box->kind == GR_SMETAFILE ||
       (any && box->kind == GR_SMETAPACKET))) {
    if (box->st == NULL) luaL_error(L, "attempt to use a finalized stream");
    gr_getstate(L);   /* raises once the runtime is closed */
    return box->st;
  }
  luaL_typeerror(L, 1, "goroutines.conn");
  return NULL;
}

static gr_stream *checkstream (lua_State *L) {
  return checkkind(L, 0);
}

/* conn:read(...) -> values of Lua's file:read formats */
static int lread (lua_State *L) {
  gr_stream *st = checkstream(L);
  int nf;
  if (lua_gettop(L) == 1) lua_pushliteral(L, "l");
  nf = lua_gettop(L) - 1;
  if (nf > 250) luaL_argerror(L, 252, "too many formats");
  gr_stream_checkformats(L, 2, nf + 1);
  return gr_stream_run(L, st, GR_SREAD, readattempt, readk, nf);
}

/* The iterator of conn:lines(fmt): upvalues 4 and 5 (after the module's). */
static int linesiter (lua_State *L) {
  gr_stream *st;
  lua_settop(L, 0);
  lua_pushvalue(L, lua_upvalueindex(GR_NUPVALUES + 1));
  lua_pushvalue(L, lua_upvalueindex(GR_NUPVALUES + 2));
  st = checkstream(L);
  return gr_stream_run(L, st, GR_SREAD, readattempt, readk, 1 | READLINES);
}

static int llines (lua_State *L) {
  checkstream(L);
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


/* --- writing ----------------------------------------------------------- */

static void onwrite (uv_write_t *req, int status) {
  gr_wreq *wr = (gr_wreq *)req;
  gr_stream *st = wr->st;
  if (wr->w == NULL) {
    unlinkwreq(st, wr);
    free(wr);
    return;
  }
  wr->done = 1;
  wr->status = status;
  if (wr->w->inq) {
    dequeue(st, GR_SWRITE, wr->w);
    gr_wait_wake(st->S, wr->w);
  }
}

#define MAXBUFS 16

/* ctx: the number of strings, at 2...; after the first attempt the
** request in flight (a light userdata) is on top. */
static int writeattempt (lua_State *L, gr_stream *st, lua_KContext ctx) {
  int n = (int)ctx, i, nb;
  uv_buf_t bufs[MAXBUFS];
  size_t total = 0, done;
  gr_wreq *wr;
  int r;
  if (st->closed) return gr_stream_fail(L, st, "write", CLOSEDMSG);
  if (st->nowrite) return gr_stream_fail(L, st, "write", "bad file descriptor");
  if (lua_gettop(L) > n + 1) {   /* a request is in flight */
    wr = (gr_wreq *)lua_touserdata(L, -1);
    if (wr->done) {
      int status = wr->status;
      unlinkwreq(st, wr);
      free(wr);
      lua_pop(L, 1);
      if (status < 0)
        return gr_stream_fail(L, st, "write", gr_stream_strerror(status));
      lua_pushvalue(L, 1);
      return 1;
    }
    if (gr_stream_expired(st, GR_SWRITE)) {
      wr->w = NULL;   /* its callback frees it */
      lua_pop(L, 1);
      return gr_stream_fail(L, st, "write", TIMEOUTMSG);
    }
    return GR_SAGAIN;
  }
  if (gr_stream_expired(st, GR_SWRITE))
    return gr_stream_fail(L, st, "write", TIMEOUTMSG);
  if (st->prewrite) st->prewrite(st);
  for (i = 0; i < n; i++) {
    size_t len;
    const char *s = lua_tolstring(L, 2 + i, &len);
    total += len;
    if (i < MAXBUFS) bufs[i] = uv_buf_init((char *)s, (unsigned)len);
  }
  if (total == 0) {
    lua_pushvalue(L, 1);
    return 1;
  }
  nb = n < MAXBUFS ? n : MAXBUFS;
  r = n <= MAXBUFS ? uv_try_write(&st->u.s, bufs, (unsigned)nb) : UV_EAGAIN;
  if (r < 0 && r != UV_EAGAIN && r != UV_ENOSYS)
    return gr_stream_fail(L, st, "write", gr_stream_strerror(r));
  done = r > 0 ? (size_t)r : 0;
  if (done == total) {
    lua_pushvalue(L, 1);
    return 1;
  }
  wr = (gr_wreq *)malloc(sizeof(*wr) + (total - done));
  if (wr == NULL) return luaL_error(L, "not enough memory");
  {
    size_t skip = done, off = 0;
    for (i = 0; i < n; i++) {
      size_t len;
      const char *s = lua_tolstring(L, 2 + i, &len);
      if (skip >= len) {
        skip -= len;
        continue;
      }
      memcpy(wr->data + off, s + skip, len - skip);
      off += len - skip;
      skip = 0;
    }
  }
  bufs[0] = uv_buf_init(wr->data, (unsigned)(total - done));
  wr->st = st;
  wr->w = &st->S->current->w;
  wr->done = 0;
  wr->status = 0;
  r = uv_write(&wr->req, &st->u.s, bufs, 1, onwrite);
  if (r < 0) {
    free(wr);
    return gr_stream_fail(L, st, "write", gr_stream_strerror(r));
  }
  wr->prev = NULL;
  wr->next = st->wreqs;
  if (st->wreqs) st->wreqs->prev = wr;
  st->wreqs = wr;
  lua_pushlightuserdata(L, wr);
  return GR_SAGAIN;
}

static int writek (lua_State *L, int status, lua_KContext ctx) {
  gr_stream *st = (gr_stream *)((streambox *)lua_touserdata(L, 1))->st;
  (void)status;
  return gr_stream_run(L, st, GR_SWRITE, writeattempt, writek, ctx);
}

/* conn:write(...) -> conn, or nil and a message: every byte written */
static int lwrite (lua_State *L) {
  gr_stream *st = checkstream(L);
  int n = lua_gettop(L) - 1, i;
  for (i = 2; i <= n + 1; i++) luaL_checklstring(L, i, NULL);
  if (!lua_checkstack(L, 4)) luaL_error(L, "too many arguments");
  return gr_stream_run(L, st, GR_SWRITE, writeattempt, writek, n);
}


/* --- close, deadlines, addresses -------------------------------------- */

static int lclose (lua_State *L) {
  gr_stream *st = checkkind(L, 1);
  if (st->closed) return gr_stream_fail(L, st, "close", CLOSEDMSG);
  gr_stream_close(st);
  lua_pushboolean(L, 1);
  return 1;
}

static void onshutdown (uv_shutdown_t *req, int status) {
  (void)status;
  free(req);
}

/* conn:close_write(): no more writes (the peer reads EOF); reads go on */
static int lclosewrite (lua_State *L) {
  gr_stream *st = checkstream(L);
  uv_shutdown_t *req;
  int r;
  if (st->closed) return gr_stream_fail(L, st, "close_write", CLOSEDMSG);
  req = (uv_shutdown_t *)malloc(sizeof(*req));
  if (req == NULL) return luaL_error(L, "not enough memory");
  r = uv_shutdown(req, &st->u.s, onshutdown);
  if (r < 0) {
    free(req);
    return gr_stream_fail(L, st, "close_write", gr_stream_strerror(r));
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* Sets the deadline of dir from the time at index 2 (g.time.now()'s
** clock; nil clears it). The waiters of dir see the new deadline. */
static void setdeadline (lua_State *L, gr_stream *st, int dir) {
  if (lua_isnoneornil(L, 2)) st->deadline[dir] = 0;
  else {
    lua_Number t = luaL_checknumber(L, 2);
    uint64_t ns;
    if (!(t > 0)) ns = 1;   /* long past: 0 is "no deadline" */
    else if (t >= 1.8e10) ns = UINT64_MAX;
    else ns = (uint64_t)(t * 1e9);
    st->deadline[dir] = ns ? ns : 1;
  }
  if (st->q[dir].first) arm(st, dir);
}

static int deadline (lua_State *L, int which) {
  gr_stream *st = checkkind(L, 1);
  if (which & 1) setdeadline(L, st, GR_SREAD);
  if (which & 2) setdeadline(L, st, GR_SWRITE);
  if (st->closed) return gr_stream_fail(L, st, "set", CLOSEDMSG);
  lua_pushboolean(L, 1);
  return 1;
}

static int lsetdeadline (lua_State *L) { return deadline(L, 3); }
static int lsetreaddeadline (lua_State *L) { return deadline(L, 1); }
static int lsetwritedeadline (lua_State *L) { return deadline(L, 2); }

static int laddr (lua_State *L, int remote) {
  gr_stream *st = checkkind(L, 1);
  const char *a = remote ? st->raddr : st->laddr;
  lua_pushstring(L, a ? a : "");
  return 1;
}

static int llocaladdr (lua_State *L) { return laddr(L, 0); }
static int lremoteaddr (lua_State *L) { return laddr(L, 1); }

/* Byte streams: conns and file streams. */
static const luaL_Reg bytemethods[] = {
  {"read", lread},
  {"write", lwrite},
  {"lines", llines},
  {NULL, NULL}
};

static const luaL_Reg connmethods[] = {
  {"close_write", lclosewrite},
  {"remote_addr", lremoteaddr},
  {NULL, NULL}
};

/* Conns and packet conns. */
static const luaL_Reg addrmethods[] = {
  {"local_addr", llocaladdr},
  {NULL, NULL}
};

/* Every kind's. */
static const luaL_Reg common[] = {
  {"close", lclose},
  {"set_deadline", lsetdeadline},
  {"set_read_deadline", lsetreaddeadline},
  {"set_write_deadline", lsetwritedeadline},
  {NULL, NULL}
};

void gr_stream_setmethods (lua_State *L, int kind) {
  if (kind == GR_SMETABYTES || kind == GR_SMETAFILE)
    gr_state_setfuncs(L, bytemethods);
  if (kind == GR_SMETABYTES) gr_state_setfuncs(L, connmethods);
  if (kind != GR_SMETAFILE) gr_state_setfuncs(L, addrmethods);
  gr_state_setfuncs(L, common);
}

void gr_stream_newmeta (lua_State *L, const char *mt, int kind) {
  luaL_newmetatable(L, mt);
  lua_pushcfunction(L, lstream_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, lstream_close);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, lstream_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushinteger(L, kind);
  lua_rawsetp(L, -2, &kindkey);
  lua_pushvalue(L, -2);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 2);
}
