/*
** sigquit.c -- gr_set_sigquit(0) before gr_open leaves SIGQUIT as the host
** had it; by default the runtime takes it over (argv[1]: "off" or "on").
*/
#include <signal.h>
#include <string.h>

#include "ctest.h"

int main (int argc, char **argv) {
  struct sigaction sa;
  lua_State *L;
  CHECK(argc == 2);
  signal(SIGQUIT, SIG_DFL);
  if (strcmp(argv[1], "off") == 0) gr_set_sigquit(0);
  L = ctest_newstate();
  CHECK(sigaction(SIGQUIT, NULL, &sa) == 0);
  printf("%s\n", sa.sa_handler == SIG_DFL ? "default" : "taken");
  lua_close(L);
  return 0;
}
