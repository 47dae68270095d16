/*
** oomhost.c -- a Lua host whose allocations fail on purpose, for `make
** oom`. Usage: oomhost script.lua. With OOM_FAILAT=N in the environment,
** the Nth allocation of the run fails, and so does the next one (Lua
** retries a failed allocation once, after an emergency collection); the
** later ones succeed. That counts the allocations of the host's state,
** of the runtime (spec/oomshim.h routes them here) and of the worker
** states alike, across threads.
** At exit it prints "oom: A allocations" to stderr, so that a run with
** OOM_FAILAT unset tells how many there are to sweep over. A run that
** ends, with the script's success or a Lua error, is what the sweep
** wants; a crash or a hang is a defect.
*/
#undef _FORTIFY_SOURCE
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"

#define OOM_API __attribute__((visibility("default")))

static atomic_long count;    /* allocations so far */
static long failat;          /* the one to fail, 0 for none */

/* Whether this allocation is one of the two to fail. */
static int fails (void) {
  long n = atomic_fetch_add(&count, 1) + 1;
  return failat > 0 && (n == failat || n == failat + 1);
}

OOM_API void *gr_oom_malloc (size_t n);
OOM_API void *gr_oom_calloc (size_t n, size_t size);
OOM_API void *gr_oom_realloc (void *p, size_t n);
OOM_API char *gr_oom_strdup (const char *s);
OOM_API void *gr_oom_lalloc (void *ud, void *p, size_t osize, size_t nsize);

void *gr_oom_malloc (size_t n) {
  return fails() ? NULL : malloc(n);
}

void *gr_oom_calloc (size_t n, size_t size) {
  return fails() ? NULL : calloc(n, size);
}

void *gr_oom_realloc (void *p, size_t n) {
  return fails() ? NULL : realloc(p, n);
}

char *gr_oom_strdup (const char *s) {
  return fails() ? NULL : strdup(s);
}

/* Lua's allocator contract: freeing never fails; a failed growth returns
** NULL and leaves the block as it was. */
void *gr_oom_lalloc (void *ud, void *p, size_t osize, size_t nsize) {
  (void)ud; (void)osize;
  if (nsize == 0) {
    free(p);
    return NULL;
  }
  return fails() ? NULL : realloc(p, nsize);
}

static void report (void) {
  fprintf(stderr, "oom: %ld allocations\n", (long)atomic_load(&count));
}

/* Everything that may raise runs protected: the libraries, the script. */
static int pmain (lua_State *L) {
  const char *script = (const char *)lua_touserdata(L, 1);
  luaL_openlibs(L);
  if (luaL_loadfile(L, script) != LUA_OK) return lua_error(L);
  lua_call(L, 0, 0);
  return 0;
}

int main (int argc, char **argv) {
  const char *at = getenv("OOM_FAILAT");
  lua_State *L;
  int status;
  if (argc < 2) {
    fprintf(stderr, "usage: %s script\n", argv[0]);
    return 2;
  }
  failat = at ? atol(at) : 0;
  atexit(report);
  L = lua_newstate(gr_oom_lalloc, NULL);
  if (L == NULL) {
    fprintf(stderr, "oom: cannot create the state\n");
    return 0;
  }
  lua_pushcfunction(L, pmain);
  lua_pushlightuserdata(L, argv[1]);
  status = lua_pcall(L, 1, 0, 0);
  if (status != LUA_OK)
    fprintf(stderr, "oom: error: %s\n", lua_tostring(L, -1) ?
            lua_tostring(L, -1) : "(not a string)");
  else
    fprintf(stderr, "oom: ok\n");
  lua_close(L);
  return 0;
}
