/*
** feed.c -- host threads feed goroutines: four threads of the host send
** work items on a host channel with gr_chan_send, without any Lua state;
** two g.parallel goroutines, each on a worker thread of its own, take
** them, and a goroutine of the host state sums up. The host's main thread
** only runs its state until every goroutine is done (GR_RUN_DEFAULT).
**
**   make && build/examples/feed
*/
#include <stdio.h>
#include <uv.h>

#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"

#include "goroutines.h"

#define NPRODUCERS 4
#define NITEMS 10000

static const char script[] =
  "local g = require 'goroutines'\n"
  "local work, total = ...\n"
  "g.gomaxprocs(2)\n"
  "local results = g.chan()\n"
  "for w = 1, 2 do\n"
  "  g.parallel(function()\n"
  "    local n, bytes = 0, 0\n"
  "    for item in work:range() do n, bytes = n + 1, bytes + #item end\n"
  "    results:send({ n = n, bytes = bytes })\n"
  "  end)\n"
  "end\n"
  "g.go(function()\n"
  "  local n, bytes = 0, 0\n"
  "  for w = 1, 2 do\n"
  "    local r = results:recv()\n"
  "    n, bytes = n + r.n, bytes + r.bytes\n"
  "  end\n"
  "  total:send(('%d items, %d bytes'):format(n, bytes))\n"
  "end)\n";

static gr_chan *work;

static void producer (void *arg) {
  int i, id = (int)(intptr_t)arg;
  for (i = 0; i < NITEMS; i++) {
    char buf[32];
    gr_hostval v;
    v.type = GR_TSTRING;
    v.u.s.p = buf;
    v.u.s.len = (size_t)snprintf(buf, sizeof(buf), "item %d.%d", id, i);
    if (gr_chan_send(work, &v, -1) != GR_OK) return;   /* blocks: fine */
  }
}

int main (void) {
  lua_State *L = luaL_newstate();
  gr_chan *total = gr_chan_new(1);
  uv_thread_t t[NPRODUCERS];
  gr_hostval v;
  int i;
  work = gr_chan_new(1024);
  luaL_openlibs(L);
  if (gr_open(L) != GR_OK || luaL_loadstring(L, script) != LUA_OK ||
      gr_chan_push(L, work) != GR_OK || gr_chan_push(L, total) != GR_OK ||
      lua_pcall(L, 2, 0, 0) != LUA_OK) {
    fprintf(stderr, "feed: %s\n", lua_tostring(L, -1));
    return 1;
  }
  for (i = 0; i < NPRODUCERS; i++)
    if (uv_thread_create(&t[i], producer, (void *)(intptr_t)i) != 0) return 1;
  /* The parallel goroutines take the items on their worker threads
  ** meanwhile: this thread only closes work once every item is sent, and
  ** then runs its state until the sum is made. */
  for (i = 0; i < NPRODUCERS; i++) uv_thread_join(&t[i]);
  gr_chan_close(work);
  if (gr_run(L, GR_RUN_DEFAULT) != GR_OK) {
    fprintf(stderr, "feed: %s\n", lua_tostring(L, -1));
    return 1;
  }
  if (gr_chan_recv(total, &v, 0) == GR_OK) {
    printf("%.*s\n", (int)v.u.s.len, v.u.s.p);
    gr_hostval_free(&v);
  }
  lua_close(L);
  gr_chan_release(work);
  gr_chan_release(total);
  return 0;
}
