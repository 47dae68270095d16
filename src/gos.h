/*
** gos.h -- g.os: files and the file system on libuv's thread pool.
*/
#ifndef GR_GOS_H
#define GR_GOS_H

#include "gr.h"

/* Registers g.os and the file metatable in the module table at the top
** of L. */
void gr_os_open (lua_State *L);

#endif
