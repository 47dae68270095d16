/*
** hostchan.c -- host channels (goroutines.h): channels that a C host
** makes and uses from any thread without a Lua state, next to the
** goroutines that use them through Lua handles (gr_chan_push).
**
** A host channel is shared from birth (c->shared: its lock is always
** taken, its values are never Lua values of a state) and carries only
** nil, booleans, integers, numbers and strings (c->host: a Lua send of
** anything else raises), which a host thread copies in and out: scalars
** inline, a string as a pack of one string (copy.c). A short string goes
** in a small pack, which the goroutine that receives it gives back to a
** host channel at its next receive (c->spare), for a host sender to refill
** under the lock: a stream of short strings allocates nothing once it
** runs.
**
** A host thread that must wait parks a hostwaiter on the channel's own
** queue, as a goroutine parks its waiter, and sleeps on the waiter's
** condition variable: the wake function (called by the waker with no
** lock held, once) signals it. A wait that times out takes its waiter
** back under the channel's lock; if a waker took it first, the operation
** completed, and the thread waits for that wake, which is imminent.
**
** Invariants: a queued hostwaiter lives on its thread's stack until its
**   wake has landed (hw->woken, under hw->mu) or it was taken back; a
**   call that waits holds a ref of its own on the channel, so that a host
**   thread may release its last ref while another one waits.
** Lock order: c->lock (GR_LCHAN), then nothing; hw->mu is a leaf, taken
**   by the waker after it dropped c->lock and by the waiting thread.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "chan.h"
#include "state.h"
#include "wait.h"

typedef struct hostwaiter {
  gr_waiter w;          /* first: the wake finds the record from it */
  uv_mutex_t mu;        /* leaf: guards woken */
  uv_cond_t cv;         /* signalled by the wake */
  int woken;            /* protected by mu: the wake has landed */
} hostwaiter;

static void hostwake (gr_state *cur, gr_waiter *w) {
  hostwaiter *hw = (hostwaiter *)w;
  (void)cur;
  uv_mutex_lock(&hw->mu);
  hw->woken = 1;
  uv_cond_signal(&hw->cv);
  uv_mutex_unlock(&hw->mu);   /* the last touch: hw may go at once */
}

/* Whether timeout (seconds) is one the API takes: < 0 blocks, 0 never
** does, > 0 waits that long (+inf blocks). NaN is refused. */
static int goodtimeout (double timeout) {
  return timeout == timeout;
}

/* Waits until hw's wake lands, or until the deadline (0: none) passes.
** Returns 1 if woken. */
static int sleepon (hostwaiter *hw, uint64_t deadline) {
  int woken;
  uv_mutex_lock(&hw->mu);
  while (!hw->woken) {
    uint64_t now;
    if (deadline == 0) {
      uv_cond_wait(&hw->cv, &hw->mu);
      continue;
    }
    now = uv_hrtime();
    if (now >= deadline) break;
    (void)uv_cond_timedwait(&hw->cv, &hw->mu, deadline - now);
  }
  woken = hw->woken;
  uv_mutex_unlock(&hw->mu);
  return woken;
}

/* Parks the calling thread on c's queue for dir, with *v for a send.
** Requires c->lock; drops it. Returns GR_OK (completed: for a receive the
** value is in *v), GR_CLOSED (woken by close: a send's value is still in
** *v) or GR_TIMEOUT (taken back: a send's value is still in *v). */
static int hostpark (gr_chan *c, int dir, gr_value *v, double timeout) {
  hostwaiter hw;
  uint64_t deadline = 0;
  int r;
  if (timeout > 0 && timeout < 1e9) {   /* beyond 30 years: no deadline */
    deadline = uv_hrtime() + (uint64_t)(timeout * 1e9);
    if (deadline == 0) deadline = 1;
  }
  if (uv_mutex_init(&hw.mu) != 0) {
    gr_chan_unlock(c);
    return GR_ENOMEM;
  }
  if (uv_cond_init(&hw.cv) != 0) {
    uv_mutex_destroy(&hw.mu);
    gr_chan_unlock(c);
    return GR_ENOMEM;
  }
  hw.woken = 0;
  memset(&hw.w, 0, sizeof(hw.w));
  hw.w.wake = hostwake;
  hw.w.obj = c;
  hw.w.dir = dir;
  hw.w.val = *v;
  gr_waitq_push(dir == GR_DIRRECV ? &c->recvq : &c->sendq, &hw.w);
  gr_chan_unlock(c);
  if (!sleepon(&hw, deadline)) {
    int taken;
    gr_chan_lock(c);
    taken = hw.w.inq;
    if (taken) gr_waitq_remove(dir == GR_DIRRECV ? &c->recvq : &c->sendq,
                               &hw.w);
    gr_chan_unlock(c);
    if (!taken) sleepon(&hw, 0);   /* a waker has it: its wake comes */
  }
  if (!hw.woken) r = GR_TIMEOUT;
  else r = hw.w.success ? GR_OK : GR_CLOSED;
  *v = hw.w.val;
  uv_cond_destroy(&hw.cv);
  uv_mutex_destroy(&hw.mu);
  return r;
}

gr_chan *gr_chan_new (size_t cap) {
  gr_chan *c;
  if (cap > ((size_t)1 << 40) / sizeof(gr_value)) return NULL;
  if ((c = gr__chan_new(cap)) == NULL) return NULL;
  c->host = 1;
  atomic_store(&c->shared, 1);
  return c;
}

void gr_chan_release (gr_chan *c) {
  if (c != NULL) gr__chan_release(NULL, c);
}

int gr_chan_close (gr_chan *c) {
  if (c == NULL || !c->host) return GR_EINVAL;
  return gr__chan_close(NULL, c);
}

/* Copies a host value in: GR_OK, GR_EINVAL (a type the API does not
** carry) or GR_ENOMEM. */
static int hostin (const gr_hostval *hv, gr_value *v) {
  switch (hv->type) {
    case GR_TNIL: v->type = GR_VNIL; return GR_OK;
    case GR_TBOOLEAN: v->type = GR_VBOOL; v->u.b = hv->u.b != 0; return GR_OK;
    case GR_TINTEGER: v->type = GR_VINT; v->u.i = hv->u.i; return GR_OK;
    case GR_TNUMBER: v->type = GR_VNUM; v->u.n = hv->u.n; return GR_OK;
    case GR_TSTRING:
      if (hv->u.s.p == NULL && hv->u.s.len > 0) return GR_EINVAL;
      if (hv->u.s.len > UINT32_MAX) return GR_EINVAL;
      if ((v->u.p = gr_pack_string(hv->u.s.p, hv->u.s.len)) == NULL)
        return GR_ENOMEM;
      v->type = GR_VPACK;
      return GR_OK;
    default: return GR_EINVAL;
  }
}

/* Copies a value out to the host and drops it: GR_OK, or GR_ENOMEM (the
** value is lost: *hv is nil). */
static int hostout (gr_value *v, gr_hostval *hv) {
  const char *s;
  size_t len;
  char *copy;
  hv->type = GR_TNIL;
  switch (v->type) {
    case GR_VNIL: return GR_OK;
    case GR_VBOOL: hv->type = GR_TBOOLEAN; hv->u.b = v->u.b; return GR_OK;
    case GR_VINT: hv->type = GR_TINTEGER; hv->u.i = v->u.i; return GR_OK;
    case GR_VNUM: hv->type = GR_TNUMBER; hv->u.n = v->u.n; return GR_OK;
    default: break;
  }
  /* A Lua send checked the type: a pack here holds one string. */
  GR_ASSERT(v->type == GR_VPACK);
  s = gr_pack_tostring(v->u.p, &len);
  GR_ASSERT(s != NULL);
  copy = (char *)malloc(len + 1);
  if (copy != NULL) {
    memcpy(copy, s, len);
    copy[len] = '\0';
    hv->type = GR_TSTRING;
    hv->u.s.p = copy;
    hv->u.s.len = len;
  }
  gr_value_discard(NULL, v);
  return copy != NULL ? GR_OK : GR_ENOMEM;
}

/* Copies the string of hv into a small pack that c's receivers gave back,
** or a new one, with c's lock held on return: GR_OK, GR_EINVAL or
** GR_ENOMEM (then unlocked). The bytes are copied under the lock: at
** most GR_PACK_SMALL of them. */
static int hostinsmall (gr_chan *c, const gr_hostval *hv, gr_value *v) {
  gr_pack *p;
  if (hv->u.s.p == NULL && hv->u.s.len > 0) return GR_EINVAL;
  gr_chan_lock(c);
  if ((p = gr_chan_takespare(c)) == NULL) {
    gr_chan_unlock(c);   /* nothing is allocated under the lock */
    if ((p = gr_pack_newstring(hv->u.s.len)) == NULL) return GR_ENOMEM;
    gr_chan_lock(c);
  }
  gr_pack_fill(p, hv->u.s.p, hv->u.s.len);
  v->type = GR_VPACK;
  v->u.p = p;
  return GR_OK;
}

int gr_chan_send (gr_chan *c, const gr_hostval *hv, double timeout) {
  gr_waiter *wake;
  gr_value v;
  int r;
  if (c == NULL || hv == NULL || !c->host || !goodtimeout(timeout))
    return GR_EINVAL;
  if (hv->type == GR_TSTRING && hv->u.s.len <= GR_PACK_SMALL) {
    if ((r = hostinsmall(c, hv, &v)) != GR_OK) return r;
  }
  else {
    if ((r = hostin(hv, &v)) != GR_OK) return r;
    gr_chan_lock(c);
  }
  r = gr_chan_sendlocked(c, &v, &wake);
  if (r == GR_WOULDBLOCK && timeout != 0) {
    gr__chan_retain(c);   /* the call's own: the host may release c meanwhile */
    r = hostpark(c, GR_DIRSEND, &v, timeout);
    gr__chan_release(NULL, c);
  }
  else {
    gr_chan_unlock(c);
    if (wake) gr_wait_wake(NULL, wake);
    if (r == GR_WOULDBLOCK) r = GR_TIMEOUT;
  }
  if (r != GR_OK) gr_value_discard(NULL, &v);
  return r;
}

int gr_chan_recv (gr_chan *c, gr_hostval *hv, double timeout) {
  gr_waiter *wake;
  gr_value v;
  int r;
  if (hv != NULL) hv->type = GR_TNIL;
  if (c == NULL || hv == NULL || !c->host || !goodtimeout(timeout))
    return GR_EINVAL;
  gr_chan_lock(c);
  r = gr_chan_recvlocked(c, &v, &wake);
  if (r == GR_WOULDBLOCK && timeout != 0) {
    gr__chan_retain(c);   /* the call's own: the host may release c meanwhile */
    r = hostpark(c, GR_DIRRECV, &v, timeout);
    gr__chan_release(NULL, c);
  }
  else {
    gr_chan_unlock(c);
    if (wake) gr_wait_wake(NULL, wake);
    if (r == GR_WOULDBLOCK) r = GR_TIMEOUT;
  }
  if (r != GR_OK) {
    gr_value_discard(NULL, &v);
    return r;
  }
  return hostout(&v, hv);
}

void gr_hostval_free (gr_hostval *hv) {
  if (hv == NULL) return;
  if (hv->type == GR_TSTRING) free((void *)hv->u.s.p);
  hv->type = GR_TNIL;
}

int gr_chan_push (lua_State *L, gr_chan *c) {
  if (L == NULL || c == NULL || !c->host || gr_state_find(L) == NULL ||
      !lua_checkstack(L, 2))
    return GR_EINVAL;
  gr_chan_pushud(L, c, GR_DIRBOTH);
  return GR_OK;
}

gr_chan *gr_chan_check (lua_State *L, int idx) {
  gr_chanud *u = (gr_chanud *)luaL_testudata(L, idx, "goroutines.chan");
  if (u == NULL) luaL_typeerror(L, idx, "goroutines.chan");
  if (u->c == NULL) gr_chan_finalized(L);
  if (!u->c->host)
    luaL_argerror(L, idx, "not a host channel (made by gr_chan_new)");
  return u->c;
}
