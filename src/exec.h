/*
** exec.h -- g.exec: child processes after Go's os/exec, on libuv's
** uv_spawn in the calling state's loop (pipes are stream.c's handles).
*/
#ifndef GR_EXEC_H
#define GR_EXEC_H

#include "gr.h"

/* Registers g.exec and the metatables of cmds and pipes in the module
** table at the top of L. */
void gr_exec_open (lua_State *L);

#endif
