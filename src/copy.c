/*
** copy.c -- capturing a Lua value into a gr_value and pushing it back.
** Invariant: a GR_VREF slot owns exactly one registry reference, released
**   by gr_value_push (which hands the value to the receiver) or by
**   gr_value_discard; after either the slot is GR_VNIL.
** Capture may raise (luaL_ref allocates), so callers capture before they
**   take any lock; push and discard never raise.
*/
#include "copy.h"

/* Requires: idx is a valid index of L. May raise a memory error. */
void gr_value_capture (lua_State *L, int idx, gr_value *v) {
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
      lua_pushvalue(L, idx);
      v->u.ref = luaL_ref(L, LUA_REGISTRYINDEX);
      v->type = GR_VREF;
      break;
  }
}

/* Pushes v on L and leaves v empty. L must belong to the state that
** captured v. Never raises beyond what lua_checkstack allows: callers
** have room for the few values they push. */
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
  }
  v->type = GR_VNIL;
}

/* Drops v. L may be NULL while its state is being closed: the registry
** goes away with it, so the reference needs no release. */
void gr_value_discard (lua_State *L, gr_value *v) {
  if (v->type == GR_VREF && L != NULL)
    luaL_unref(L, LUA_REGISTRYINDEX, v->u.ref);
  v->type = GR_VNIL;
}

void gr_value_number (gr_value *v, lua_Number n) {
  v->type = GR_VNUM;
  v->u.n = n;
}
