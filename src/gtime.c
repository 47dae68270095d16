/*
** gtime.c -- g.time: sleep, after, tick, timer, ticker, after_func, now
** and since, and the timer and ticker handles; on the timers of timer.c.
**
** Ownership: a timer or ticker handle (gr_timerud) owns a ref on its
**   timer's channel (which owns the timer) or, for after_func, the timer
**   itself until it is collected (gr_timer_dropud); after, tick and sleep
**   have no handle.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "chan.h"
#include "errors.h"
#include "state.h"
#include "gtime.h"
#include "timer.h"

/* Lua handle of a timer or ticker: one user value, the channel t.c. */
typedef struct gr_timerud {
  gr_timer *t;          /* NULL once collected; a GR_TSEND timer's
                           handle holds a ref on t->c */
} gr_timerud;

#define TIMERMT "goroutines.timer"

/* --- Lua functions: sleep, after, tick, now, since --------------------------- */

/* luaL_argerror, naming the function fname. Lua finds the name of a
** function called through pcall in package.loaded, one level deep: the
** functions of the g.time subtable would be '?'. */
static int argerror (lua_State *L, int arg, const char *fname,
                     const char *msg) {
  lua_Debug ar;
  if (lua_getstack(L, 0, &ar) && lua_getinfo(L, "n", &ar) &&
      ar.namewhat != NULL && strcmp(ar.namewhat, "method") == 0)
    arg--;   /* as luaL_argerror: self is not counted */
  return luaL_error(L, "bad argument #%d to '%s' (%s)", arg, fname, msg);
}

/* luaL_typeerror with argerror's name. */
static int typeerror (lua_State *L, int arg, const char *fname,
                      const char *tname) {
  const char *typearg;
  if (luaL_getmetafield(L, arg, "__name") == LUA_TSTRING)
    typearg = lua_tostring(L, -1);
  else if (lua_type(L, arg) == LUA_TLIGHTUSERDATA)
    typearg = "light userdata";
  else
    typearg = luaL_typename(L, arg);
  return argerror(L, arg, fname,
                  lua_pushfstring(L, "%s expected, got %s", tname, typearg));
}

static double checknum (lua_State *L, int arg, const char *fname) {
  int isnum;
  lua_Number d = lua_tonumberx(L, arg, &isnum);
  if (!isnum) typeerror(L, arg, fname, "number");
  return (double)d;
}

static double checkperiod (lua_State *L, int arg, const char *fname) {
  double d = checknum(L, arg, fname);
  if (!(d > 0)) argerror(L, arg, fname, "non-positive interval");
  return d;
}

static int sleep_k (lua_State *L, int status, lua_KContext ctx) {
  gr_state *S = gr_getstate(L);
  gr_g *g = S->current;
  (void)ctx;
  if (status < 0) {   /* an in-place sleep never deadlocks: an error */
    gr_timer_cancelsleep(S, g);
    gr_errors_raisewait(L, S, status);
  }
  return 0;
}

static int lsleep (lua_State *L) {
  gr_state *S = gr_getstate(L);
  double d = checknum(L, 1, "sleep");
  int mode;
  gr_timer *t;
  gr_g *g = S->current;
  if (!(d > 0)) return 0;
  mode = gr_sched_blockmode(L, S);
  if (mode == GR_BLOCK_NO) return gr_sched_cannotblock(L, GR_WSLEEP);
  t = gr_timer_new(L, S, GR_TSLEEP);
  t->g = g;
  gr_timer_start(L, S, t, d);
  g->sleep = t;
  gr_sched_prepark(g, mode, GR_WSLEEP, NULL);
  return gr_sched_park(L, S, g, 0, sleep_k);
}

/* Pushes the receive-only channel of a new timer without a handle, which
** sends on it d seconds from now, and every period ns after (0: once). */
static int pushtimerchan (lua_State *L, double d, uint64_t period) {
  gr_state *S = gr_getstate(L);
  gr_timer *t = gr_timer_new(L, S, GR_TSEND);
  gr_chan *c = gr__chan_new(1);
  if (c == NULL) {
    free(t);
    return luaL_error(L, "not enough memory");
  }
  gr_timer_attach(t, c);
  t->period = period;
  gr_chan_pushud(L, c, GR_DIRRECV);
  gr__chan_release(L, c);   /* the handle holds the only ref now */
  gr_timer_start(L, S, t, d);       /* on failure the handle frees c and t */
  return 1;
}

static int lafter (lua_State *L) {
  return pushtimerchan(L, checknum(L, 1, "after"), 0);
}

static int ltick (lua_State *L) {
  double d = checkperiod(L, 1, "tick");
  return pushtimerchan(L, d, gr_timer_period(d));
}

static int lnow (lua_State *L) {
  lua_pushnumber(L, (lua_Number)uv_hrtime() / 1e9);
  return 1;
}

static int lsince (lua_State *L) {
  double t = checknum(L, 1, "since");
  lua_pushnumber(L, (lua_Number)uv_hrtime() / 1e9 - t);
  return 1;
}


/* --- timer and ticker handles ------------------------------------------------ */

/* Pushes a handle of t: it owns a GR_TFUNC timer, and holds a ref on the
** channel (the owner) of a GR_TSEND one. */
static gr_timerud *pushhandle (lua_State *L, gr_timer *t) {
  gr_timerud *u = (gr_timerud *)lua_newuserdatauv(L, sizeof(*u), 1);
  u->t = t;
  if (t->kind != GR_TSEND) t->ud = 1;
  luaL_setmetatable(L, TIMERMT);
  return u;
}

static gr_timer *checktimer (lua_State *L) {
  gr_timerud *u = (gr_timerud *)luaL_checkudata(L, 1, TIMERMT);
  if (u->t == NULL) luaL_error(L, "attempt to use a finalized %s", TIMERMT);
  if (!gr_timer_usable(u->t))
    luaL_error(L, "timer used after its state was closed");
  return u->t;
}

static int newhandle (lua_State *L, int kind, double d, uint64_t period) {
  gr_state *S = gr_getstate(L);
  gr_timer *t = gr_timer_new(L, S, kind);
  if (kind == GR_TSEND) {
    gr_chan *c = gr__chan_new(1);   /* its creation ref: the handle's */
    if (c == NULL) {
      free(t);
      return luaL_error(L, "not enough memory");
    }
    gr_timer_attach(t, c);
    pushhandle(L, t);          /* holds c, the owner of t, from here on */
    gr_chan_pushud(L, c, GR_DIRRECV);
    lua_setiuservalue(L, -2, 1);
  }
  else {
    pushhandle(L, t);          /* owns t from here on, even on error */
    lua_pushvalue(L, 2);
    t->fref = luaL_ref(L, LUA_REGISTRYINDEX);  /* released in freetimer */
  }
  t->period = period;
  gr_timer_start(L, S, t, d);
  return 1;
}

static int ltimer (lua_State *L) {
  return newhandle(L, GR_TSEND, checknum(L, 1, "timer"), 0);
}

static int lticker (lua_State *L) {
  double d = checkperiod(L, 1, "ticker");
  return newhandle(L, GR_TSEND, d, gr_timer_period(d));
}

static int lafterfunc (lua_State *L) {
  double d = checknum(L, 1, "after_func");
  if (!gr_sched_iscallable(L, 2))
    return typeerror(L, 2, "after_func", "function");
  return newhandle(L, GR_TFUNC, d, 0);
}

/* t:stop() -> whether the call stopped the timer (gr_timer_stop) */
static int ltimer_stop (lua_State *L) {
  gr_state *S = gr_getstate(L);
  gr_timer *t = checktimer(L);
  lua_pushboolean(L, gr_timer_stop(S, t));
  return 1;
}

/* t:reset(d) -> as stop, then arms the timer d seconds from now */
static int ltimer_reset (lua_State *L) {
  gr_state *S = gr_getstate(L);
  gr_timer *t = checktimer(L);
  double d = t->period ? checkperiod(L, 2, "reset")
                       : checknum(L, 2, "reset");
  int stopped = gr_timer_reset(S, t, d);
  if (stopped < 0) return luaL_error(L, "not enough memory");
  lua_pushboolean(L, stopped);
  return 1;
}

static int ltimer_index (lua_State *L) {
  const char *k = lua_tostring(L, 2);
  if (k != NULL && k[0] == 'c' && k[1] == '\0') {
    luaL_checkudata(L, 1, TIMERMT);
    lua_getiuservalue(L, 1, 1);
    return 1;
  }
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(GR_NUPVALUES + 1));
  return 1;
}

/* A collected handle of a channel timer drops its ref on the channel,
** which frees the timer with it once nobody else holds it; an after_func
** timer runs on, as in Go: its heap owns it from then on. */
static int ltimer_gc (lua_State *L) {
  gr_timerud *u = (gr_timerud *)luaL_checkudata(L, 1, TIMERMT);
  gr_timer *t = u->t;
  if (t == NULL) return 0;   /* idempotent */
  u->t = NULL;
  gr_timer_dropud(L, t);
  return 0;
}

static int ltimer_tostring (lua_State *L) {
  lua_pushfstring(L, "goroutines.timer: %p",
                  (void *)luaL_checkudata(L, 1, TIMERMT));
  return 1;
}

static const luaL_Reg timermethods[] = {
  {"stop", ltimer_stop},
  {"reset", ltimer_reset},
  {NULL, NULL}
};

static const luaL_Reg funcs[] = {
  {"sleep", lsleep},
  {"after", lafter},
  {"tick", ltick},
  {"timer", ltimer},
  {"ticker", lticker},
  {"after_func", lafterfunc},
  {"now", lnow},
  {"since", lsince},
  {NULL, NULL}
};

static void setconst (lua_State *L, const char *name, double v) {
  lua_pushnumber(L, v);
  lua_setfield(L, -2, name);
}

/* Registers g.time in the module table at the top of L. */
void gr_time_open (lua_State *L) {
  luaL_newmetatable(L, TIMERMT);
  lua_pushcfunction(L, ltimer_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, ltimer_tostring);
  lua_setfield(L, -2, "__tostring");
  gr_state_pushbox(L);
  luaL_getmetatable(L, "goroutines.chan");
  luaL_getmetatable(L, "goroutines.case");
  lua_newtable(L);                  /* methods, upvalue 4 of __index */
  lua_pushvalue(L, -4);
  lua_pushvalue(L, -4);
  lua_pushvalue(L, -4);
  luaL_setfuncs(L, timermethods, GR_NUPVALUES);
  lua_pushcclosure(L, ltimer_index, GR_NUPVALUES + 1);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lua_newtable(L);
  gr_state_setfuncs(L, funcs);
  setconst(L, "nanosecond", 1e-9);
  setconst(L, "microsecond", 1e-6);
  setconst(L, "millisecond", 1e-3);
  setconst(L, "second", 1);
  setconst(L, "minute", 60);
  setconst(L, "hour", 3600);
  lua_setfield(L, -2, "time");
}
