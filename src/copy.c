/*
** copy.c -- values in flight (gr_value) and the transfer of values between
** Lua states (gr_pack), in one pass each way.
**
** Transfer rules (SPEC): nil, booleans, numbers (integer or float) and
** strings are copied; tables are copied deeply, cycles, shared sub-tables
** and metatables preserved; Lua functions travel as bytecode with their
** upvalues copied by the same rules (shared upvalues stay shared) and
** _ENV bound to the receiving side; C functions of the standard library
** and of loaded modules travel by name; runtime objects (channels, sync
** objects, contexts: a gr_objtype) by handle. Anything else raises an
** error at the send or spawn site that names where the value sits, and
** nothing is sent. Values nest at most
** MAXDEPTH deep. A module that travels by name must load on the other
** side: g.parallel raises if a worker state could not load it (see
** workercanload), a receiving state that cannot raises at the receive.
**
** Invariants:
**   A gr_pack owns one ref on every object in its handle table until
**     gr_pack_push hands it to a new Lua handle, or gr_pack_free drops it;
**     a channel's packrefs counts the refs that packs hold on it.
**   A pack or push in progress keeps its scratch memory and refs in a box,
**     a userdata on the Lua stack: an error that abandons it leaves it to
**     its __gc, and once it holds refs it is to be closed, so that an
**     error drops them at once. Nothing is kept per thread.
**   A GR_VREF slot owns one registry reference, a GR_VPACK slot one pack;
**     push and discard release them and leave the slot GR_VNIL (push
**     first, so that a push that raises leaves nothing to free twice).
**   Packing may raise (it runs Lua API calls), so callers pack before they
**     take any lock; pushing raises only for memory or a module that does
**     not load; freeing never raises.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "copy.h"
#include "state.h"

/* How deep values may nest: tables in tables, functions in the upvalues of
** functions, metatables; beyond it a pack raises "nested too deep" (the
** default depth of lua-cjson, and of Python's recursion). Packing and
** unpacking recurse in C once per level, a few hundred bytes of C stack a
** level (more under sanitizers): the limit keeps that well inside the
** smallest thread stack that runs them. */
#define MAXDEPTH 1000

enum {
  T_NIL, T_FALSE, T_TRUE, T_INT, T_NUM, T_STR, T_TABLE, T_REF, T_LFUNC,
  T_NAMED, T_ENV, T_UPJOIN, T_HANDLE, T_END
};

typedef struct handle {
  const gr_objtype *type;  /* what obj is */
  int aux;              /* channel direction, sync kind */
  void *obj;            /* NULL once handed to a Lua handle */
} handle;


/* A finished pack: one allocation holding this header, the bytes and
** the handle table. */
struct gr_pack {
  unsigned char *data;
  size_t len;
  int nvalues;          /* top-level values */
  int hasrefs;          /* it refers back to its own tables or functions */
  int nhandles;
  int small;            /* of the small size (GR_PACK_SMALL): reusable */
  handle *h;
  gr_pack *next;        /* a list of spare small packs (gr_pack_next) */
};

/* One step of the path from a top-level value to the one being packed. */
typedef struct seg {
  int kind;             /* SEG_* */
  int idx;              /* SEG_KEY: stack index of the key */
  const char *name;     /* SEG_UPVAL: the upvalue's name */
} seg;

/* Scratch memory of one pack or unpack, in a userdata on the Lua stack
** (lauxlib's UBox): an error anywhere in between leaves it to the GC,
** whose __gc frees what it holds, so nothing depends on how the stack
** unwound. Once it holds refs (handles) it is also marked to be closed,
** so that an error drops them at once. Each state caches one box with
** its buffers (copyctx), taken while in use: a pack then costs one
** allocation and no metamethod call. A nested pack (a channel's buffered
** values), or the next one after an error, makes a new box, which is
** cached in turn (the one an error left behind becomes garbage). */
typedef struct box {
  unsigned char *data;  /* bytes of the pack under construction */
  size_t len, cap;
  handle *h;            /* its handle table: one ref on each obj */
  int nh, hcap;
  int hasrefs;
  seg *seg;             /* the path of the value being packed */
  int segcap;
  gr_pack *pack;        /* unpacking: the pack being pushed */
  int ownpack;          /* whether closing frees pack (else drops refs) */
  int closing;          /* marked to be closed (lua_toclose) */
  int cached;           /* the cached box of its state's copyctx */
} box;

#define BOXKEEP 65536   /* a cached box keeps buffers up to this size */

static void boxhold (lua_State *L, box *b, int idx);

/* A state's copy context, a userdata in registry[&ctxkey], so that a pack
** or push looks up the registry once: its user values are the cached box,
** the name map (buildcfuncs) and the set of goroutine _ENVs (nil until
** gr_copy_markenv makes it). */
typedef struct copyctx {
  box *cached;          /* user value CTX_BOX */
  box *free;            /* cached, while no pack uses it; else NULL */
} copyctx;

enum { CTX_BOX = 1, CTX_CFUNCS, CTX_ENVS, CTX_NUV = CTX_ENVS };

static const char objtypekey = 0;   /* metatable field: the gr_objtype */
static const char objskey = 0, envkey = 0, dumpkey = 0, ctxkey = 0;
static const char loadedkey = 0;   /* package.loaded's hash at the build */
static const char boxmtkey = 0;
static const char loadablekey = 0; /* modules a worker state can load */

/* Pushes the state's copy context, making it the first time. */
static copyctx *getctx (lua_State *L) {
  copyctx *cc;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &ctxkey) == LUA_TUSERDATA)
    return (copyctx *)lua_touserdata(L, -1);
  lua_pop(L, 1);
  cc = (copyctx *)lua_newuserdatauv(L, sizeof(copyctx), CTX_NUV);
  cc->cached = cc->free = NULL;
  lua_pushvalue(L, -1);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &ctxkey);
  return cc;
}


/* --- buffers --------------------------------------------------------------- */

static void grow (lua_State *L, box *p, size_t n) {
  if (p->len + n > p->cap) {
    size_t cap = p->cap ? p->cap : 64;
    unsigned char *d;
    while (cap < p->len + n) cap *= 2;
    d = (unsigned char *)realloc(p->data, cap);
    if (d == NULL) luaL_error(L, "not enough memory");
    p->data = d;
    p->cap = cap;
  }
}

static void put (lua_State *L, box *p, const void *s, size_t n) {
  grow(L, p, n);
  memcpy(p->data + p->len, s, n);
  p->len += n;
}

static void puttag (lua_State *L, box *p, int tag) {
  unsigned char t = (unsigned char)tag;
  put(L, p, &t, 1);
}

static void putu32 (lua_State *L, box *p, uint32_t u) {
  put(L, p, &u, sizeof(u));
}


/* --- packing ----------------------------------------------------------------- */

enum { SEG_KEY, SEG_UPVAL, SEG_META };

#define GR_XSTR(x) #x
#define GR_STR(x) GR_XSTR(x)

#define MEMOSLOTS 64    /* open addressing; spills to a Lua table at half */

typedef struct packctx {
  lua_State *L;
  box *p;
  const void *mkey[MEMOSLOTS];  /* object or upvalue id -> its index */
  lua_Integer mval[MEMOSLOTS];
  int mused;
  int spill;            /* stack index: nil, or the memo once it spilled */
  int nobj;
  int cfuncs;           /* stack index: C function -> name, or nil */
  int ctx;              /* stack index of the copy context */
  const char *root;     /* naming of the top-level values in errors */
  int rootbase, valueno;
  int tentative;        /* the pack may be dropped unsent (see take) */
  int depth;            /* segments in p->seg */
  int boxidx;           /* stack index of p */
} packctx;

static void packvalue (packctx *cx, int idx);

/* Adds to b the name of the path segment s. */
#define KEYSHOW 40      /* bytes of a string key that an error shows */

/* Pushes ["s"]: the string key s (len bytes) quoted as a Lua literal,
** its first KEYSHOW bytes only, then "...". */
static void pushquoted (lua_State *L, const char *s, size_t len) {
  luaL_Buffer b;
  size_t i, n = len > KEYSHOW ? KEYSHOW : len;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, "[\"");
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') {
      luaL_addchar(&b, '\\');
      luaL_addchar(&b, (char)c);
    }
    else if (c == '\n') luaL_addstring(&b, "\\n");
    else if (c < 32 || c == 127) {
      char esc[8];   /* as %q: three digits where a digit follows */
      int digit = i + 1 < len && s[i + 1] >= '0' && s[i + 1] <= '9';
      snprintf(esc, sizeof(esc), digit ? "\\%03u" : "\\%u", c);
      luaL_addstring(&b, esc);
    }
    else luaL_addchar(&b, (char)c);
  }
  luaL_addstring(&b, n < len ? "\"...]" : "\"]");
  luaL_pushresult(&b);
}

static void addseg (lua_State *L, luaL_Buffer *b, const seg *s) {
  int k = s->idx;
  switch (s->kind) {
    case SEG_UPVAL:
      lua_pushfstring(L, "(upvalue %s)", s->name);
      break;
    case SEG_META:
      lua_pushliteral(L, "(metatable)");
      break;
    default:
      if (lua_type(L, k) == LUA_TSTRING) {
        size_t len, i;
        const char *str = lua_tolstring(L, k, &len);
        int ident = len > 0 && len <= KEYSHOW && !(str[0] >= '0' &&
                                                   str[0] <= '9');
        for (i = 0; ident && i < len; i++)
          ident = str[i] == '_' || ((str[i] | 32) >= 'a' &&
                  (str[i] | 32) <= 'z') || (str[i] >= '0' && str[i] <= '9');
        if (ident) lua_pushfstring(L, ".%s", str);
        else pushquoted(L, str, len);
      }
      else if (lua_isinteger(L, k))
        lua_pushfstring(L, "[%I]", (LUAI_UACINT)lua_tointeger(L, k));
      else
        lua_pushfstring(L, "[%s]", luaL_typename(L, k));
      break;
  }
  luaL_addvalue(b);
}

#define PATHEND 8       /* a long path shows this many segments each end */

/* Raises "<path>: <what>" (or "<path>: <what> cannot be copied to another
** state" with cannot), naming where the value sits. */
static void packfail (packctx *cx, const char *what, int cannot) {
  lua_State *L = cx->L;
  luaL_Buffer b;
  int i;
  luaL_checkstack(L, 8, "not enough stack to name a value");
  luaL_buffinit(L, &b);
  luaL_where(L, 1);   /* where g.parallel or the send was called */
  luaL_addvalue(&b);
  if (cx->rootbase < 0) luaL_addstring(&b, cx->root);
  else if (cx->valueno < cx->rootbase) luaL_addstring(&b, "f");
  else {
    lua_pushfstring(L, "%s[%d]", cx->root, cx->valueno - cx->rootbase + 1);
    luaL_addvalue(&b);
  }
  for (i = 0; i < cx->depth; i++) {
    if (cx->depth > 2 * PATHEND + 1 && i == PATHEND) {
      lua_pushfstring(L, "...(%d more)...", cx->depth - 2 * PATHEND);
      luaL_addvalue(&b);
      i = cx->depth - PATHEND;
    }
    addseg(L, &b, &cx->p->seg[i]);
  }
  luaL_addstring(&b, ": ");
  luaL_addstring(&b, what);
  if (cannot) luaL_addstring(&b, " cannot be copied to another state");
  luaL_pushresult(&b);
  lua_error(L);
}

static void packerror (packctx *cx, const char *what) {
  packfail(cx, what, 1);
}

/* Makes room for one more path segment; raises beyond MAXDEPTH. */
static void growpath (packctx *cx) {
  box *p = cx->p;
  int cap = p->segcap ? p->segcap * 2 : 32;
  seg *sg;
  if (cx->depth >= MAXDEPTH)
    packerror(cx, "a value nested too deep (over "
                  GR_STR(MAXDEPTH) " levels)");
  if (cap > MAXDEPTH) cap = MAXDEPTH;
  sg = (seg *)realloc(p->seg, cap * sizeof(seg));
  if (sg == NULL) luaL_error(cx->L, "not enough memory");
  p->seg = sg;
  p->segcap = cap;
}

/* Enters a segment of the path. */
static inline void push (packctx *cx, int kind, int idx, const char *name) {
  box *p = cx->p;
  if (cx->depth == p->segcap) growpath(cx);
  p->seg[cx->depth].kind = kind;
  p->seg[cx->depth].idx = idx;
  p->seg[cx->depth].name = name;
  cx->depth++;
}

/* The memo maps what was packed (tables and functions by address, and
** upvalue ids) to its index; small values use the C array, larger ones
** spill into a Lua table keyed by light userdata. */
static unsigned slot (const void *key) {
  return (unsigned)(((uintptr_t)key >> 4) * 2654435761u) & (MEMOSLOTS - 1);
}

static lua_Integer memoget (packctx *cx, const void *key) {
  lua_State *L = cx->L;
  lua_Integer v;
  unsigned i;
  if (!lua_isnil(L, cx->spill)) {
    lua_pushlightuserdata(L, (void *)key);
    v = lua_rawget(L, cx->spill) == LUA_TNUMBER ? lua_tointeger(L, -1) : 0;
    lua_pop(L, 1);
    return v;
  }
  for (i = slot(key); cx->mkey[i] != NULL; i = (i + 1) & (MEMOSLOTS - 1))
    if (cx->mkey[i] == key) return cx->mval[i];
  return 0;
}

static void memoput (packctx *cx, const void *key, lua_Integer v) {
  lua_State *L = cx->L;
  unsigned i;
  if (lua_isnil(L, cx->spill) && cx->mused + 1 > MEMOSLOTS / 2) {
    lua_createtable(L, 0, MEMOSLOTS);   /* spill what the array holds */
    for (i = 0; i < MEMOSLOTS; i++) {
      if (cx->mkey[i] == NULL) continue;
      lua_pushlightuserdata(L, (void *)cx->mkey[i]);
      lua_pushinteger(L, cx->mval[i]);
      lua_rawset(L, -3);
    }
    lua_replace(L, cx->spill);
  }
  if (!lua_isnil(L, cx->spill)) {
    lua_pushlightuserdata(L, (void *)key);
    lua_pushinteger(L, v);
    lua_rawset(L, cx->spill);
    return;
  }
  for (i = slot(key); cx->mkey[i] != NULL; i = (i + 1) & (MEMOSLOTS - 1)) {}
  cx->mkey[i] = key;
  cx->mval[i] = v;
  cx->mused++;
}

/* If the object at idx was packed already, writes a reference to it and
** returns 1; else gives it the next index and returns 0. */
static int memoize (packctx *cx, int idx) {
  const void *key = lua_topointer(cx->L, idx);
  lua_Integer v = memoget(cx, key);
  if (v != 0) {
    puttag(cx->L, cx->p, T_REF);
    putu32(cx->L, cx->p, (uint32_t)v);
    cx->p->hasrefs = 1;
    return 1;
  }
  memoput(cx, key, ++cx->nobj);
  return 0;
}

/* The modules every worker state has: what luaL_openlibs opens, and this
** module, which the worker requires before it runs anything. */
static const char *const stdlibs[] = {
  "_G", "package", "coroutine", "table", "io", "os", "string", "math",
  "utf8", "debug", "goroutines", "goroutines.core", NULL
};

/* Whether a worker state can load the module mod (len bytes). The rule:
** a worker state opens the standard libraries and has the spawner's
** package.path and package.cpath (SPEC), but not its package.preload nor
** any searcher it added; so a module loads there if it is one of stdlibs
** or package.searchpath finds it on package.path or package.cpath
** (for "a.b", "a" on package.cpath too: the all-in-one loader). A module
** that only package.preload (or a custom searcher) provides does not, and
** g.parallel says so rather than the worker seeing nil. The verdicts are
** cached per name while package.path and package.cpath stay the same. */
static int workercanload (lua_State *L, const char *mod, size_t len) {
  int top = lua_gettop(L), pkg, cache, ok = 0, i;
  luaL_checkstack(L, 8, "too many values to copy");
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  if (lua_getfield(L, -1, "package") != LUA_TTABLE) {
    lua_settop(L, top);
    return 1;   /* no package library: nothing to tell by */
  }
  pkg = lua_gettop(L);
  lua_getfield(L, pkg, "path");
  lua_getfield(L, pkg, "cpath");
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &loadablekey) != LUA_TTABLE ||
      (lua_rawgeti(L, -1, 1), !lua_rawequal(L, -1, pkg + 1)) ||
      (lua_rawgeti(L, -2, 2), !lua_rawequal(L, -1, pkg + 2))) {
    lua_settop(L, pkg + 2);
    lua_createtable(L, 2, 8);
    lua_pushvalue(L, pkg + 1);
    lua_rawseti(L, -2, 1);
    lua_pushvalue(L, pkg + 2);
    lua_rawseti(L, -2, 2);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &loadablekey);
  }
  else
    lua_pop(L, 2);
  cache = lua_gettop(L);
  lua_pushlstring(L, mod, len);
  if (lua_rawget(L, cache) == LUA_TBOOLEAN) {
    ok = lua_toboolean(L, -1);
    lua_settop(L, top);
    return ok;
  }
  for (i = 0; stdlibs[i] != NULL && !ok; i++)
    ok = strlen(stdlibs[i]) == len && memcmp(stdlibs[i], mod, len) == 0;
  for (i = 0; i < 3 && !ok; i++) {
    const char *dot = memchr(mod, '.', len);
    if (i == 2 && dot == NULL) break;
    if (lua_getfield(L, pkg, "searchpath") != LUA_TFUNCTION) {
      ok = 1;   /* cannot tell */
      break;
    }
    lua_pushlstring(L, mod, i == 2 ? (size_t)(dot - mod) : len);
    lua_pushvalue(L, i == 0 ? pkg + 1 : pkg + 2);
    if (!lua_isstring(L, -1)) {
      lua_pop(L, 3);
      continue;
    }
    lua_call(L, 2, 1);
    ok = lua_isstring(L, -1);
    lua_pop(L, 1);
  }
  lua_pushlstring(L, mod, len);
  lua_pushboolean(L, ok);
  lua_rawset(L, cache);
  lua_settop(L, top);
  return ok;
}

/* Writes the name of a module table or C function; returns 0 if the value
** at idx has none. For g.parallel, raises if a worker state could not
** load the module (workercanload); on a channel, the receiving state
** raises if it cannot (pushnamed). */
static int packnamed (packctx *cx, int idx) {
  lua_State *L = cx->L;
  size_t len;
  const char *name, *sep;
  if (!lua_istable(L, cx->cfuncs)) return 0;
  lua_pushvalue(L, idx);
  if (lua_rawget(L, cx->cfuncs) != LUA_TSTRING) {
    lua_pop(L, 1);
    return 0;
  }
  name = lua_tolstring(L, -1, &len);
  sep = memchr(name, '\1', len);
  if (cx->rootbase >= 0 &&
      !workercanload(L, name, sep ? (size_t)(sep - name) : len)) {
    lua_pushlstring(L, name, sep ? (size_t)(sep - name) : len);
    lua_pushfstring(L, "module '%s' cannot be loaded in a worker state "
                    "(package.searchpath finds it on neither package.path "
                    "nor package.cpath; package.preload stays in its state)",
                    lua_tostring(L, -1));
    packfail(cx, lua_tostring(L, -1), 0);
  }
  puttag(L, cx->p, T_NAMED);
  putu32(L, cx->p, (uint32_t)len);
  put(L, cx->p, name, len);
  lua_pop(L, 1);
  return 1;
}

static void packtable (packctx *cx, int idx) {
  lua_State *L = cx->L;
  size_t counts;
  uint32_t narr = 0, nhash = 0;
  if (packnamed(cx, idx)) return;   /* a loaded module: by name */
  if (memoize(cx, idx)) return;
  luaL_checkstack(L, 8, "value too deep to copy");
  puttag(L, cx->p, T_TABLE);
  counts = cx->p->len;
  putu32(L, cx->p, 0);
  putu32(L, cx->p, 0);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    int k = lua_gettop(L) - 1;
    if (lua_isinteger(L, k) && lua_tointeger(L, k) > 0) narr++;
    else nhash++;
    push(cx, SEG_KEY, k, NULL);
    packvalue(cx, k);
    packvalue(cx, k + 1);
    cx->depth--;
    lua_pop(L, 1);
  }
  puttag(L, cx->p, T_END);
  memcpy(cx->p->data + counts, &narr, sizeof(narr));
  memcpy(cx->p->data + counts + sizeof(narr), &nhash, sizeof(nhash));
  if (lua_getmetatable(L, idx)) {
    push(cx, SEG_META, 0, NULL);
    packvalue(cx, lua_gettop(L));
    cx->depth--;
    lua_pop(L, 1);
  }
  else
    puttag(L, cx->p, T_NIL);
}

static int writer (lua_State *L, const void *b, size_t n, void *ud) {
  put(L, (box *)ud, b, n);
  return 0;
}

/* Whether the table at idx is a globals table: the state's, or the _ENV
** of a parallel goroutine. */
static int isenv (packctx *cx, int idx) {
  lua_State *L = cx->L;
  int r;
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
  r = lua_rawequal(L, -1, idx);
  lua_pop(L, 1);
  if (r) return 1;
  if (lua_getiuservalue(L, cx->ctx, CTX_ENVS) != LUA_TTABLE) {
    lua_pop(L, 1);
    return 0;
  }
  lua_pushvalue(L, idx);
  r = lua_rawget(L, -2) != LUA_TNIL;
  lua_pop(L, 2);
  return r;
}

static void packlfunc (packctx *cx, int idx) {
  lua_State *L = cx->L;
  size_t lenat, start;
  uint32_t len;
  int i, nups = 0, fidx;
  lua_Debug ar;
  if (packnamed(cx, idx)) return;   /* a loaded module's: by name */
  if (memoize(cx, idx)) return;
  luaL_checkstack(L, 8, "value too deep to copy");
  fidx = cx->nobj;   /* this function's index, for joins to its upvalues */
  puttag(L, cx->p, T_LFUNC);
  lenat = cx->p->len;
  putu32(L, cx->p, 0);
  start = cx->p->len;
  /* The bytecode of a function never changes: it is dumped once and
  ** kept in a weak table (spawning the same function again is common). */
  gr_state_weaktable(L, &dumpkey);
  lua_pushvalue(L, idx);
  if (lua_rawget(L, -2) == LUA_TSTRING) {
    size_t n;
    const char *code = lua_tolstring(L, -1, &n);
    put(L, cx->p, code, n);
    lua_pop(L, 2);
  }
  else {
    lua_pop(L, 1);
    lua_pushvalue(L, idx);
    lua_dump(L, writer, cx->p, 0);
    lua_pop(L, 1);
    lua_pushvalue(L, idx);
    lua_pushlstring(L, (const char *)cx->p->data + start,
                    cx->p->len - start);
    lua_rawset(L, -3);
    lua_pop(L, 1);
  }
  len = (uint32_t)(cx->p->len - start);
  memcpy(cx->p->data + lenat, &len, sizeof(len));
  lua_pushvalue(L, idx);
  lua_getinfo(L, ">u", &ar);
  nups = ar.nups;
  putu32(L, cx->p, (uint32_t)nups);
  for (i = 1; i <= nups; i++) {
    const char *name = lua_getupvalue(L, idx, i);
    void *id = lua_upvalueid(L, idx, i);
    int v = lua_gettop(L);
    /* A shared upvalue is packed once and joined on the other side. */
    lua_Integer ref = memoget(cx, id);
    if (ref != 0) {
      puttag(L, cx->p, T_UPJOIN);
      putu32(L, cx->p, (uint32_t)(ref >> 8));
      putu32(L, cx->p, (uint32_t)(ref & 0xff));
      cx->p->hasrefs = 1;
      lua_pop(L, 1);
      continue;
    }
    memoput(cx, id, ((lua_Integer)fidx << 8) | i);
    if (name && strcmp(name, "_ENV") == 0 && lua_istable(L, v) &&
        isenv(cx, v))
      puttag(L, cx->p, T_ENV);
    else {
      push(cx, SEG_UPVAL, 0, name ? name : "?");
      packvalue(cx, v);
      cx->depth--;
    }
    lua_settop(L, v - 1);
  }
}

/* Adds to the map at index map every C function of the table at index t,
** named prefix\1key; recurses once into sub-tables (g.time.sleep). */
static void addcfuncs (lua_State *L, int map, int t, const char *prefix,
                       int deeper) {
  lua_pushnil(L);
  while (lua_next(L, t)) {
    int k = lua_gettop(L) - 1, v = k + 1;
    if (lua_type(L, k) == LUA_TSTRING) {
      if (lua_iscfunction(L, v) ||
          (lua_isfunction(L, v) && strcmp(prefix, "_G") != 0)) {
        lua_pushvalue(L, v);
        if (lua_rawget(L, map) == LUA_TNIL) {   /* first name wins */
          lua_pushvalue(L, v);
          lua_pushfstring(L, "%s\1%s", prefix, lua_tostring(L, k));
          lua_rawset(L, map);
        }
        lua_pop(L, 1);
      }
      else if (deeper && lua_istable(L, v)) {
        lua_pushfstring(L, "%s\1%s", prefix, lua_tostring(L, k));
        lua_pushvalue(L, v);
        if (lua_rawget(L, map) == LUA_TNIL) {
          lua_pushvalue(L, v);
          lua_pushvalue(L, -3);
          lua_rawset(L, map);
        }
        lua_pop(L, 1);
        addcfuncs(L, map, v, lua_tostring(L, -1), 0);
        lua_pop(L, 1);
      }
    }
    lua_settop(L, k);
  }
}

/* Builds, caches and pushes the map of what travels by name: every module
** table in package.loaded ("mod") and its sub-tables ("mod\1key"), and
** their functions ("mod\1key", "mod\1key\1key"); of _G, which is the
** script's own, only the C functions (print, pairs...). */
static void buildcfuncs (lua_State *L) {
  int map, loaded;
  lua_newtable(L);
  map = lua_gettop(L);
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  loaded = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, loaded)) {
    int k = lua_gettop(L) - 1;
    if (lua_type(L, k) == LUA_TSTRING && lua_istable(L, k + 1)) {
      lua_pushvalue(L, k + 1);   /* the module itself goes by its name */
      lua_pushvalue(L, k);
      lua_rawset(L, map);
      addcfuncs(L, map, k + 1, lua_tostring(L, k),
                strcmp(lua_tostring(L, k), "_G") != 0);
    }
    lua_settop(L, k);
  }
  lua_settop(L, map);
  getctx(L);
  lua_pushvalue(L, map);
  lua_setiuservalue(L, -2, CTX_CFUNCS);
  lua_pop(L, 1);
}

/* Whether package.loaded changed since the name map was built (a hash of
** its values, which a module loaded in place of one removed changes too):
** checked at each g.parallel (not at each send, where it would cost too
** much). */
static int loadedchanged (lua_State *L) {
  lua_Integer was;
  uint64_t h = 14695981039346656037u;
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    h = (h ^ (uint64_t)(uintptr_t)lua_topointer(L, -1)) * 1099511628211u;
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &loadedkey);
  was = lua_tointeger(L, -1);
  lua_pop(L, 1);
  if (was == (lua_Integer)h) return 0;
  lua_pushinteger(L, (lua_Integer)h);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &loadedkey);
  return 1;
}

static void packcfunc (packctx *cx, int idx) {
  if (packnamed(cx, idx)) return;
  buildcfuncs(cx->L);   /* not found: a module may have loaded since */
  lua_replace(cx->L, cx->cfuncs);
  if (packnamed(cx, idx)) return;
  packerror(cx, "a C function that is not a loaded module's");
}

/* Adds obj, whose new ref the caller took, to the handle table. */
static void addhandle (packctx *cx, const gr_objtype *t, int aux,
                       void *obj) {
  box *p = cx->p;
  if (!p->closing) boxhold(cx->L, p, cx->boxidx);   /* no raise */
  if (p->nh == p->hcap) {
    int cap = p->hcap ? p->hcap * 2 : 4;
    handle *h = (handle *)realloc(p->h, cap * sizeof(handle));
    if (h == NULL) {   /* obj's ref is ours: drop it before raising */
      t->drop(cx->L, obj);
      luaL_error(cx->L, "not enough memory");
    }
    p->h = h;
    p->hcap = cap;
  }
  p->h[p->nh].type = t;
  p->h[p->nh].aux = aux;
  p->h[p->nh].obj = obj;
  p->nh++;
  puttag(cx->L, p, T_HANDLE);
  putu32(cx->L, p, (uint32_t)(p->nh - 1));
}

/* A handle of a runtime object crosses as the object, with a new ref;
** any other userdata cannot cross. */
static void packuserdata (packctx *cx, int idx) {
  lua_State *L = cx->L;
  const gr_objtype *t = NULL;
  int aux = 0;
  void *obj;
  if (lua_getmetatable(L, idx)) {
    if (lua_rawgetp(L, -1, &objtypekey) == LUA_TLIGHTUSERDATA)
      t = (const gr_objtype *)lua_touserdata(L, -1);
    lua_pop(L, 2);
  }
  if (t == NULL) packerror(cx, luaL_typename(L, idx));
  aux = cx->tentative ? GR_TAKETENTATIVE : 0;
  if ((obj = t->take(L, idx, &aux)) == NULL)
    packerror(cx, lua_pushfstring(L, "a finalized %s", t->name));
  addhandle(cx, t, aux, obj);
}

void gr_objtype_set (lua_State *L, int mt, const gr_objtype *t) {
  mt = lua_absindex(L, mt);
  lua_pushlightuserdata(L, (void *)t);
  lua_rawsetp(L, mt, &objtypekey);
}

static void packvalue (packctx *cx, int idx) {
  lua_State *L = cx->L;
  box *p = cx->p;
  switch (lua_type(L, idx)) {
    case LUA_TNIL: puttag(L, p, T_NIL); break;
    case LUA_TBOOLEAN:
      puttag(L, p, lua_toboolean(L, idx) ? T_TRUE : T_FALSE);
      break;
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) {
        lua_Integer i = lua_tointeger(L, idx);
        puttag(L, p, T_INT);
        put(L, p, &i, sizeof(i));
      }
      else {
        lua_Number n = lua_tonumber(L, idx);
        puttag(L, p, T_NUM);
        put(L, p, &n, sizeof(n));
      }
      break;
    case LUA_TSTRING: {
      size_t len;
      const char *s = lua_tolstring(L, idx, &len);
      if (len > UINT32_MAX) packerror(cx, "a string over 4 GiB");
      puttag(L, p, T_STR);
      putu32(L, p, (uint32_t)len);
      put(L, p, s, len);
      break;
    }
    case LUA_TTABLE: packtable(cx, idx); break;
    case LUA_TFUNCTION:
      if (lua_iscfunction(L, idx)) packcfunc(cx, idx);
      else packlfunc(cx, idx);
      break;
    case LUA_TUSERDATA: packuserdata(cx, idx); break;
    case LUA_TTHREAD: packerror(cx, "a coroutine"); break;
    default: packerror(cx, luaL_typename(L, idx)); break;
  }
}

static void drophandles (lua_State *L, handle *h, int n) {
  int i;
  for (i = 0; i < n; i++) {
    if (h[i].obj == NULL) continue;
    h[i].type->drop(L, h[i].obj);
    h[i].obj = NULL;
  }
}

/* Frees p, dropping the refs of the handles it still owns. */
void gr_pack_free (gr_pack *p) {
  if (p == NULL) return;
  drophandles(NULL, p->h, p->nhandles);
  free(p);
}

/* A pack for one string of len bytes, made without a Lua state (the host
** channels of the embedding API), to be filled with gr_pack_fill; of the
** small size when len fits it. NULL without memory or over 4 GiB. */
gr_pack *gr_pack_newstring (size_t len) {
  gr_pack *p;
  int small = len <= GR_PACK_SMALL;
  if (len > UINT32_MAX ||
      (p = (gr_pack *)malloc(sizeof(*p) + 1 + sizeof(uint32_t) +
                             (small ? GR_PACK_SMALL : len))) == NULL)
    return NULL;
  p->data = (unsigned char *)(p + 1);
  p->nvalues = 1;
  p->hasrefs = 0;
  p->nhandles = 0;
  p->small = small;
  p->h = NULL;
  p->next = NULL;
  return p;
}

/* Makes p, from gr_pack_newstring(n) with len <= n or of the small size
** with len <= GR_PACK_SMALL, the pack of the string s. */
void gr_pack_fill (gr_pack *p, const char *s, size_t len) {
  uint32_t l = (uint32_t)len;
  p->data[0] = T_STR;
  memcpy(p->data + 1, &l, sizeof(l));
  if (len > 0) memcpy(p->data + 1 + sizeof(l), s, len);
  p->len = 1 + sizeof(l) + len;
}

gr_pack *gr_pack_string (const char *s, size_t len) {
  gr_pack *p = gr_pack_newstring(len);
  if (p != NULL) gr_pack_fill(p, s, len);
  return p;
}

int gr_pack_issmall (const gr_pack *p) {
  return p->small;
}

gr_pack **gr_pack_next (gr_pack *p) {
  return &p->next;
}

size_t gr_pack_size (const gr_pack *p) {
  return p->len;
}

/* The bytes of p if it holds one string alone, else NULL. */
const char *gr_pack_tostring (const gr_pack *p, size_t *len) {
  uint32_t l;
  if (p->nvalues != 1 || p->nhandles != 0 || p->len < 1 + sizeof(l) ||
      p->data[0] != T_STR)
    return NULL;
  memcpy(&l, p->data + 1, sizeof(l));
  if (p->len != 1 + sizeof(l) + l) return NULL;
  *len = l;
  return (const char *)p->data + 1 + sizeof(l);
}

/* A copy of p with refs of its own on p's handles, each taken through a
** handle pushed in L for the moment (push gives it p's ref, take gets it
** back for p and one more for the copy). May raise (memory): then the
** copy is lost, with the refs it had taken. */
gr_pack *gr_pack_dup (lua_State *L, const gr_pack *p) {
  size_t hsize = (size_t)p->nhandles * sizeof(handle);
  gr_pack *d = (gr_pack *)malloc(sizeof(gr_pack) + hsize + p->len);
  int i;
  if (d == NULL) luaL_error(L, "not enough memory");
  *d = *p;
  d->small = 0;
  d->next = NULL;
  d->h = (handle *)(d + 1);
  d->data = (unsigned char *)(d->h) + hsize;
  if (p->len > 0) memcpy(d->data, p->data, p->len);
  d->nhandles = 0;
  for (i = 0; i < p->nhandles; i++) {
    const handle *s = &p->h[i];
    int aux;
    d->h[i] = *s;
    if (s->obj != NULL) {
      s->type->push(L, s->obj, s->aux);          /* p's ref: the handle's */
      s->type->take(L, -1, &aux);                /* p's again */
      d->h[i].obj = s->type->take(L, -1, &aux);  /* the copy's */
      lua_pop(L, 1);
    }
    d->nhandles = i + 1;
  }
  return d;
}

/* For gr__chan_release, which needs to know whether the values in a
** channel's own buffer hold all of its refs. */
int gr_pack_objrefs (gr_pack *p, const void *obj, int take) {
  int i, n = 0;
  for (i = 0; i < p->nhandles; i++) {
    if (p->h[i].obj != obj) continue;
    n++;
    if (take) p->h[i].obj = NULL;
  }
  return n;
}


/* --- scratch boxes ------------------------------------------------------------ */

/* Empties a box: drops the refs it holds, frees the pack it was pushing
** (or, when that pack is its caller's, drops the refs left in it). Its
** buffers stay for the next use unless they grew big. */
static void boxreset (lua_State *L, box *b) {
  drophandles(L, b->h, b->nh);
  b->nh = 0;
  b->len = 0;
  b->hasrefs = 0;
  if (b->pack != NULL) {
    if (b->ownpack) gr_pack_free(b->pack);
    else drophandles(L, b->pack->h, b->pack->nhandles);
    b->pack = NULL;
  }
  if (b->cap > BOXKEEP) {
    free(b->data);
    b->data = NULL;
    b->cap = 0;
  }
}

static int lboxclose (lua_State *L) {
  box *b = (box *)lua_touserdata(L, 1);
  boxreset(L, b);
  b->closing = 0;
  return 0;
}

static int lboxgc (lua_State *L) {
  box *b = (box *)lua_touserdata(L, 1);
  boxreset(L, b);   /* idempotent: a reset box holds nothing */
  free(b->data);
  free(b->h);
  free(b->seg);
  memset(b, 0, sizeof(*b));
  return 0;
}

/* Pushes a box: the cached one of the copy context cc (at stack index
** ctx), or a new one. The caller ends its use with putbox. */
static box *getbox (lua_State *L, copyctx *cc, int ctx) {
  box *b = cc->free;
  if (b != NULL) {
    cc->free = NULL;
    lua_getiuservalue(L, ctx, CTX_BOX);
    return b;
  }
  b = (box *)lua_newuserdatauv(L, sizeof(box), 0);
  memset(b, 0, sizeof(*b));
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &boxmtkey) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_createtable(L, 0, 2);
    lua_pushcfunction(L, lboxclose);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, lboxgc);
    lua_setfield(L, -2, "__gc");
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &boxmtkey);
  }
  lua_setmetatable(L, -2);
  return b;
}

/* Marks the box at idx to be closed, before it takes refs: an error then
** drops them at once rather than at the next collection. */
static void boxhold (lua_State *L, box *b, int idx) {
  if (b->closing) return;
  lua_toclose(L, idx);
  b->closing = 1;
}

/* Ends the use of the box b at idx: empties it and makes it cc's cached
** box (one that a nested pack cached becomes garbage). */
static void putbox (lua_State *L, copyctx *cc, int ctx, box *b, int idx) {
  if (!b->cached) {
    if (cc->cached) cc->cached->cached = 0;   /* still anchored here */
    lua_pushvalue(L, idx);
    lua_setiuservalue(L, ctx, CTX_BOX);
    cc->cached = b;
    b->cached = 1;
  }
  if (b->closing) lua_closeslot(L, idx);   /* boxreset, by lboxclose */
  else if (b->nh == 0 && b->pack == NULL && b->cap <= BOXKEEP)
    b->len = 0, b->hasrefs = 0;   /* boxreset's work, in short */
  else boxreset(L, b);
  cc->free = b;
}

/* Packs n values from index first. Raises with the path of a value that
** cannot cross, having changed nothing: closing the box drops the refs it
** had taken. */
static gr_pack *packvalues (lua_State *L, int first, int n,
                            const char *root, int rootbase, int tentative) {
  packctx cx;
  copyctx *cc;
  box *b;
  gr_pack *p;
  int top = lua_gettop(L), i, ctx, bidx;
  first = lua_absindex(L, first);
  luaL_checkstack(L, 16, "too many values to copy");
  cc = getctx(L);
  ctx = lua_gettop(L);
  b = getbox(L, cc, ctx);
  bidx = lua_gettop(L);
  memset(cx.mkey, 0, sizeof(cx.mkey));   /* not mval: read only when set */
  cx.mused = cx.nobj = cx.valueno = cx.depth = 0;
  cx.tentative = tentative;
  cx.L = L;
  cx.p = b;
  cx.boxidx = bidx;
  cx.root = root;
  cx.rootbase = rootbase;
  lua_pushnil(L);
  cx.spill = lua_gettop(L);
  if (lua_getiuservalue(L, ctx, CTX_CFUNCS) != LUA_TTABLE ||
      (rootbase >= 0 && loadedchanged(L))) {
    lua_pop(L, 1);
    buildcfuncs(L);
  }
  cx.cfuncs = lua_gettop(L);
  cx.ctx = ctx;
  for (i = 0; i < n; i++) {
    cx.valueno = i;
    packvalue(&cx, first + i);
  }
  p = (gr_pack *)malloc(sizeof(gr_pack) + b->nh * sizeof(handle) + b->len);
  if (p == NULL) luaL_error(L, "not enough memory");
  /* The refs move to the pack, which the box owns until the channels
  ** packed have become shared (that packs their values: it may raise). */
  p->h = (handle *)(p + 1);
  p->nhandles = b->nh;
  if (b->nh > 0) memcpy(p->h, b->h, b->nh * sizeof(handle));
  p->data = (unsigned char *)(p->h + b->nh);
  p->len = b->len;
  if (b->len > 0) memcpy(p->data, b->data, b->len);
  p->nvalues = n;
  p->hasrefs = b->hasrefs;
  p->small = 0;
  p->next = NULL;
  b->nh = 0;
  b->pack = p;
  b->ownpack = 1;
  for (i = 0; i < p->nhandles; i++)
    if (p->h[i].type->export != NULL)
      p->h[i].type->export(L, p->h[i].obj);
  b->pack = NULL;
  putbox(L, cc, ctx, b, bidx);
  lua_settop(L, top);
  return p;
}

gr_pack *gr_pack_values (lua_State *L, int first, int n, const char *root,
                         int rootbase) {
  return packvalues(L, first, n, root, rootbase, 0);
}

gr_pack *gr_pack_tentative (lua_State *L, int first, int n,
                            const char *root, int rootbase) {
  return packvalues(L, first, n, root, rootbase, 1);
}


/* Pushes a scratch table kept in the registry under key for reuse. It is
** taken out while in use, so a nested or failed use never sees a dirty
** one: a nested use (or the next one after an error) makes a new table. */
static int takememo (lua_State *L, const void *key) {
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, key) == LUA_TTABLE) {
    lua_pushboolean(L, 0);
    lua_rawsetp(L, LUA_REGISTRYINDEX, key);
  }
  else {
    lua_pop(L, 1);
    lua_createtable(L, 8, 0);
  }
  return lua_gettop(L);
}

/* Empties the scratch table at idx and puts it back for reuse. */
static void givememo (lua_State *L, const void *key, int idx) {
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    lua_pushvalue(L, -1);
    lua_pushnil(L);
    lua_rawset(L, idx);
  }
  lua_pushvalue(L, idx);
  lua_rawsetp(L, LUA_REGISTRYINDEX, key);
}


/* --- unpacking ---------------------------------------------------------------- */

typedef struct unpackctx {
  lua_State *L;
  gr_pack *p;
  size_t pos;
  int objs;             /* stack index: index -> object, or 0 without refs */
  int nobj;
  int env;              /* stack index of the table bound to _ENV (nil until
                           a function needs it: then the globals) */
  int depth;            /* tables and functions being filled */
} unpackctx;

/* Registers the object at the top as the next one (for back references). */
static void remember (unpackctx *ux) {
  ux->nobj++;
  if (ux->objs) {
    lua_pushvalue(ux->L, -1);
    lua_rawseti(ux->L, ux->objs, ux->nobj);
  }
}

static int gettag (unpackctx *ux) {
  return ux->p->data[ux->pos++];
}

static uint32_t getu32 (unpackctx *ux) {
  uint32_t u;
  memcpy(&u, ux->p->data + ux->pos, sizeof(u));
  ux->pos += sizeof(u);
  return u;
}

static void unpackvalue (unpackctx *ux);

typedef struct chunk {
  const char *s;
  size_t n;
} chunk;

static const char *chunkreader (lua_State *L, void *ud, size_t *size) {
  chunk *c = (chunk *)ud;
  (void)L;
  *size = c->n;
  c->n = 0;
  return *size ? c->s : NULL;
}

/* Pushes what a name of packnamed stands for in this state, requiring the
** module if it is not loaded yet. Raises, naming the module, if this
** state cannot load it or it lacks the named field: never a silent nil. */
static void pushnamed (unpackctx *ux, const char *name, size_t len) {
  lua_State *L = ux->L;
  const char *sep = memchr(name, '\1', len);
  size_t modlen = sep ? (size_t)(sep - name) : len;
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  lua_pushlstring(L, name, modlen);
  if (lua_rawget(L, -2) == LUA_TNIL) {   /* not loaded here yet */
    lua_pop(L, 1);
    lua_getglobal(L, "require");
    lua_pushlstring(L, name, modlen);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
      const char *msg = lua_tostring(L, -1);
      lua_pushlstring(L, name, modlen);
      luaL_error(L, "module '%s' cannot be loaded in this state: %s",
                 lua_tostring(L, -1), msg ? msg : "(error object is not a "
                 "string)");
    }
  }
  while (sep != NULL) {
    const char *k = sep + 1;
    size_t klen;
    sep = memchr(k, '\1', len - (k - name));
    klen = sep ? (size_t)(sep - k) : len - (k - name);
    lua_pushlstring(L, k, klen);
    if (!lua_istable(L, -2) || lua_rawget(L, -2) == LUA_TNIL) {
      const char *owner;
      lua_pushlstring(L, name, (size_t)(k - name) - 1);
      owner = luaL_gsub(L, lua_tostring(L, -1), "\1", ".");
      lua_pushlstring(L, k, klen);
      luaL_error(L, "'%s' has no field '%s' in this state", owner,
                 lua_tostring(L, -1));
    }
    lua_remove(L, -2);
  }
  lua_remove(L, -2);
}

static void unpackfunc (unpackctx *ux) {
  lua_State *L = ux->L;
  chunk c;
  uint32_t i, nups;
  int f;
  c.n = getu32(ux);
  c.s = (const char *)ux->p->data + ux->pos;
  ux->pos += c.n;
  if (lua_load(L, chunkreader, &c, "=(copied function)", "b") != LUA_OK)
    lua_error(L);  /* the bytecode came from this same Lua: unreachable */
  f = lua_gettop(L);
  remember(ux);
  nups = getu32(ux);
  for (i = 1; i <= nups; i++) {
    int tag = ux->p->data[ux->pos];
    if (tag == T_ENV) {
      ux->pos++;
      if (lua_isnil(L, ux->env)) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
        lua_replace(L, ux->env);
      }
      lua_pushvalue(L, ux->env);
      lua_setupvalue(L, f, (int)i);
    }
    else if (tag == T_UPJOIN) {
      uint32_t fi, n;
      ux->pos++;
      fi = getu32(ux);
      n = getu32(ux);
      lua_rawgeti(L, ux->objs, fi);
      lua_upvaluejoin(L, f, (int)i, lua_gettop(L), (int)n);
      lua_pop(L, 1);
    }
    else {
      unpackvalue(ux);
      if (lua_setupvalue(L, f, (int)i) == NULL) lua_pop(L, 1);
    }
  }
}

static void unpackvalue (unpackctx *ux) {
  lua_State *L = ux->L;
  int tag = gettag(ux);
  luaL_checkstack(L, 8, "value too deep to copy");
  /* Packing kept to MAXDEPTH: a deeper pack is corrupt, and the C
  ** recursion below stays bounded whatever the bytes say. */
  if ((tag == T_TABLE || tag == T_LFUNC) && ux->depth > MAXDEPTH + 1)
    luaL_error(L, "corrupt copied value (nested too deep)");
  switch (tag) {
    case T_NIL: lua_pushnil(L); break;
    case T_FALSE: lua_pushboolean(L, 0); break;
    case T_TRUE: lua_pushboolean(L, 1); break;
    case T_INT: {
      lua_Integer i;
      memcpy(&i, ux->p->data + ux->pos, sizeof(i));
      ux->pos += sizeof(i);
      lua_pushinteger(L, i);
      break;
    }
    case T_NUM: {
      lua_Number n;
      memcpy(&n, ux->p->data + ux->pos, sizeof(n));
      ux->pos += sizeof(n);
      lua_pushnumber(L, n);
      break;
    }
    case T_STR: {
      uint32_t len = getu32(ux);
      lua_pushlstring(L, (const char *)ux->p->data + ux->pos, len);
      ux->pos += len;
      break;
    }
    case T_TABLE: {
      uint32_t narr = getu32(ux), nhash = getu32(ux);
      int t;
      lua_createtable(L, (int)narr, (int)nhash);
      t = lua_gettop(L);
      remember(ux);
      ux->depth++;
      while (ux->p->data[ux->pos] != T_END) {
        unpackvalue(ux);
        unpackvalue(ux);
        lua_rawset(L, t);
      }
      ux->pos++;
      unpackvalue(ux);
      if (lua_istable(L, -1)) lua_setmetatable(L, t);
      else lua_pop(L, 1);
      ux->depth--;
      break;
    }
    case T_REF:
      lua_rawgeti(L, ux->objs, getu32(ux));
      break;
    case T_LFUNC:
      ux->depth++;
      unpackfunc(ux);
      ux->depth--;
      break;
    case T_NAMED: {
      uint32_t len = getu32(ux);
      pushnamed(ux, (const char *)ux->p->data + ux->pos, len);
      ux->pos += len;
      break;
    }
    case T_HANDLE: {
      handle *h = &ux->p->h[getu32(ux)];
      h->type->push(L, h->obj, h->aux);   /* takes over its ref */
      h->obj = NULL;
      break;
    }
    default:
      luaL_error(L, "corrupt copied value");
  }
}

/* Pushes the values of p and frees p; if it raises, the box frees p (own)
** or, closed, drops the refs left in it for the caller to free it. */
static int pushpack (lua_State *L, gr_pack *p, int envidx, int own) {
  unpackctx ux;
  copyctx *cc;
  box *b;
  int i, n = p->nvalues, top = lua_gettop(L), ctx, bidx;
  if (envidx) envidx = lua_absindex(L, envidx);
  if (!lua_checkstack(L, n + 8)) {
    if (own) gr_pack_free(p);
    luaL_error(L, "too many values to copy");
  }
  cc = getctx(L);
  ctx = lua_gettop(L);
  b = getbox(L, cc, ctx);
  bidx = lua_gettop(L);
  if (p->nhandles > 0) boxhold(L, b, bidx);
  if (own || p->nhandles > 0) {
    b->pack = p;
    b->ownpack = own;
  }
  ux.L = L;
  ux.p = p;
  ux.pos = 0;
  ux.nobj = 0;
  ux.depth = 0;
  ux.objs = p->hasrefs ? takememo(L, &objskey) : 0;
  if (envidx) lua_pushvalue(L, envidx);
  else lua_pushnil(L);
  ux.env = lua_gettop(L);
  for (i = 0; i < n; i++) unpackvalue(&ux);
  if (ux.objs) givememo(L, &objskey, ux.objs);
  b->pack = NULL;
  putbox(L, cc, ctx, b, bidx);
  /* Move the values down over the scratch slots. */
  lua_rotate(L, top + 1, n);
  lua_settop(L, top + n);
  gr_pack_free(p);
  return n;
}

int gr_pack_push (lua_State *L, gr_pack *p, int envidx) {
  return pushpack(L, p, envidx, 0);
}

/* Registers the table at idx as the _ENV of a parallel goroutine: a
** function whose _ENV it is gets the receiver's _ENV when it crosses. */
void gr_copy_markenv (lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  getctx(L);
  gr_state_weaktable(L, &envkey);
  lua_pushvalue(L, idx);
  lua_pushboolean(L, 1);
  lua_rawset(L, -3);
  lua_setiuservalue(L, -2, CTX_ENVS);
  lua_pop(L, 1);
}


/* --- values in flight ------------------------------------------------------------ */

/* Captures the value at idx: scalars inline; others anchored in L's
** registry, or packed when the value must be able to cross (packed).
** May raise: callers capture before they take a lock. */
void gr_value_capture (lua_State *L, int idx, int packed, gr_value *v) {
  switch (lua_type(L, idx)) {
    case LUA_TNIL: case LUA_TNONE:
      v->type = GR_VNIL;
      break;
    case LUA_TBOOLEAN:
      v->type = GR_VBOOL;
      v->u.b = lua_toboolean(L, idx);
      break;
    case LUA_TNUMBER:
      if (lua_isinteger(L, idx)) {
        v->type = GR_VINT;
        v->u.i = lua_tointeger(L, idx);
      }
      else {
        v->type = GR_VNUM;
        v->u.n = lua_tonumber(L, idx);
      }
      break;
    default:
      if (packed) {
        v->u.p = packvalues(L, idx, 1, "value", -1,
                            packed == GR_PACKTENTATIVE);
        v->type = GR_VPACK;
      }
      else {
        lua_pushvalue(L, idx);
        v->u.ref = luaL_ref(L, LUA_REGISTRYINDEX);
        v->type = GR_VREF;
      }
      break;
  }
}

/* Pushes v on L and leaves v empty. A GR_VREF must be pushed by the state
** that captured it. */
void gr_value_push (lua_State *L, gr_value *v) {
  switch (v->type) {
    case GR_VNIL: lua_pushnil(L); break;
    case GR_VBOOL: lua_pushboolean(L, v->u.b); break;
    case GR_VINT: lua_pushinteger(L, v->u.i); break;
    case GR_VNUM: lua_pushnumber(L, v->u.n); break;
    case GR_VREF:
      lua_rawgeti(L, LUA_REGISTRYINDEX, v->u.ref);
      luaL_unref(L, LUA_REGISTRYINDEX, v->u.ref);
      break;
    case GR_VPACK: {
      gr_pack *p = v->u.p;
      v->type = GR_VNIL;   /* p is pushpack's now, even if it raises */
      pushpack(L, p, 0, 1);
      break;
    }
  }
  v->type = GR_VNIL;
}

/* Drops v. L may be NULL while its state closes: its registry goes with
** it, so a GR_VREF needs no release. */
void gr_value_discard (lua_State *L, gr_value *v) {
  if (v->type == GR_VREF && L != NULL)
    luaL_unref(L, LUA_REGISTRYINDEX, v->u.ref);
  else if (v->type == GR_VPACK)
    gr_pack_free(v->u.p);
  v->type = GR_VNIL;
}

/* Turns a GR_VREF of L's state into a GR_VPACK, for a channel that starts
** to be shared. Raises (v unchanged) when the value cannot cross. */
static int share (lua_State *L, gr_value *v, const char *where,
                  int tentative) {
  gr_pack *p;
  if (v->type != GR_VREF) return 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, v->u.ref);
  p = packvalues(L, -1, 1, where, -1, tentative);
  lua_pop(L, 1);
  luaL_unref(L, LUA_REGISTRYINDEX, v->u.ref);
  v->type = GR_VPACK;
  v->u.p = p;
  return 0;
}

int gr_value_share (lua_State *L, gr_value *v, const char *where) {
  return share(L, v, where, 0);
}

int gr_value_share_tentative (lua_State *L, gr_value *v, const char *where) {
  return share(L, v, where, 1);
}

void gr_value_number (gr_value *v, lua_Number n) {
  v->type = GR_VNUM;
  v->u.n = n;
}
