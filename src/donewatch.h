/*
** donewatch.h -- a watch, from C, of a channel's close: a context's done
** channel bounding something that is not a goroutine (a dial, a child
** process). The watch waits in the channel's receive queue as a goroutine
** would; the close wakes it from any thread, and the watcher's function
** runs on its own state's thread, from that state's loop.
*/
#ifndef GR_DONEWATCH_H
#define GR_DONEWATCH_H

#include "chan.h"

typedef void (*gr_donefn) (void *arg);

typedef struct gr_donewatch gr_donewatch;

/* A watch, not started yet, so that a caller can take all it needs before
** the point after which nothing may fail: NULL without memory. */
gr_donewatch *gr_donewatch_new (void);

/* Starts dw watching c (it takes a ref of c) on S's loop: fn(arg) runs on
** S's thread once c is closed, unless gr_donewatch_stop came first.
** Returns 0 when it watches; 1 when c is closed already (fn will not run:
** the caller acts at once; dw still must be stopped); -1 when it cannot
** (no handle; dw is freed, c is not kept). Owner thread. */
int gr_donewatch_start (gr_donewatch *dw, gr_state *S, gr_chan *c,
                        gr_donefn fn, void *arg);

/* Stops dw: fn does not run after this returns; dw is freed once libuv
** has closed its handle. Owner thread. */
void gr_donewatch_stop (gr_donewatch *dw);

#endif
