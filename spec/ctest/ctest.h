/*
** ctest.h -- what the C tests of the embedding API share: CHECK, which
** prints the failed condition and exits 1, and a Lua state with the
** standard libraries and the runtime loaded (gr_open). A test prints
** what spec/embed_spec.lua compares, line by line.
*/
#ifndef CTEST_H
#define CTEST_H

#include <stdio.h>
#include <stdlib.h>

#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"

#include "goroutines.h"

#define CHECK(c)  do { if (!(c)) { \
    fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c); \
    exit(1); } } while (0)

/* A new state with the standard libraries and the runtime. */
static inline lua_State *ctest_newstate (void) {
  lua_State *L = luaL_newstate();
  CHECK(L != NULL);
  luaL_openlibs(L);
  CHECK(gr_open(L) == GR_OK);
  return L;
}

/* Runs a chunk of Lua in L; on error prints it and exits 1. */
static inline void ctest_run (lua_State *L, const char *src) {
  if (luaL_dostring(L, src) != LUA_OK) {
    fprintf(stderr, "lua error: %s\n", lua_tostring(L, -1));
    exit(1);
  }
}

#endif
