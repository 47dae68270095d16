/*
** stuck.c -- lua_close of an embedded state whose parallel goroutine is
** inside a long C call (dofile of a fifo that nobody writes yet: fopen
** waits for a writer): it returns in bounded time, says on stderr that it
** leaves the worker's thread behind, and the process goes on. When the
** call returns, the goroutine's error (a syntax error of what the fifo
** held) is printed, not handed to the freed host, and the thread ends.
** argv[1] is the fifo's path (removed at the end). The bound scales
** with SPEC_TIME_SCALE, as the specs' do (valgrind).
*/
#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "ctest.h"

static int ntasks (void) {
  DIR *d = opendir("/proc/self/task");
  struct dirent *e;
  int n = 0;
  CHECK(d != NULL);
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n;
}

int main (int argc, char **argv) {
  lua_State *L;
  uint64_t t0;
  const char *scale = getenv("SPEC_TIME_SCALE");
  double bound = 3e9 * (scale ? atof(scale) : 1);
  int fd, before, after;
  const char *text = "return (((\n";
  CHECK(argc == 2);
  unlink(argv[1]);
  CHECK(mkfifo(argv[1], 0600) == 0);
  L = ctest_newstate();
  lua_pushstring(L, argv[1]);
  lua_setglobal(L, "fifo");
  ctest_run(L,
    "local g = require 'goroutines'\n"
    "local ch = g.chan()\n"
    "g.parallel(function(c, path)\n"
    "  c:send(true)\n"
    "  dofile(path)\n"
    "end, ch, fifo)\n"
    "ch:recv()\n"
    "g.time.sleep(0.2)\n");   /* it is inside fopen by now */
  t0 = uv_hrtime();
  lua_close(L);
  printf("closed within 3 s: %s\n",
         (double)(uv_hrtime() - t0) < bound ? "yes" : "no");
  fflush(stdout);
  before = ntasks();
  fd = open(argv[1], O_WRONLY);   /* the worker's fopen returns */
  CHECK(fd >= 0);
  CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
  close(fd);
  t0 = uv_hrtime();
  while ((after = ntasks()) >= before && uv_hrtime() - t0 < 10000000000ULL)
    uv_sleep(10);
  printf("its thread ended: %s\n", after == before - 1 ? "yes" : "no");
  unlink(argv[1]);
  return 0;
}
