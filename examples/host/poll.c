/*
** poll.c -- a host with its own poll loop (a server, an editor): it
** polls its own fds and the runtime's (gr_backend_fd) with the timeout
** that gr_backend_timeout gives, and calls gr_run(L, GR_RUN_NOWAIT) when
** there is work. Here the host's fd is a pipe that another thread writes
** lines to; the host hands each line to a goroutine over a host channel,
** and prints what comes back.
**
**   make && build/examples/poll
*/
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "lua.h"
#include "lauxlib.h"
#include "lualib.h"

#include "goroutines.h"

static const char script[] =
  "local g = require 'goroutines'\n"
  "local lines, replies = ...\n"
  /* each line is handled by a goroutine of its own, which answers after
  ** a timer (the poll loop wakes for it) */
  "g.go(function()\n"
  "  for line in lines:range() do\n"
  "    g.go(function()\n"
  "      g.time.sleep(0.01)\n"
  "      replies:send(('%d bytes: %s'):format(#line, line:upper()))\n"
  "    end)\n"
  "  end\n"
  "  g.time.sleep(0.05)\n"   /* the replies still on their way */
  "  replies:close()\n"
  "end)\n";

static int pipefd[2];

/* Another thread: the host's input, a line at a time. */
static void writer (void *arg) {
  static const char *input[] = { "hello", "poll loop", "bye" };
  int i;
  (void)arg;
  for (i = 0; i < 3; i++) {
    char buf[64];
    int n = snprintf(buf, sizeof(buf), "%s\n", input[i]);
    if (write(pipefd[1], buf, (size_t)n) != n) return;
    uv_sleep(20);
  }
  close(pipefd[1]);
}

int main (void) {
  lua_State *L = luaL_newstate();
  gr_chan *lines = gr_chan_new(16), *replies = gr_chan_new(16);
  uv_thread_t t;
  int open = 1, nreplies = 0;
  luaL_openlibs(L);
  if (gr_open(L) != GR_OK || luaL_loadstring(L, script) != LUA_OK) {
    fprintf(stderr, "poll: %s\n", lua_tostring(L, -1));
    return 1;
  }
  gr_chan_push(L, lines);
  gr_chan_push(L, replies);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK || pipe(pipefd) != 0 ||
      uv_thread_create(&t, writer, NULL) != 0) {
    fprintf(stderr, "poll: cannot start\n");
    return 1;
  }
  for (;;) {
    struct pollfd fds[2];
    gr_hostval v;
    int r;
    if (gr_run(L, GR_RUN_NOWAIT) != GR_OK) {
      fprintf(stderr, "poll: %s\n", lua_tostring(L, -1));
      return 1;
    }
    while ((r = gr_chan_recv(replies, &v, 0)) == GR_OK) {
      printf("reply: %.*s\n", (int)v.u.s.len, v.u.s.p);
      gr_hostval_free(&v);
      nreplies++;
    }
    if (r == GR_CLOSED) break;
    fds[0].fd = pipefd[0];
    fds[0].events = open ? POLLIN : 0;
    fds[1].fd = gr_backend_fd(L);
    fds[1].events = POLLIN;
    if (poll(fds, 2, gr_backend_timeout(L)) < 0) return 1;
    if (fds[0].revents) {
      char buf[256];
      ssize_t n = read(pipefd[0], buf, sizeof(buf) - 1);
      char *line, *save;
      if (n <= 0) {   /* the writer is done: so is the input */
        open = 0;
        gr_chan_close(lines);
        continue;
      }
      buf[n] = '\0';
      for (line = strtok_r(buf, "\n", &save); line;
           line = strtok_r(NULL, "\n", &save)) {
        v.type = GR_TSTRING;
        v.u.s.p = line;
        v.u.s.len = strlen(line);
        /* Never block on a channel that only this thread's goroutines
        ** drain: while its buffer is full, let them run. */
        while (gr_chan_send(lines, &v, 0) == GR_TIMEOUT)
          gr_run(L, GR_RUN_NOWAIT);
      }
    }
  }
  printf("replies: %d\n", nreplies);
  uv_thread_join(&t);
  close(pipefd[0]);
  lua_close(L);
  gr_chan_release(lines);
  gr_chan_release(replies);
  return 0;
}
