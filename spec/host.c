/*
** host.c -- a minimal stand-alone Lua interpreter for the sanitizer runs:
** `make tsan` links it with -fsanitize=thread, so that the runtime is in
** the program itself rather than preloaded into every child process (a
** shell with libtsan preloaded crashes). Usage: host script [args...],
** with `arg` set as lua.c sets it.
*/
#undef _FORTIFY_SOURCE   /* the longjmp below must not be __longjmp_chk */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>

#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"

/* Debian's liblua5.4 is built with _FORTIFY_SOURCE, so every Lua error
** and every yield from a C function ends in glibc's __longjmp_chk, which
** ThreadSanitizer does not intercept (it intercepts longjmp). It would
** then never unwind its shadow stack: the frames of instrumented C
** functions that a jump skips stay on it for good, every malloc and lock
** records the whole stack, the run slows down and grows to gigabytes, and
** past 64Ki frames ThreadSanitizer crashes. This definition, in the
** executable, takes the place of glibc's for liblua and jumps through
** longjmp, which ThreadSanitizer sees. */
void __longjmp_chk (struct __jmp_buf_tag env[1], int val);
void __longjmp_chk (struct __jmp_buf_tag env[1], int val) {
  longjmp(env, val);
}

static int traceback (lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) msg = lua_pushfstring(L, "(error object is a %s value)",
                                         luaL_typename(L, 1));
  luaL_traceback(L, L, msg, 1);
  return 1;
}

int main (int argc, char **argv) {
  lua_State *L;
  int i, status;
  if (argc < 2) {
    fprintf(stderr, "usage: %s script [args]\n", argv[0]);
    return EXIT_FAILURE;
  }
  L = luaL_newstate();
  if (L == NULL) return EXIT_FAILURE;
  luaL_openlibs(L);
  lua_createtable(L, argc, 2);
  for (i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i - 1);
  }
  lua_setglobal(L, "arg");
  lua_pushcfunction(L, traceback);
  status = luaL_loadfile(L, argv[1]);
  if (status == LUA_OK) {
    for (i = 2; i < argc; i++) lua_pushstring(L, argv[i]);
    status = lua_pcall(L, argc - 2, 0, 1);
  }
  if (status != LUA_OK) {
    fprintf(stderr, "%s: %s\n", argv[0], lua_tostring(L, -1));
    fflush(stderr);
  }
  lua_close(L);
  return status == LUA_OK ? EXIT_SUCCESS : EXIT_FAILURE;
}
