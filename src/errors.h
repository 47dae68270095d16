/*
** errors.h -- uncaught goroutine errors and the deadlock report.
*/
#ifndef GR_ERRORS_H
#define GR_ERRORS_H

#include "gr.h"

/* An error message kept as a C string, so that it can cross states. */
typedef struct gr_errmsg {
  struct gr_errmsg *next;
  size_t len;
  char msg[];
} gr_errmsg;

void gr_errors_add (lua_State *L, gr_state *S, gr_g *g, int status);
void gr_errors_addmsg (gr_state *S, lua_Integer id, const char *msg,
                       const char *traceback);
int gr_errors_raise (lua_State *L, gr_state *S);
int gr_errors_deadlock (lua_State *L, gr_state *S);
int gr_errors_report (gr_state *S);

#endif
