/*
** longjmp_chk.c -- linked into the C hosts of the embedding tests and
** examples in the ThreadSanitizer build only (make tsan): Debian's
** liblua5.4 ends every error and yield in glibc's __longjmp_chk, which
** ThreadSanitizer does not intercept; this definition takes its place and
** jumps through longjmp, which it does (spec/host.c explains at length).
*/
#undef _FORTIFY_SOURCE
#include <setjmp.h>

void __longjmp_chk (struct __jmp_buf_tag env[1], int val);
void __longjmp_chk (struct __jmp_buf_tag env[1], int val) {
  longjmp(env, val);
}
