/*
** net.c -- g.net: TCP and unix sockets after Go's net package (listen,
** accept, dial, lookup_host), on the handles of stream.c.
**
** Names (and ports named by a service) resolve through libuv's
** getaddrinfo (its thread pool) while the goroutine waits; literal
** addresses need no resolution. A dial through a name tries each address
** in turn on a socket of its own (an attempt), as Go's dialSerial, and
** the one that connects hands its socket to the stream. Failures are
** `nil, message` with Go's texts ("dial tcp 127.0.0.1:1: connect:
** connection refused"); arguments of the wrong type raise.
**
** A context bounds a dial through a watch of the context's done channel
** (donewatch.c: any thread may close it, and the dial wakes on its own
** state's thread); the dial stops the watch when it ends or its stream
** closes.
**
** A conn, listener or packet conn crosses to another state by move
** (gr_objtype): take marks it, export (once the pack is complete) hands
** its socket over as a duplicate fd with what the handle held (bytes
** read ahead, a connection libuv accepted, datagrams not read), and
** closes the sender's handle, which then says "use of moved connection";
** push opens the fd on the receiving state's loop.
**
** Ownership: a getaddrinfo request in flight is its stream's (st->gai)
**   until its callback runs; a stream that closes first detaches it (its
**   data NULL) and the callback frees it alone. A dial's dialer (context
**   watch, attempt, first error) is its stream's (st->closearg) until the
**   dial ends or the stream closes; an attempt let go of (st NULL) is
**   freed by its close callback.
** Lock order: none (owner thread only).
*/
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netdb.h>

#include "chan.h"
#include "donewatch.h"
#include "copy.h"
#include "net.h"
#include "state.h"
#include "stream.h"

#define CONNMT "goroutines.conn"
#define LISTENERMT "goroutines.listener"
#define RESOLVERMT "goroutines.resolver"
#define CTXMT "goroutines.context"
#define PACKETMT "goroutines.packetconn"

#define MAXDGRAMS 1024   /* datagrams a packet conn queues unread */

enum { PH_RESOLVE, PH_CONNECT, PH_ATTEMPT };

static const char *const networks[] = {
  "tcp", "tcp4", "tcp6", "unix", NULL
};
static const int families[] = { AF_UNSPEC, AF_INET, AF_INET6, AF_UNIX };
static const char *const pnetworks[] = { "udp", "udp4", "udp6", NULL };


/* What an operation on a closed handle says. */
static const char *closedmsg (gr_stream *st) {
  return st->moved ? "use of moved connection"
                   : "use of closed network connection";
}


/* --- addresses ---------------------------------------------------------- */

/* The network at index 1, by its index in nets; -1 after pushing Go's
** error. */
static int checknetin (lua_State *L, const char *op,
                       const char *const *nets) {
  const char *net = luaL_checkstring(L, 1);
  int i;
  for (i = 0; nets[i]; i++)
    if (strcmp(net, nets[i]) == 0) return i;
  lua_pushnil(L);
  lua_pushfstring(L, "%s %s: unknown network %s", op, net, net);
  return -1;
}

static int checknet (lua_State *L, const char *op) {
  return checknetin(L, op, networks);
}

/* Go's SplitHostPort and port check: the host into host[hostsz] and the
** port, or in *svc a port that is a name ("http", for the service
** lookup; NULL when it is a number); NULL, or the text of the error
** (after "address A: "), with the address A it names in *bad. */
static const char *splithostport (const char *addr, char *host,
                                  size_t hostsz, int *port,
                                  const char **svc, const char **bad) {
  const char *colon = strrchr(addr, ':'), *p;
  const char *h = addr, *hend;
  long v = 0;
  int neg = 0;
  *bad = addr;
  *svc = NULL;
  if (colon == NULL) return "missing port in address";
  if (addr[0] == '[') {
    const char *end = strchr(addr, ']');
    if (end == NULL) return "missing ']' in address";
    if (end + 1 != colon)
      return end[1] == '\0' ? "missing port in address"
                            : "missing ']' in address";
    h = addr + 1;
    hend = end;
  }
  else {
    hend = colon;
    if (memchr(addr, ':', (size_t)(colon - addr)) != NULL)
      return "too many colons in address";
  }
  if ((size_t)(hend - h) >= hostsz) return "host name too long";
  memcpy(host, h, (size_t)(hend - h));
  host[hend - h] = '\0';
  p = colon + 1;
  *bad = p;
  if (*p == '\0') return "missing port in address";   /* Go: port "" */
  /* A number may have a sign, as in Go's parsePort: "-1" is a number out
  ** of range, not a service name to look up. */
  if (*p == '+' || *p == '-') neg = *p++ == '-';
  if (strspn(p, "0123456789") != strlen(p)) {
    *svc = colon + 1;
    *port = 0;
    return NULL;
  }
  for (; *p; p++)
    if (v <= 65535) v = v * 10 + (*p - '0');
  if (v > 65535 || (neg && v > 0)) return "invalid port";
  *port = (int)v;
  return NULL;
}

/* Pushes Go's error for the address at index 2 ("dial tcp: address
** 127.0.0.1: missing port in address"); returns 2. */
static int addrfail (lua_State *L, const char *op, const char *net,
                     const char *why, const char *bad) {
  lua_pushnil(L);
  if (strcmp(why, "unknown port") == 0)
    lua_pushfstring(L, "%s %s: lookup %s/%s: unknown port", op, net, net,
                    bad);
  else
    lua_pushfstring(L, "%s %s: address %s: %s", op, net, bad, why);
  return 2;
}

/* A literal IP host (or "" for the local system) into *sa; 0, or -1 for
** a name that needs resolving. */
static int literal (const char *host, int port, int family, int listen,
                    struct sockaddr_storage *sa) {
  memset(sa, 0, sizeof(*sa));
  if (host[0] == '\0') {
    if (family == AF_INET6)
      return uv_ip6_addr(listen ? "::" : "::1", port,
                         (struct sockaddr_in6 *)sa) == 0 ? 0 : -1;
    return uv_ip4_addr(listen ? "0.0.0.0" : "127.0.0.1", port,
                       (struct sockaddr_in *)sa) == 0 ? 0 : -1;
  }
  if (family != AF_INET6 &&
      uv_ip4_addr(host, port, (struct sockaddr_in *)sa) == 0)
    return 0;
  if (family != AF_INET &&
      uv_ip6_addr(host, port, (struct sockaddr_in6 *)sa) == 0)
    return 0;
  return -1;
}

/* "ip:port" or "[ip6]:port", malloc'd (NULL without memory). */
static char *formataddr (const struct sockaddr *sa) {
  char ip[64], *s = (char *)malloc(80);
  if (s == NULL) return NULL;
  if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
    uv_ip6_name(a, ip, sizeof(ip));
    snprintf(s, 80, "[%s]:%d", ip, ntohs(a->sin6_port));
  }
  else if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
    uv_ip4_name(a, ip, sizeof(ip));
    snprintf(s, 80, "%s:%d", ip, ntohs(a->sin_port));
  }
  else s[0] = '\0';
  return s;
}

static char *dupstr (const char *s) {
  size_t n = strlen(s) + 1;
  char *d = (char *)malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

/* The path of a unix socket's end (peer: the other end's), "" when it
** has none; asked here with a zeroed address, as libuv's
** uv_pipe_getsockname reads the path of an unnamed socket uninitialised. */
static char *pipename (uv_pipe_t *p, int peer) {
  struct sockaddr_un sa;
  socklen_t len = sizeof(sa);
  uv_os_fd_t fd;
  char *s;
  size_t n;
  memset(&sa, 0, sizeof(sa));
  if (uv_fileno((uv_handle_t *)p, &fd) != 0) return NULL;
  if ((peer ? getpeername(fd, (struct sockaddr *)&sa, &len)
            : getsockname(fd, (struct sockaddr *)&sa, &len)) != 0)
    return NULL;
  n = len > offsetof(struct sockaddr_un, sun_path)
      ? strnlen(sa.sun_path, sizeof(sa.sun_path)) : 0;
  if ((s = (char *)malloc(n + 1)) == NULL) return NULL;
  memcpy(s, sa.sun_path, n);
  s[n] = '\0';
  return s;
}

/* Records the local and remote addresses of a connected socket. */
static void setaddrs (gr_stream *st) {
  struct sockaddr_storage sa;
  int len;
  free(st->laddr);
  free(st->raddr);
  st->laddr = st->raddr = NULL;
  if (st->kind == GR_STCP) {
    len = sizeof(sa);
    if (uv_tcp_getsockname(&st->u.tcp, (struct sockaddr *)&sa, &len) == 0)
      st->laddr = formataddr((struct sockaddr *)&sa);
    len = sizeof(sa);
    if (uv_tcp_getpeername(&st->u.tcp, (struct sockaddr *)&sa, &len) == 0)
      st->raddr = formataddr((struct sockaddr *)&sa);
  }
  else {
    st->laddr = pipename(&st->u.pipe, 0);
    st->raddr = pipename(&st->u.pipe, 1);
  }
  if (st->laddr == NULL) st->laddr = dupstr("");
  if (st->raddr == NULL) st->raddr = dupstr("");
}


/* --- resolution ----------------------------------------------------------- */

static void ongai (uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  gr_stream *st = (gr_stream *)req->data;
  free(req);
  if (st == NULL) {   /* its stream closed */
    if (res) uv_freeaddrinfo(res);
    return;
  }
  st->gai = NULL;
  st->res = res;
  st->status = status;
  gr_stream_wakeall(st, GR_SWRITE);
}

/* The service name resolved with st's host: kept after it in st->name
** (st->port is -1 then). */
static const char *service (gr_stream *st) {
  return st->name + strlen(st->name) + 1;
}

/* Starts resolving name for st (st->family), with the port named svc
** if not NULL (Go's LookupPort, through getaddrinfo's service lookup:
** st->port becomes -1, the port comes with each address); passive for a
** listen. The waiters of GR_SWRITE are woken when done. Raises without
** memory. */
static void resolve (lua_State *L, gr_stream *st, const char *name,
                     const char *svc, int socktype, int passive) {
  struct addrinfo hints;
  uv_getaddrinfo_t *req = (uv_getaddrinfo_t *)malloc(sizeof(*req));
  size_t n = strlen(name) + 1, ns = svc ? strlen(svc) + 1 : 1;
  int r;
  st->name = (char *)malloc(n + ns);
  if (req == NULL || st->name == NULL) {
    free(req);
    luaL_error(L, "not enough memory");
  }
  memcpy(st->name, name, n);
  memcpy(st->name + n, svc ? svc : "", ns);
  if (svc) st->port = -1;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = st->family;
  hints.ai_socktype = socktype;
  if (passive) hints.ai_flags = AI_PASSIVE;
  req->data = st;
  st->phase = PH_RESOLVE;
  r = uv_getaddrinfo(&st->S->loop, req, ongai, name[0] ? name : NULL, svc,
                     &hints);
  if (r < 0) {
    free(req);
    st->status = r;
  }
  else {
    st->gai = req;
    st->status = 1;
  }
}

/* The address ai into *sa, with st's port (unless the service lookup
** gave it). */
static void withport (gr_stream *st, const struct addrinfo *ai,
                      struct sockaddr_storage *sa) {
  memset(sa, 0, sizeof(*sa));
  memcpy(sa, ai->ai_addr, ai->ai_addrlen);
  if (st->port < 0) return;
  if (ai->ai_family == AF_INET)
    ((struct sockaddr_in *)sa)->sin_port = htons((uint16_t)st->port);
  else
    ((struct sockaddr_in6 *)sa)->sin6_port = htons((uint16_t)st->port);
}

/* The address resolved for a listen with its port, preferring IPv4 for
** "tcp" as Go's Listen does; 0 or -1. */
static int pickaddr (gr_stream *st, struct sockaddr_storage *sa) {
  struct addrinfo *ai, *pick = NULL;
  for (ai = st->res; ai != NULL && pick == NULL; ai = ai->ai_next)
    if (ai->ai_family == AF_INET) pick = ai;
  for (ai = st->res; ai != NULL && pick == NULL; ai = ai->ai_next)
    if (ai->ai_family == AF_INET6) pick = ai;
  if (pick == NULL) return -1;
  withport(st, pick, sa);
  return 0;
}

/* Pushes the failure of st's resolution: Go's texts. Returns 2. */
static int lookupfail (lua_State *L, gr_stream *st, const char *op) {
  lua_pushnil(L);
  if (st->status == UV_EAI_SERVICE)
    lua_pushfstring(L, "%s %s: lookup %s/%s: unknown port", op, st->net,
                    st->net, service(st));
  else if (st->status < 0)
    lua_pushfstring(L, "%s %s: lookup %s: %s", op, st->net, st->name,
                    gr_stream_strerror(st->status));
  else
    lua_pushfstring(L, "%s %s: lookup %s: no such host", op, st->net,
                    st->name);
  return 2;
}

/* The resolve step of a listen: 0 with the address in *sa, GR_SAGAIN,
** or the number of results of the failure it pushed. */
static int resolved (lua_State *L, gr_stream *st, const char *op,
                     struct sockaddr_storage *sa) {
  int ok;
  if (st->gai) return GR_SAGAIN;
  if (st->status < 0) return lookupfail(L, st, op);
  ok = pickaddr(st, sa);
  uv_freeaddrinfo(st->res);
  st->res = NULL;
  if (ok < 0) return lookupfail(L, st, op);
  return 0;
}


/* --- a dial's state -------------------------------------------------- */

/* The watch of a dial on its context's done channel; malloc'd, freed by
** its async handle's close callback. */
/* One address tried by a dial through a name, on a socket of its own:
** a failed connect leaves a socket unusable for the next address (of
** another family, maybe). malloc'd, freed by its close callback. */
typedef struct attempt {
  uv_tcp_t tcp;
  uv_connect_t req;
  gr_stream *st;        /* the dial, NULL once it let go */
  int status;           /* 1 while connecting, then 0 or a libuv error */
} attempt;

/* What a dial holds besides its stream, while it runs (st->closearg; st's
** onclose, or the end of the dial, lets go of it). */
typedef struct dialer {
  gr_donewatch *cw;     /* the context's watch, or NULL */
  struct addrinfo *next;  /* the addresses not tried yet (in st->res) */
  int left;             /* how many */
  uint64_t deadline;    /* the dial's (0: none); st->deadline[GR_SWRITE]
                           is the attempt's share of it */
  attempt *cur;         /* connecting, or NULL */
  char *firsterr;       /* the first address's failure, malloc'd */
} dialer;

/* The dial's context is done: the dial fails as it wakes. */
static void ctxdone (void *arg) {
  gr_stream *st = (gr_stream *)arg;
  st->ctxdone = 1;
  gr_stream_wakeall(st, GR_SWRITE);
}

static void onattemptclosed (uv_handle_t *h) {
  free(h->data);
}

/* Lets go of the attempt connecting (closing its socket cancels it). */
static void dropattempt (dialer *d) {
  if (d->cur == NULL) return;
  d->cur->st = NULL;
  uv_close((uv_handle_t *)&d->cur->tcp, onattemptclosed);
  d->cur = NULL;
}

/* Lets go of what the dial of st holds (st's onclose, and the end of its
** dial). */
static void dialend (gr_stream *st) {
  dialer *d = (dialer *)st->closearg;
  if (d == NULL) return;
  st->closearg = NULL;
  st->onclose = NULL;
  if (d->cw) gr_donewatch_stop(d->cw);
  dropattempt(d);
  free(d->firsterr);
  free(d);
}

/* The dialer of st, made on first use; raises without memory. */
static dialer *dialerof (lua_State *L, gr_stream *st) {
  dialer *d = (dialer *)st->closearg;
  if (d) return d;
  if ((d = (dialer *)calloc(1, sizeof(*d))) == NULL)
    luaL_error(L, "not enough memory");
  st->closearg = d;
  st->onclose = dialend;
  return d;
}

/* Makes the context at index idx bound the dial of st: 0, or 1 if it is
** done already. Raises before it takes anything. */
static int watch (lua_State *L, gr_stream *st, int idx) {
  gr_donewatch *cw;
  gr_chan *c;
  dialer *d;
  int done;
  lua_getfield(L, idx, "done");
  lua_pushvalue(L, idx);
  lua_call(L, 1, 1);
  c = gr_chan_checkud(L, -1)->c;
  lua_pop(L, 1);   /* the context keeps its channel */
  d = dialerof(L, st);
  if ((cw = gr_donewatch_new()) == NULL) luaL_error(L, "not enough memory");
  if ((done = gr_donewatch_start(cw, st->S, c, ctxdone, st)) < 0)
    luaL_error(L, "not enough memory");
  d->cw = cw;
  return done;
}


/* --- dial ------------------------------------------------------------------ */

static void onconnect (uv_connect_t *req, int status) {
  gr_stream *st = (gr_stream *)req->data;
  st->status = status;
  gr_stream_wakeall(st, GR_SWRITE);
}

/* Starts connecting st to sa, whose text becomes st->raddr. */
static void startconnect (gr_stream *st, const struct sockaddr *sa) {
  int r;
  free(st->raddr);
  st->raddr = formataddr(sa);
  st->phase = PH_CONNECT;
  st->connreq.data = st;
  r = uv_tcp_connect(&st->connreq, &st->u.tcp, sa, onconnect);
  st->status = r < 0 ? r : 1;
}

/* Closes st and pushes "dial <net> <addr>: <what>". */
static int dialfail (lua_State *L, gr_stream *st, const char *what) {
  lua_pushnil(L);
  if (st->raddr)
    lua_pushfstring(L, "dial %s %s: %s", st->net, st->raddr, what);
  else
    lua_pushfstring(L, "dial %s: %s", st->net, what);
  gr_stream_close(st);
  return 2;
}

/* The failure of a dial whose context is done: Go's texts. */
static int ctxfail (lua_State *L, gr_stream *st) {
  const char *err;
  lua_getfield(L, 2, "err");
  lua_pushvalue(L, 2);
  lua_call(L, 1, 1);
  err = lua_tostring(L, -1);
  return dialfail(L, st, err && strcmp(err, "context deadline exceeded") == 0
                         ? "i/o timeout" : "operation was canceled");
}

static void onattempt (uv_connect_t *req, int status) {
  attempt *a = (attempt *)req->data;
  a->status = status;
  if (a->st) gr_stream_wakeall(a->st, GR_SWRITE);
}

/* Records the failure of the address in st->raddr, if it is the first
** (Go's dialSerial reports the first). */
static void attemptfailed (lua_State *L, gr_stream *st, dialer *d,
                           const char *what) {
  dropattempt(d);
  if (d->firsterr) return;
  lua_pushfstring(L, "dial %s %s: %s", st->net, st->raddr ? st->raddr : "",
                  what);
  d->firsterr = dupstr(lua_tostring(L, -1));
  lua_pop(L, 1);
  if (d->firsterr == NULL) luaL_error(L, "not enough memory");
}

/* The share of the time left to each address left, as Go's
** partialDeadline: an equal share, but at least 2 s (or all that is
** left); 0 once the dial's deadline passed. */
static uint64_t partialdeadline (dialer *d) {
  const uint64_t sane = 2000000000u;
  uint64_t now = uv_hrtime(), left, share;
  if (d->deadline == 0) return UINT64_MAX;
  if (now >= d->deadline) return 0;
  left = d->deadline - now;
  share = left / (uint64_t)d->left;
  if (share < sane) share = left < sane ? left : sane;
  return now + share;
}

/* Starts connecting to the next address that takes a connect: 0, or the
** results pushed once none is left (the first failure). */
static int nextattempt (lua_State *L, gr_stream *st, dialer *d) {
  while (d->next) {
    struct addrinfo *ai = d->next;
    uint64_t until = partialdeadline(d);
    struct sockaddr_storage sa;
    attempt *a;
    int r;
    d->next = ai->ai_next;
    if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
    withport(st, ai, &sa);
    free(st->raddr);
    st->raddr = formataddr((struct sockaddr *)&sa);
    if (until == 0) {   /* out of time */
      attemptfailed(L, st, d, "i/o timeout");
      break;
    }
    d->left--;
    st->deadline[GR_SWRITE] = until == UINT64_MAX ? 0 : until;
    if ((a = (attempt *)malloc(sizeof(*a))) == NULL)
      luaL_error(L, "not enough memory");
    uv_tcp_init(&st->S->loop, &a->tcp);   /* no socket yet: cannot fail */
    a->tcp.data = a;
    a->req.data = a;
    a->st = st;
    a->status = 1;
    d->cur = a;
    r = uv_tcp_connect(&a->req, &a->tcp, (struct sockaddr *)&sa, onattempt);
    if (r == 0) return 0;
    lua_pushfstring(L, "connect: %s", gr_stream_strerror(r));
    attemptfailed(L, st, d, lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  lua_pushnil(L);
  lua_pushstring(L, d->firsterr);   /* an address was tried: d->left > 0 */
  gr_stream_close(st);
  return 2;
}

/* The attempt in flight of a dial through a name: GR_SAGAIN, 0 once it
** connected (the socket is st's), or the results of the dial's failure. */
static int attemptstep (lua_State *L, gr_stream *st, dialer *d) {
  attempt *a = d->cur;
  uv_os_fd_t fd;
  int r;
  if (a->status == 1) {
    if (!gr_stream_expired(st, GR_SWRITE)) return GR_SAGAIN;
    attemptfailed(L, st, d, "i/o timeout");
    r = nextattempt(L, st, d);
    return r == 0 ? GR_SAGAIN : r;
  }
  if (a->status < 0) {
    lua_pushfstring(L, "connect: %s", gr_stream_strerror(a->status));
    attemptfailed(L, st, d, lua_tostring(L, -1));
    lua_pop(L, 1);
    r = nextattempt(L, st, d);
    return r == 0 ? GR_SAGAIN : r;
  }
  /* The socket moves to st's own handle, as a duplicate: libuv closes
  ** the attempt's. */
  r = uv_fileno((uv_handle_t *)&a->tcp, &fd);
  if (r == 0) {
    int dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    r = dup < 0 ? uv_translate_sys_error(errno)
                : uv_tcp_open(&st->u.tcp, dup);
    if (r < 0 && dup >= 0) close(dup);
  }
  dropattempt(d);
  if (r < 0) {
    lua_pushfstring(L, "connect: %s", gr_stream_strerror(r));
    return dialfail(L, st, lua_tostring(L, -1));
  }
  return 0;
}

/* The addresses resolved for a dial: the first attempt started (0), or
** the results of the failure. */
static int startattempts (lua_State *L, gr_stream *st) {
  dialer *d;
  struct addrinfo *ai;
  if (st->status < 0) {
    lookupfail(L, st, "dial");
    gr_stream_close(st);
    return 2;
  }
  d = dialerof(L, st);
  d->deadline = st->deadline[GR_SWRITE];
  d->next = st->res;
  for (ai = st->res; ai != NULL; ai = ai->ai_next)
    if (ai->ai_family == AF_INET || ai->ai_family == AF_INET6) d->left++;
  if (d->left == 0) {
    st->status = 0;
    lookupfail(L, st, "dial");
    gr_stream_close(st);
    return 2;
  }
  st->phase = PH_ATTEMPT;
  return nextattempt(L, st, d);
}

/* Stack: the conn, and its context or nil. A dial through a name tries
** each address in turn (Go's dialSerial), a timeout shared among them. */
static int dialattempt (lua_State *L, gr_stream *st, lua_KContext ctx) {
  int n;
  (void)ctx;
  if (st->closed) return dialfail(L, st, "use of closed network connection");
  if (st->ctxdone) return ctxfail(L, st);
  if (st->phase == PH_RESOLVE) {
    if (gr_stream_expired(st, GR_SWRITE)) return dialfail(L, st, "i/o timeout");
    if (st->gai) return GR_SAGAIN;
    if ((n = startattempts(L, st)) != 0) return n;
  }
  if (st->phase == PH_ATTEMPT) {
    if ((n = attemptstep(L, st, (dialer *)st->closearg)) != 0) return n;
  }
  else {
    if (gr_stream_expired(st, GR_SWRITE)) return dialfail(L, st, "i/o timeout");
    if (st->status == 1) return GR_SAGAIN;
    if (st->status < 0) {
      lua_pushfstring(L, "connect: %s", gr_stream_strerror(st->status));
      return dialfail(L, st, lua_tostring(L, -1));
    }
  }
  dialend(st);
  if (st->res) {
    uv_freeaddrinfo(st->res);
    st->res = NULL;
  }
  st->deadline[GR_SWRITE] = 0;   /* the dial's, not the conn's */
  setaddrs(st);
  lua_settop(L, 1);
  return 1;
}

static int dialk (lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  return gr_stream_run(L, gr_stream_check(L, 1, CONNMT), GR_SWRITE,
                       dialattempt, dialk, ctx);
}

/* The deadline of a dial from its third argument: seconds, or nil (or
** a context). */
static uint64_t dialdeadline (lua_State *L) {
  lua_Number d;
  if (lua_isnoneornil(L, 3) || luaL_testudata(L, 3, CTXMT)) return 0;
  d = luaL_checknumber(L, 3);
  if (!(d > 0)) return 1;   /* passed: the dial fails at once */
  if (d > 1e9) return 0;
  return uv_hrtime() + (uint64_t)(d * 1e9);
}

/* g.net.dial(network, address [, timeout or ctx]) -> conn, or nil and a
** message */
static int ldial (lua_State *L) {
  gr_state *S = gr_getstate(L);
  int ni = checknet(L, "dial"), port = 0;
  const char *addr = luaL_checkstring(L, 2), *why, *bad, *svc;
  char host[256];
  uint64_t deadline = dialdeadline(L);
  gr_stream *st;
  struct sockaddr_storage sa;
  if (ni < 0) return 2;
  lua_settop(L, 3);   /* the conn goes to 4 */
  gr_stream_nosigpipe();   /* from the first socket on */
  if (families[ni] == AF_UNIX) {
    st = gr_stream_new(L, S, CONNMT, networks[ni]);
    uv_pipe_init(&S->loop, &st->u.pipe, 0);
    gr_stream_adopt(st, GR_SPIPE);
    st->raddr = dupstr(addr);
    st->phase = PH_CONNECT;
    st->status = 1;
    st->connreq.data = st;
    uv_pipe_connect(&st->connreq, &st->u.pipe, addr, onconnect);
  }
  else {
    why = splithostport(addr, host, sizeof(host), &port, &svc, &bad);
    if (why) return addrfail(L, "dial", networks[ni], why, bad);
    st = gr_stream_new(L, S, CONNMT, networks[ni]);
    if (uv_tcp_init(&S->loop, &st->u.tcp) != 0)
      return luaL_error(L, "not enough memory");
    gr_stream_adopt(st, GR_STCP);
    st->family = families[ni];
    st->port = port;
    if (svc == NULL && literal(host, port, st->family, 0, &sa) == 0)
      startconnect(st, (struct sockaddr *)&sa);
    else resolve(L, st, host, svc, SOCK_STREAM, 0);
  }
  st->deadline[GR_SWRITE] = deadline;
  lua_replace(L, 1);   /* the conn */
  if (luaL_testudata(L, 3, CTXMT)) {
    lua_replace(L, 2);   /* the context */
    st->ctxdone = watch(L, st, 2);
  }
  else {
    lua_settop(L, 1);
    lua_pushnil(L);
  }
  return gr_stream_run(L, st, GR_SWRITE, dialattempt, dialk, 0);
}


/* --- listen and accept ------------------------------------------------------ */

static void onconnection (uv_stream_t *server, int status) {
  gr_stream *st = (gr_stream *)server->data;
  if (status < 0) st->status = status;
  else st->npending++;
  gr_stream_wakeall(st, GR_SREAD);
}

/* Binds and listens: 0, or a libuv error with *what the failing step. */
static int bindlisten (gr_stream *st, const struct sockaddr *sa,
                       const char *path, const char **what) {
  int r;
  *what = "bind";
  if (path) r = uv_pipe_bind(&st->u.pipe, path);
  else r = uv_tcp_bind(&st->u.tcp, sa,
                       strcmp(st->net, "tcp6") == 0 ? UV_TCP_IPV6ONLY : 0);
  if (r < 0) return r;
  r = uv_listen(&st->u.s, SOMAXCONN, onconnection);
  /* libuv reports a failed TCP bind here (it binds lazily). */
  if (r < 0 && r != UV_EADDRINUSE && r != UV_EACCES &&
      r != UV_EADDRNOTAVAIL)
    *what = "listen";
  if (r < 0) return r;
  if (path) st->unlinkpath = dupstr(path);
  else {
    struct sockaddr_storage a;
    int len = sizeof(a);
    if (uv_tcp_getsockname(&st->u.tcp, (struct sockaddr *)&a, &len) == 0) {
      free(st->laddr);
      st->laddr = formataddr((struct sockaddr *)&a);
    }
  }
  return 0;
}

/* Closes st and pushes "listen <net> <addr>: <step>: <error>". */
static int listenfail (lua_State *L, gr_stream *st, const char *what,
                       int err) {
  lua_pushnil(L);
  lua_pushfstring(L, "listen %s %s: %s: %s", st->net,
                  st->laddr ? st->laddr : "", what, gr_stream_strerror(err));
  gr_stream_close(st);
  return 2;
}

static int listenattempt (lua_State *L, gr_stream *st, lua_KContext ctx) {
  struct sockaddr_storage sa;
  const char *what;
  int n = resolved(L, st, "listen", &sa), r;
  (void)ctx;
  if (n == GR_SAGAIN) return n;
  if (n > 0) {
    gr_stream_close(st);
    return n;
  }
  free(st->laddr);
  st->laddr = formataddr((struct sockaddr *)&sa);
  r = bindlisten(st, (struct sockaddr *)&sa, NULL, &what);
  if (r < 0) return listenfail(L, st, what, r);
  lua_settop(L, 1);
  return 1;
}

static int listenk (lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  return gr_stream_run(L, gr_stream_check(L, 1, LISTENERMT), GR_SWRITE,
                       listenattempt, listenk, ctx);
}

/* g.net.listen(network, address) -> listener, or nil and a message */
static int llisten (lua_State *L) {
  gr_state *S = gr_getstate(L);
  int ni = checknet(L, "listen"), port = 0, r;
  const char *addr = luaL_checkstring(L, 2), *why, *bad, *what, *svc;
  char host[256];
  gr_stream *st;
  struct sockaddr_storage sa;
  if (ni < 0) return 2;
  gr_stream_nosigpipe();   /* from the first socket on */
  if (families[ni] == AF_UNIX) {
    st = gr_stream_new(L, S, LISTENERMT, networks[ni]);
    uv_pipe_init(&S->loop, &st->u.pipe, 0);
    gr_stream_adopt(st, GR_SPIPE);
    st->listener = 1;
    st->laddr = dupstr(addr);
    r = bindlisten(st, NULL, addr, &what);
    if (r < 0) return listenfail(L, st, what, r);
    return 1;
  }
  why = splithostport(addr, host, sizeof(host), &port, &svc, &bad);
  if (why) return addrfail(L, "listen", networks[ni], why, bad);
  st = gr_stream_new(L, S, LISTENERMT, networks[ni]);
  if (uv_tcp_init(&S->loop, &st->u.tcp) != 0)
    return luaL_error(L, "not enough memory");
  gr_stream_adopt(st, GR_STCP);
  st->listener = 1;
  st->family = families[ni];
  st->port = port;
  if (svc == NULL && literal(host, port, st->family, 1, &sa) == 0) {
    st->laddr = formataddr((struct sockaddr *)&sa);
    r = bindlisten(st, (struct sockaddr *)&sa, NULL, &what);
    if (r < 0) return listenfail(L, st, what, r);
    return 1;
  }
  resolve(L, st, host, svc, SOCK_STREAM, 1);
  lua_replace(L, 1);
  lua_settop(L, 1);
  return gr_stream_run(L, st, GR_SWRITE, listenattempt, listenk, 0);
}

static int acceptattempt (lua_State *L, gr_stream *ln, lua_KContext ctx) {
  gr_stream *c;
  int r;
  (void)ctx;
  if (ln->closed) return gr_stream_fail(L, ln, "accept", closedmsg(ln));
  if (ln->status < 0) {
    r = ln->status;
    ln->status = 0;
    return gr_stream_fail(L, ln, "accept", gr_stream_strerror(r));
  }
  if (ln->npending == 0 && ln->pendfd < 0) return GR_SAGAIN;
  c = gr_stream_new(L, ln->S, CONNMT, ln->net);
  if (ln->kind == GR_STCP) r = uv_tcp_init(&ln->S->loop, &c->u.tcp);
  else r = uv_pipe_init(&ln->S->loop, &c->u.pipe, 0);
  if (r < 0) return luaL_error(L, "not enough memory");
  gr_stream_adopt(c, ln->kind);
  if (ln->pendfd >= 0) {   /* accepted before the listener moved here */
    int fd = ln->pendfd, rl;
    ln->pendfd = -1;
    r = ln->kind == GR_STCP ? uv_tcp_open(&c->u.tcp, fd)
                            : uv_pipe_open(&c->u.pipe, fd);
    if (r < 0) close(fd);
    rl = uv_listen(&ln->u.s, SOMAXCONN, onconnection);
    if (rl < 0) ln->status = rl;   /* the next accept says so */
  }
  else {
    ln->npending--;
    r = uv_accept(&ln->u.s, &c->u.s);
  }
  if (r < 0) {
    gr_stream_close(c);
    return gr_stream_fail(L, ln, "accept", gr_stream_strerror(r));
  }
  setaddrs(c);
  return 1;
}

static int acceptk (lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  return gr_stream_run(L, gr_stream_check(L, 1, LISTENERMT), GR_SREAD,
                       acceptattempt, acceptk, ctx);
}

/* ln:accept() -> conn, or nil and a message */
static int laccept (lua_State *L) {
  gr_stream *ln = gr_stream_check(L, 1, LISTENERMT);
  gr_getstate(L);
  lua_settop(L, 1);
  return gr_stream_run(L, ln, GR_SREAD, acceptattempt, acceptk, 0);
}

static int lln_addr (lua_State *L) {
  gr_stream *ln = gr_stream_check(L, 1, LISTENERMT);
  lua_pushstring(L, ln->laddr ? ln->laddr : "");
  return 1;
}

static int lln_close (lua_State *L) {
  gr_stream *ln = gr_stream_check(L, 1, LISTENERMT);
  if (ln->closed) return gr_stream_fail(L, ln, "close", closedmsg(ln));
  gr_stream_close(ln);
  lua_pushboolean(L, 1);
  return 1;
}


/* --- packet conns (UDP) ------------------------------------------------------ */

/* The receive buffer is the stream's own, kept while the conn lives. */
static void onudpalloc (uv_handle_t *h, size_t suggested, uv_buf_t *b) {
  gr_stream *st = (gr_stream *)h->data;
  (void)suggested;
  if (st->buf == NULL && (st->buf = (char *)malloc(65536)) != NULL)
    st->cap = 65536;
  *b = uv_buf_init(st->buf, st->buf ? (unsigned)st->cap : 0);
}

/* Queues a datagram for read_from (a full queue drops it, as a socket
** buffer would) and wakes the readers. */
static void onudprecv (uv_udp_t *h, ssize_t n, const uv_buf_t *b,
                       const struct sockaddr *from, unsigned flags) {
  gr_stream *st = (gr_stream *)h->data;
  gr_dgram *d;
  char *a;
  (void)flags;
  if (n < 0) st->rerr = (int)n;
  else if (from == NULL) return;   /* nothing more to read now */
  else if (st->ndgrams < MAXDGRAMS &&
           (d = (gr_dgram *)malloc(sizeof(*d) + (size_t)n)) != NULL) {
    memcpy(d->data, b->base, (size_t)n);
    d->len = (size_t)n;
    a = formataddr(from);
    snprintf(d->from, sizeof(d->from), "%s", a ? a : "");
    free(a);
    d->next = NULL;
    if (st->dtail) st->dtail->next = d;
    else st->dhead = d;
    st->dtail = d;
    st->ndgrams++;
  }
  gr_stream_wakeall(st, GR_SREAD);
}

static int readfromattempt (lua_State *L, gr_stream *st, lua_KContext ctx) {
  gr_dgram *d = st->dhead;
  (void)ctx;
  if (st->closed) return gr_stream_fail(L, st, "read", closedmsg(st));
  if (gr_stream_expired(st, GR_SREAD))
    return gr_stream_fail(L, st, "read", "i/o timeout");
  if (d == NULL) {
    if (st->rerr < 0)
      return gr_stream_fail(L, st, "read", gr_stream_strerror(st->rerr));
    return GR_SAGAIN;
  }
  st->dhead = d->next;
  if (st->dhead == NULL) st->dtail = NULL;
  st->ndgrams--;
  lua_pushlstring(L, d->data, d->len);
  lua_pushstring(L, d->from);
  free(d);
  return 2;
}

static int readfromk (lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  return gr_stream_run(L, gr_stream_check(L, 1, PACKETMT), GR_SREAD,
                       readfromattempt, readfromk, ctx);
}

/* pc:read_from() -> data, "host:port" of the sender; or nil, message */
static int lreadfrom (lua_State *L) {
  gr_stream *st = gr_stream_check(L, 1, PACKETMT);
  gr_getstate(L);
  lua_settop(L, 1);
  return gr_stream_run(L, st, GR_SREAD, readfromattempt, readfromk, 0);
}

static void onudpsend (uv_udp_send_t *req, int status) {
  (void)status;
  free(req);
}

/* pc:write_to(data, "ip:port") -> bytes written, or nil and a message.
** A datagram goes out whole or not at all, so it never waits: one the
** socket cannot take at once is queued on the loop. */
static int lwriteto (lua_State *L) {
  gr_stream *st = gr_stream_check(L, 1, PACKETMT);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  const char *addr = luaL_checkstring(L, 3), *why, *bad, *svc;
  char host[256];
  int port, r;
  struct sockaddr_storage sa;
  uv_buf_t buf;
  uv_udp_send_t *req;
  gr_getstate(L);
  if (st->closed) return gr_stream_fail(L, st, "write", closedmsg(st));
  if (gr_stream_expired(st, GR_SWRITE))
    return gr_stream_fail(L, st, "write", "i/o timeout");
  why = splithostport(addr, host, sizeof(host), &port, &svc, &bad);
  if (why == NULL && svc) why = "unknown port", bad = svc;
  if (why) return addrfail(L, "write", st->net, why, bad);
  if (literal(host, port, st->family, 0, &sa) < 0)
    return addrfail(L, "write", st->net, "not an IP address", addr);
  buf = uv_buf_init((char *)data, (unsigned)len);
  r = uv_udp_try_send(&st->u.udp, &buf, 1, (struct sockaddr *)&sa);
  if (r == UV_EAGAIN) {
    req = (uv_udp_send_t *)malloc(sizeof(*req) + len);
    if (req == NULL) return luaL_error(L, "not enough memory");
    memcpy(req + 1, data, len);
    buf = uv_buf_init((char *)(req + 1), (unsigned)len);
    r = uv_udp_send(req, &st->u.udp, &buf, 1, (struct sockaddr *)&sa,
                    onudpsend);
    if (r < 0) free(req);
    else r = (int)len;
  }
  if (r < 0) return gr_stream_fail(L, st, "write", gr_stream_strerror(r));
  lua_pushinteger(L, r);
  return 1;
}

/* g.net.listen_packet(network, address) -> pc, or nil and a message */
static int llistenpacket (lua_State *L) {
  gr_state *S = gr_getstate(L);
  int ni = checknetin(L, "listen", pnetworks), port = 0, r, len;
  const char *addr = luaL_checkstring(L, 2), *why, *bad, *svc;
  char host[256];
  gr_stream *st;
  struct sockaddr_storage sa, a;
  if (ni < 0) return 2;
  why = splithostport(addr, host, sizeof(host), &port, &svc, &bad);
  if (why == NULL && svc) why = "unknown port", bad = svc;
  if (why) return addrfail(L, "listen", pnetworks[ni], why, bad);
  st = gr_stream_new(L, S, PACKETMT, pnetworks[ni]);
  st->family = families[ni];
  if (literal(host, port, st->family, 1, &sa) < 0) {
    gr_stream_close(st);
    return addrfail(L, "listen", st->net, "not an IP address", addr);
  }
  if (uv_udp_init(&S->loop, &st->u.udp) != 0)
    return luaL_error(L, "not enough memory");
  gr_stream_adopt(st, GR_SUDP);
  st->laddr = formataddr((struct sockaddr *)&sa);
  r = uv_udp_bind(&st->u.udp, (struct sockaddr *)&sa,
                  ni == 2 ? UV_UDP_IPV6ONLY : 0);
  if (r == 0)
    r = uv_udp_recv_start(&st->u.udp, onudpalloc, onudprecv);
  if (r < 0) return listenfail(L, st, "bind", r);
  len = sizeof(a);
  if (uv_udp_getsockname(&st->u.udp, (struct sockaddr *)&a, &len) == 0) {
    free(st->laddr);
    st->laddr = formataddr((struct sockaddr *)&a);
  }
  return 1;
}


/* --- lookup_host ------------------------------------------------------------- */

static int lookupattempt (lua_State *L, gr_stream *st, lua_KContext ctx) {
  struct addrinfo *ai;
  int n = 0;
  (void)ctx;
  if (st->gai) return GR_SAGAIN;
  if (st->status < 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "lookup %s: %s", st->name,
                    gr_stream_strerror(st->status));
    return 2;
  }
  lua_newtable(L);
  for (ai = st->res; ai != NULL; ai = ai->ai_next) {
    char ip[64];
    int i, dup = 0;
    if (ai->ai_family == AF_INET)
      uv_ip4_name((struct sockaddr_in *)ai->ai_addr, ip, sizeof(ip));
    else if (ai->ai_family == AF_INET6)
      uv_ip6_name((struct sockaddr_in6 *)ai->ai_addr, ip, sizeof(ip));
    else continue;
    for (i = 1; i <= n && !dup; i++) {   /* one entry per address */
      lua_rawgeti(L, -1, i);
      dup = strcmp(lua_tostring(L, -1), ip) == 0;
      lua_pop(L, 1);
    }
    if (dup) continue;
    lua_pushstring(L, ip);
    lua_rawseti(L, -2, ++n);
  }
  return 1;
}

static int lookupk (lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  return gr_stream_run(L, gr_stream_check(L, 1, RESOLVERMT), GR_SWRITE,
                       lookupattempt, lookupk, ctx);
}

/* g.net.lookup_host(name) -> {address...}, or nil and a message */
static int llookuphost (lua_State *L) {
  gr_state *S = gr_getstate(L);
  const char *name = luaL_checkstring(L, 1);
  struct sockaddr_storage sa;
  gr_stream *st;
  if (literal(name, 0, AF_UNSPEC, 0, &sa) == 0 && name[0] != '\0') {
    lua_createtable(L, 1, 0);
    lua_pushvalue(L, 1);
    lua_rawseti(L, -2, 1);
    return 1;
  }
  st = gr_stream_new(L, S, RESOLVERMT, "ip");
  st->family = AF_UNSPEC;
  resolve(L, st, name, NULL, SOCK_STREAM, 0);
  lua_replace(L, 1);
  lua_settop(L, 1);
  return gr_stream_run(L, st, GR_SWRITE, lookupattempt, lookupk, 0);
}


/* --- moving a handle to another state ---------------------------------------- */

/* A conn, listener or packet conn in flight between states: what its new
** handle starts from. Whatever the sender's handle held that the socket
** itself does not goes along: a conn's bytes read ahead, a listener's
** connection that libuv accepted but accept() did not take yet (libuv
** holds at most one: it stops accepting until uv_accept), a packet conn's
** datagrams received but not read. The kernel's own queues (the accept
** backlog, the socket buffers) go with the socket. */
typedef struct gr_move {
  gr_stream *st;        /* the sender's, until export (its thread) */
  const char *mt;       /* CONNMT, LISTENERMT or PACKETMT */
  int fd;               /* the socket, a duplicate; -1 before export or
                           when dup failed */
  int listener;
  int pendfd;           /* listener: the connection accepted, or -1 */
  int kind;             /* GR_STCP, GR_SPIPE or GR_SUDP */
  int family;
  const char *net;
  char *laddr, *raddr;  /* malloc'd */
  char *unlinkpath;     /* unix listener: its socket file, malloc'd */
  char *buf;            /* conn: the bytes buffered, [head, tail) */
  size_t cap, head, tail;
  gr_dgram *dhead, *dtail;  /* packet conn: datagrams not yet read */
  int ndgrams;
  int rerr;             /* EOF or error already seen */
  uint64_t deadline[2];
} gr_move;

static void freemove (gr_move *m) {
  gr_dgram *d = m->dhead;
  while (d) {
    gr_dgram *next = d->next;
    free(d);
    d = next;
  }
  if (m->fd >= 0) close(m->fd);
  if (m->pendfd >= 0) close(m->pendfd);
  free(m->laddr);
  free(m->raddr);
  free(m->unlinkpath);
  free(m->buf);
  free(m);
}

/* Marks the handle of metatable mt at idx to move; raises if it cannot.
** A packet conn with datagrams queued on its loop (write_to found the
** socket buffer full) stays: closing the sender's handle would drop
** them. Nor does a tentative take (a select's send with other cases)
** move: the export would close the sender's handle even if the select
** chose another case. */
static void *movetake (lua_State *L, int idx, const char *mt,
                       const char *what, int aux) {
  gr_stream *st = gr_stream_check(L, idx, mt);
  gr_move *m;
  if (aux == GR_TAKETENTATIVE)
    luaL_error(L, "cannot move a %s in a select with other cases (send "
               "it alone)", what);
  if (st->move) luaL_error(L, "a %s can move only once at a time", what);
  if (st->closed) luaL_error(L, "cannot move a closed %s", what);
  if (st->q[GR_SREAD].first || st->q[GR_SWRITE].first || st->wreqs)
    luaL_error(L, "cannot move a %s that goroutines use", what);
  if (st->kind == GR_SUDP && uv_udp_get_send_queue_count(&st->u.udp) > 0)
    luaL_error(L, "cannot move a %s with datagrams not yet sent", what);
  m = (gr_move *)calloc(1, sizeof(*m));
  if (m == NULL) luaL_error(L, "not enough memory");
  m->st = st;
  m->mt = mt;
  m->fd = m->pendfd = -1;
  st->move = m;
  return m;
}

static void *conntake (lua_State *L, int idx, int *aux) {
  int in = *aux;
  *aux = 0;
  return movetake(L, idx, CONNMT, "connection", in);
}

static void *lntake (lua_State *L, int idx, int *aux) {
  int in = *aux;
  *aux = 0;
  return movetake(L, idx, LISTENERMT, "listener", in);
}

static void *pctake (lua_State *L, int idx, int *aux) {
  int in = *aux;
  *aux = 0;
  return movetake(L, idx, PACKETMT, "packet connection", in);
}

static void freehandle (uv_handle_t *h) {
  free(h);
}

/* The fd of the connection libuv accepted for listener st, duplicated
** (its handle then closes the original); -1 without one. */
static int takepending (gr_stream *st) {
  uv_stream_t *c;
  uv_os_fd_t fd;
  int r = -1;
  if (st->npending == 0) return -1;
  c = (uv_stream_t *)malloc(sizeof(uv_pipe_t) > sizeof(uv_tcp_t)
                            ? sizeof(uv_pipe_t) : sizeof(uv_tcp_t));
  if (c == NULL) return -1;   /* the connection is lost with the handle */
  if (st->kind == GR_STCP) uv_tcp_init(&st->S->loop, (uv_tcp_t *)c);
  else uv_pipe_init(&st->S->loop, (uv_pipe_t *)c, 0);
  st->npending = 0;
  if (uv_accept(&st->u.s, c) == 0 &&
      uv_fileno((uv_handle_t *)c, &fd) == 0)
    r = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  uv_close((uv_handle_t *)c, freehandle);
  return r;
}

/* The pack is complete: the socket leaves the sender's loop. */
static void moveexport (lua_State *L, void *obj) {
  gr_move *m = (gr_move *)obj;
  gr_stream *st = m->st;
  uv_os_fd_t fd;
  (void)L;
  m->st = NULL;
  st->move = NULL;
  m->kind = st->kind;
  m->family = st->family;
  m->net = st->net;
  m->listener = st->listener;
  if (st->pendfd >= 0) {   /* it moved here and has not listened yet */
    m->pendfd = st->pendfd;
    st->pendfd = -1;
  }
  else if (st->listener) m->pendfd = takepending(st);
  if (uv_fileno(&st->u.h, &fd) == 0)
    m->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  /* A close_write that libuv has not done yet (it shuts the socket down
  ** once the writes queued are out; take saw none) would be cancelled
  ** with the handle: the socket is shut down here instead. */
  if (m->fd >= 0 && st->kind != GR_SUDP && st->u.s.shutdown_req != NULL)
    shutdown(m->fd, SHUT_WR);
  m->laddr = st->laddr ? dupstr(st->laddr) : NULL;   /* NULL: "" */
  m->raddr = st->raddr ? dupstr(st->raddr) : NULL;
  m->unlinkpath = st->unlinkpath;   /* the receiver removes the file */
  st->unlinkpath = NULL;
  if (st->kind == GR_SPIPE && st->listener) {
    /* libuv removes the file a pipe bound when its handle closes
    ** (uv__pipe_close, from its strdup'ed pipe_fname): not this one. */
    free((char *)st->u.pipe.pipe_fname);
    st->u.pipe.pipe_fname = NULL;
  }
  if (st->kind != GR_SUDP) {   /* a packet conn's is its receive area */
    m->buf = st->buf;
    m->cap = st->cap;
    m->head = st->head;
    m->tail = st->tail;
    st->buf = NULL;
    st->cap = st->head = st->tail = st->scanned = 0;
  }
  m->dhead = st->dhead;
  m->dtail = st->dtail;
  m->ndgrams = st->ndgrams;
  st->dhead = st->dtail = NULL;
  st->ndgrams = 0;
  m->rerr = st->rerr;
  m->deadline[0] = st->deadline[0];
  m->deadline[1] = st->deadline[1];
  st->moved = 1;
  gr_stream_close(st);
}

/* Drops a pack's handle: before export the sender keeps it; after, the
** duplicates are closed (any thread). */
static void movedrop (lua_State *L, void *obj) {
  gr_move *m = (gr_move *)obj;
  (void)L;
  if (m->st) m->st->move = NULL;
  freemove(m);
}

/* Opens fd as the handle of st (of kind); 0 or a libuv error. */
static int openfd (gr_stream *st, int kind, int fd) {
  if (fd < 0) return UV_EBADF;
  if (kind == GR_STCP) return uv_tcp_open(&st->u.tcp, fd);
  if (kind == GR_SPIPE) return uv_pipe_open(&st->u.pipe, fd);
  return uv_udp_open(&st->u.udp, fd);
}

/* Pushes the handle in its new state, on that state's loop. */
static void movepush (lua_State *L, void *obj, int aux) {
  gr_move *m = (gr_move *)obj;
  gr_state *S = gr_state_get(L);
  gr_stream *st;
  int r;
  (void)aux;
  st = gr_stream_new(L, S, m->mt, m->net);   /* m still ours on error */
  if (m->kind == GR_STCP) r = uv_tcp_init(&S->loop, &st->u.tcp);
  else if (m->kind == GR_SPIPE) r = uv_pipe_init(&S->loop, &st->u.pipe, 0);
  else r = uv_udp_init(&S->loop, &st->u.udp);
  if (r < 0) luaL_error(L, "not enough memory");
  gr_stream_adopt(st, m->kind);
  r = openfd(st, m->kind, m->fd);
  if (r == 0) m->fd = -1;   /* the handle closes it from now on */
  st->family = m->family;
  st->laddr = m->laddr;
  st->raddr = m->raddr;
  st->unlinkpath = m->unlinkpath;
  st->buf = m->buf;
  st->cap = m->cap;
  st->head = m->head;
  st->tail = m->tail;
  st->dhead = m->dhead;
  st->dtail = m->dtail;
  st->ndgrams = m->ndgrams;
  st->rerr = m->rerr;
  st->deadline[0] = m->deadline[0];
  st->deadline[1] = m->deadline[1];
  m->laddr = m->raddr = m->unlinkpath = m->buf = NULL;
  m->dhead = m->dtail = NULL;
  if (m->listener) {
    /* With a connection in hand it listens only once accept took it:
    ** libuv would take another from the backlog, and a listener holds
    ** one at most (for a move on). */
    st->listener = 1;
    st->pendfd = m->pendfd;
    m->pendfd = -1;
    if (r == 0 && st->pendfd < 0)
      r = uv_listen(&st->u.s, SOMAXCONN, onconnection);
  }
  else if (m->kind == GR_SUDP && r == 0)
    r = uv_udp_recv_start(&st->u.udp, onudpalloc, onudprecv);
  freemove(m);
  if (r < 0) gr_stream_close(st);
}

static const gr_objtype conntype = {
  CONNMT, conntake, movepush, movedrop, moveexport
};

static const gr_objtype lntype = {
  LISTENERMT, lntake, movepush, movedrop, moveexport
};

static const gr_objtype pctype = {
  PACKETMT, pctake, movepush, movedrop, moveexport
};


/* --- registration --------------------------------------------------------------- */

static const luaL_Reg lnmethods[] = {
  {"accept", laccept},
  {"addr", lln_addr},
  {"close", lln_close},
  {NULL, NULL}
};

static const luaL_Reg pcmethods[] = {
  {"read_from", lreadfrom},
  {"write_to", lwriteto},
  {NULL, NULL}
};

static const luaL_Reg funcs[] = {
  {"listen", llisten},
  {"listen_packet", llistenpacket},
  {"dial", ldial},
  {"lookup_host", llookuphost},
  {NULL, NULL}
};

/* Registers g.net in the module table at the top of L. */
void gr_net_open (lua_State *L) {
  lua_newtable(L);
  gr_stream_setmethods(L, GR_SMETABYTES);
  gr_stream_newmeta(L, CONNMT, GR_SMETABYTES);
  luaL_getmetatable(L, CONNMT);
  gr_objtype_set(L, -1, &conntype);
  lua_pop(L, 1);
  lua_newtable(L);
  gr_state_setfuncs(L, lnmethods);
  gr_stream_newmeta(L, LISTENERMT, GR_SMETANONE);
  luaL_getmetatable(L, LISTENERMT);
  gr_objtype_set(L, -1, &lntype);
  lua_pop(L, 1);
  lua_newtable(L);
  gr_stream_newmeta(L, RESOLVERMT, GR_SMETANONE);
  lua_newtable(L);
  gr_stream_setmethods(L, GR_SMETAPACKET);
  gr_state_setfuncs(L, pcmethods);
  gr_stream_newmeta(L, PACKETMT, GR_SMETAPACKET);
  luaL_getmetatable(L, PACKETMT);
  gr_objtype_set(L, -1, &pctype);
  lua_pop(L, 1);
  lua_newtable(L);
  gr_state_setfuncs(L, funcs);
  lua_setfield(L, -2, "net");
}
