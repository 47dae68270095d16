/*
** copy.h -- values in flight, and the transfer of values between states.
**
** A gr_value is what a channel buffer slot or a parked sender holds
** between the send and the receive. While its channel lives in one state
** it is a plain Lua value (scalars inline, the rest anchored in that
** state's registry); once the channel's handle has reached a second state
** it is packed: a gr_pack, a state-neutral copy made by the transfer rules
** (SPEC: Transfer rules) and unpacked by whichever state receives it.
*/
#ifndef GR_COPY_H
#define GR_COPY_H

#include "gr.h"

typedef struct gr_pack gr_pack;

/* A kind of runtime object that crosses states by handle: channels, sync
** objects, contexts (I/O handles next). The metatable of its Lua handles
** holds the address of its gr_objtype (gr_objtype_set); the copier knows
** objects only through these functions. A pack holds one ref on each
** object it carries. */
typedef struct gr_objtype {
  const char *name;     /* the handles' metatable name, for errors */
  /* The object of the handle at idx with a new ref for a pack, and its
  ** aux (a direction, a kind) in *aux; NULL when the handle is finalized.
  ** May raise, before it takes the ref. On entry *aux is GR_TAKETENTATIVE
  ** when the pack may be dropped unsent or copied (a select's case that
  ** another case may beat, a context's value), else 0: a take whose
  ** export changes the handle for good (a move) must raise then. */
  void *(*take) (lua_State *L, int idx, int *aux);
  /* Pushes a handle of obj with aux in L, taking over the pack's ref;
  ** may raise (memory) before it takes it. */
  void (*push) (lua_State *L, void *obj, int aux);
  /* Drops the pack's ref on obj (L: the dropping state, or NULL). */
  void (*drop) (lua_State *L, void *obj);
  /* Called once the pack that holds obj is complete; or NULL. */
  void (*export) (lua_State *L, void *obj);
} gr_objtype;

#define GR_TAKETENTATIVE 1

/* Marks the metatable at index mt as that of the handles of type t. */
void gr_objtype_set (lua_State *L, int mt, const gr_objtype *t);

enum {
  GR_VNIL, GR_VBOOL, GR_VINT, GR_VNUM,
  GR_VREF,  /* any other value, anchored in the registry of its state */
  GR_VPACK  /* any other value, packed: may be pushed in any state */
};

typedef struct gr_value {
  int type;
  union {
    int b;
    lua_Integer i;
    lua_Number n;
    int ref;     /* GR_VREF: owned by this slot; released by push/discard */
    gr_pack *p;  /* GR_VPACK: owned by this slot; freed by push/discard */
  } u;
} gr_value;

/* Captures the value at idx into *v: scalars inline, others anchored in
** L's registry, or packed when packed is set (GR_PACKTENTATIVE: a pack
** that may be dropped unsent, see take). May raise. */
#define GR_PACKTENTATIVE 2
void gr_value_capture (lua_State *L, int idx, int packed, gr_value *v);
/* Pushes *v on L and leaves *v nil (a GR_VREF only in its own state). */
void gr_value_push (lua_State *L, gr_value *v);
/* Drops *v (L: its state, or NULL while that state closes). */
void gr_value_discard (lua_State *L, gr_value *v);
/* Turns a GR_VREF of L's state into a GR_VPACK; raises, *v unchanged,
** when the value cannot cross (where names it). Returns 0. */
int gr_value_share (lua_State *L, gr_value *v, const char *where);
/* As gr_value_share, with a tentative pack (GR_PACKTENTATIVE). */
int gr_value_share_tentative (lua_State *L, gr_value *v, const char *where);
/* Makes *v the number n. */
void gr_value_number (gr_value *v, lua_Number n);

static inline void gr_value_setnil (gr_value *v) { v->type = GR_VNIL; }

/* Packs the n values from index first; root names them in errors
** ("args" gives "args[1]", "args[2]"...; with n == 1 the root itself). */
gr_pack *gr_pack_values (lua_State *L, int first, int n, const char *root,
                         int rootbase);
/* As gr_pack_values, for a pack that may be dropped unsent or copied
** (see take): a handle that moves raises. */
gr_pack *gr_pack_tentative (lua_State *L, int first, int n,
                            const char *root, int rootbase);
/* Pushes the values of p (creating tables, functions and handles in L),
** binding _ENV of its functions to the table at envidx (0: the globals),
** and frees p. Returns how many values it pushed. If it raises (a module
** that this state cannot load, memory), p is left to the caller to free,
** its handles already dropped. */
int gr_pack_push (lua_State *L, gr_pack *p, int envidx);
/* A pack of one string, made without a Lua state; NULL without memory. */
gr_pack *gr_pack_string (const char *s, size_t len);
/* Strings of up to GR_PACK_SMALL bytes from a host travel in packs of one
** size, the small ones, which host channels keep for reuse instead of
** freeing them each time (a host thread would otherwise allocate what a
** goroutine's thread frees, once a message). */
#define GR_PACK_SMALL 120
/* A pack for one string of len bytes, to fill (gr_pack_fill); small when
** len fits. NULL without memory or over 4 GiB. */
gr_pack *gr_pack_newstring (size_t len);
/* Makes p the pack of the string s: p from gr_pack_newstring(n) with len
** <= n, or a small pack with len <= GR_PACK_SMALL. */
void gr_pack_fill (gr_pack *p, const char *s, size_t len);
/* Whether p is of the small size (it may be refilled). */
int gr_pack_issmall (const gr_pack *p);
/* The link of p in a list of spare packs (their owner's to use). */
gr_pack **gr_pack_next (gr_pack *p);
/* The bytes and length of p's value if it is one string alone, or NULL. */
const char *gr_pack_tostring (const gr_pack *p, size_t *len);
/* The bytes of p's values as packed (the trace reports it). */
size_t gr_pack_size (const gr_pack *p);
/* Frees p, dropping the refs of the handles it still owns. */
void gr_pack_free (gr_pack *p);
/* A copy of p with refs of its own on its handles, taken through
** handles pushed in L for the moment. May raise. */
gr_pack *gr_pack_dup (lua_State *L, const gr_pack *p);
/* Counts the handles of obj in p; with take, they become empty and the
** caller takes over their refs. */
int gr_pack_objrefs (gr_pack *p, const void *obj, int take);
/* Marks the table at idx as a parallel goroutine's _ENV (functions bound
** to it get the receiver's when they cross). */
void gr_copy_markenv (lua_State *L, int idx);

#endif
