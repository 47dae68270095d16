/*
** copy.h -- values in flight: what a channel buffer slot or a parked
** sender holds between the send and the receive.
*/
#ifndef GR_COPY_H
#define GR_COPY_H

#include "gr.h"

enum {
  GR_VNIL, GR_VBOOL, GR_VINT, GR_VNUM,
  GR_VREF   /* any other value, anchored in the registry of its state */
};

/* A value in flight. Scalars are held inline; other values stay Lua
** values anchored by a registry reference of the state that sent them,
** and are only ever pushed by that same state. */
typedef struct gr_value {
  int type;
  union {
    int b;
    lua_Integer i;
    lua_Number n;
    int ref;     /* GR_VREF: owned by this slot; one unref site (push or
                    discard) */
  } u;
} gr_value;

void gr_value_capture (lua_State *L, int idx, gr_value *v);
void gr_value_push (lua_State *L, gr_value *v);
void gr_value_discard (lua_State *L, gr_value *v);
void gr_value_number (gr_value *v, lua_Number n);

static inline void gr_value_setnil (gr_value *v) { v->type = GR_VNIL; }

#endif
