/*
** exec.c -- g.exec: child processes after Go's os/exec (command,
** command_context, look_path; a cmd's start, wait, kill, pid and pipes),
** on libuv's uv_spawn in the loop of the calling state. output,
** combined_output and run are written in init.lua over these.
**
** A cmd is a stream.c handle of no kind: wait() parks its goroutine on
** the handle's read queue, so the goroutine counts in S->iowait (the
** child's exit comes from outside: never a deadlock) and only it waits.
** Its settings (path, args, dir, env, its context, its pipes' handles)
** are a Lua table, the cmd's entry in a weak-keyed table of the registry.
** A pipe is a stream of kind GR_SPIPE over the parent's end of a pipe(2);
** the child's end is the cmd's until start hands it to the child.
**
** Ownership:
**   A gr_cmd is malloc'd, owned by its stream (st->closearg), freed when
**     the stream closes (its __gc). It never outlives the stream.
**   A gr_proc is malloc'd at each start, owned by its libuv handle: from
**     uv_spawn to the handle's close callback. While the child runs, the
**     proc is in its state's list (procs.running) and libuv reaps the
**     child: the proc outlives a cmd that is collected meanwhile (Go lets
**     the process run on), and the exit callback closes the handle.
**   The state's record (a userdata in the registry, made before the first
**     cmd) is finalized before the state's runtime: its __gc kills
**     (SIGKILL) and reaps every child still running, so that no child is
**     left unreaped once the module may be unloaded (Go would leave it
**     running: see the README).
**   A context's watch (command_context, a gr_donewatch of the done
**     channel) belongs to its proc; the exit, or the record's __gc, stops
**     it.
** Lock order: none (owner thread only; donewatch.c takes a done
**   channel's lock alone).
*/
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "chan.h"
#include "donewatch.h"
#include "copy.h"
#include "exec.h"
#include "state.h"
#include "stream.h"

#define CMDMT "goroutines.cmd"
#define PIPEMT "goroutines.pipe"
#define PROCSMT "goroutines.procs"
#define CTXMT "goroutines.context"

typedef struct gr_proc gr_proc;
typedef struct procs procs;

/* The state of a command, kept with its stream. Owner thread only. */
typedef struct gr_cmd {
  gr_stream *st;        /* its handle: wait() parks on st->q[GR_SREAD] */
  gr_proc *proc;        /* the child while it runs, or NULL */
  int childfd[3];       /* the child's ends of its pipes, or -1; start
                           closes them (the child has its copies) */
  int started;          /* a start succeeded: pid is set */
  int exited;           /* the child exited: status, signal are set */
  int waited;           /* wait() has returned the outcome */
  int pid;
  int signal;           /* the signal that ended it, or 0 */
  int64_t status;       /* its exit status */
} gr_cmd;

/* A child process. */
struct gr_proc {
  uv_process_t h;       /* h.data: this */
  gr_cmd *cmd;          /* its cmd, or NULL once the cmd was collected */
  procs *reg;           /* the state's record */
  gr_proc *next, *prev; /* in reg->running, until it exits */
  gr_donewatch *cw;     /* its context's watch, or NULL */
};

/* The children of a state that run (a userdata in the registry). */
struct procs {
  gr_proc *running;
};

static const char procskey = 0;
static const char fieldskey = 0;   /* weak table: cmd -> its settings */

static const char *const pipenames[] = { "Stdin", "Stdout", "Stderr" };


/* --- signals ----------------------------------------------------------- */

/* Names that kill accepts, and what Go's ProcessState prints for them. */
static const struct { const char *name; int num; const char *text; }
signals[] = {
  {"SIGHUP", SIGHUP, "hangup"}, {"SIGINT", SIGINT, "interrupt"},
  {"SIGQUIT", SIGQUIT, "quit"}, {"SIGILL", SIGILL, "illegal instruction"},
  {"SIGTRAP", SIGTRAP, "trace/breakpoint trap"},
  {"SIGABRT", SIGABRT, "aborted"}, {"SIGBUS", SIGBUS, "bus error"},
  {"SIGFPE", SIGFPE, "floating point exception"},
  {"SIGKILL", SIGKILL, "killed"},
  {"SIGUSR1", SIGUSR1, "user defined signal 1"},
  {"SIGSEGV", SIGSEGV, "segmentation fault"},
  {"SIGUSR2", SIGUSR2, "user defined signal 2"},
  {"SIGPIPE", SIGPIPE, "broken pipe"}, {"SIGALRM", SIGALRM, "alarm clock"},
  {"SIGTERM", SIGTERM, "terminated"}, {"SIGCHLD", SIGCHLD, "child exited"},
  {"SIGCONT", SIGCONT, "continued"},
  {"SIGSTOP", SIGSTOP, "stopped (signal)"}, {"SIGTSTP", SIGTSTP, "stopped"},
  {"SIGTTIN", SIGTTIN, "stopped (tty input)"},
  {"SIGTTOU", SIGTTOU, "stopped (tty output)"},
  {"SIGURG", SIGURG, "urgent I/O condition"},
  {"SIGXCPU", SIGXCPU, "CPU time limit exceeded"},
  {"SIGXFSZ", SIGXFSZ, "file size limit exceeded"},
  {"SIGVTALRM", SIGVTALRM, "virtual timer expired"},
  {"SIGPROF", SIGPROF, "profiling timer expired"},
  {"SIGWINCH", SIGWINCH, "window changed"}, {"SIGIO", SIGIO, "I/O possible"},
  {"SIGSYS", SIGSYS, "bad system call"},
  {NULL, 0, NULL}
};

/* --- the state's children ----------------------------------------------- */

static void onprocclosed (uv_handle_t *h) {
  gr_proc *p = (gr_proc *)h->data;
  free(p);
}

/* Takes p's context watch back (its exit, or the state's close). */
static void unwatch (gr_proc *p) {
  gr_donewatch *cw = p->cw;
  p->cw = NULL;
  gr_donewatch_stop(cw);
}

/* Takes p from the list of running children. */
static void unlinkproc (gr_proc *p) {
  if (p->prev) p->prev->next = p->next;
  else p->reg->running = p->next;
  if (p->next) p->next->prev = p->prev;
  p->next = p->prev = NULL;
}

/* The child exited and libuv reaped it: its cmd (if any) learns the
** outcome and its waiters wake. */
static void onexit (uv_process_t *h, int64_t status, int sig) {
  gr_proc *p = (gr_proc *)h->data;
  gr_cmd *cmd = p->cmd;
  unlinkproc(p);
  if (p->cw) unwatch(p);
  if (cmd) {
    cmd->proc = NULL;
    cmd->exited = 1;
    cmd->status = status;
    cmd->signal = sig;
    gr_stream_wakeall(cmd->st, GR_SREAD);
  }
  uv_close((uv_handle_t *)h, onprocclosed);
}

/* __gc of the state's record, when the state closes: every child still
** running is killed and reaped here, its handle closed (the runtime's
** close then runs the close callbacks). */
static int lprocs_gc (lua_State *L) {
  procs *reg = (procs *)lua_touserdata(L, 1);
  gr_proc *p;
  while ((p = reg->running) != NULL) {
    int pid = p->h.pid;
    unlinkproc(p);
    if (p->cw) unwatch(p);
    if (p->cmd) p->cmd->proc = NULL;
    uv_close((uv_handle_t *)&p->h, onprocclosed);   /* libuv reaps no
                                                        more: we do */
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
  }
  return 0;
}

/* The record of L's state, made on first use (before any cmd, so that
** lua_close finalizes it after every cmd). */
static procs *getprocs (lua_State *L) {
  procs *reg;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &procskey) == LUA_TUSERDATA) {
    reg = (procs *)lua_touserdata(L, -1);
    lua_pop(L, 1);
    return reg;
  }
  lua_pop(L, 1);
  reg = (procs *)lua_newuserdatauv(L, sizeof(*reg), 0);
  reg->running = NULL;
  luaL_setmetatable(L, PROCSMT);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &procskey);
  return reg;
}


/* --- a context's watch ------------------------------------------------- */

/* The context is done: the child is killed, as Go's CommandContext. */
static void killchild (void *arg) {
  gr_proc *p = (gr_proc *)arg;
  uv_process_kill(&p->h, SIGKILL);
}

/* Pushes the result of ctx:method() for the context at idx. */
static void callctx (lua_State *L, int idx, const char *method) {
  idx = lua_absindex(L, idx);
  lua_getfield(L, idx, method);
  lua_pushvalue(L, idx);
  lua_call(L, 1, 1);
}

/* Makes the done channel c (of p's context) bound p, which runs; kills
** p at once if c is closed already. Raises nothing. */
static void watch (gr_state *S, gr_proc *p, gr_chan *c, gr_donewatch *cw) {
  int r = gr_donewatch_start(cw, S, c, killchild, p);
  if (r >= 0) p->cw = cw;
  if (r != 0) uv_process_kill(&p->h, SIGKILL);   /* done, or unbounded */
}


/* --- look_path --------------------------------------------------------- */

/* Go's findExecutable: 0, or the errno that rules path out. */
static int executable (const char *path) {
  struct stat sb;
  if (stat(path, &sb) != 0) return errno;
  if (S_ISDIR(sb.st_mode)) return EISDIR;
  if (access(path, X_OK) != 0) return errno;
  return 0;
}

/* Pushes prefix, the len bytes of s (a NUL byte included, as Go prints
** it) and suffix. */
static void pushquoted (lua_State *L, const char *prefix, const char *s,
                        size_t len, const char *suffix) {
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  luaL_addstring(&b, prefix);
  luaL_addlstring(&b, s, len);
  luaL_addstring(&b, suffix);
  luaL_pushresult(&b);
}

/* Pushes the path of the executable name (of len bytes) as Go's
** exec.LookPath finds it, and returns 1; or pushes Go's message and
** returns 0. A name with a NUL byte names no file (Go's stat fails). */
static int lookpath (lua_State *L, const char *name, size_t namelen) {
  const char *path = getenv("PATH"), *p;
  luaL_Buffer b;
  int err;
  if (strlen(name) != namelen) {
    pushquoted(L, "exec: \"", name, namelen,
               "\": executable file not found in $PATH");
    return 0;
  }
  if (strchr(name, '/')) {
    if ((err = executable(name)) == 0) {
      lua_pushstring(L, name);
      return 1;
    }
    lua_pushfstring(L, "exec: \"%s\": %s", name, gr_stream_strerror(-err));
    return 0;
  }
  for (p = path ? path : ""; *name != '\0'; p++) {
    const char *end = strchr(p, ':');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    luaL_buffinit(L, &b);
    if (len == 0) luaL_addchar(&b, '.');
    else luaL_addlstring(&b, p, len);
    luaL_addchar(&b, '/');
    luaL_addstring(&b, name);
    luaL_pushresult(&b);
    if (executable(lua_tostring(L, -1)) == 0) {
      if (len == 0 || *p != '/') {
        lua_pop(L, 1);
        lua_pushfstring(L, "exec: \"%s\": cannot run executable found "
                        "relative to current directory", name);
        return 0;
      }
      return 1;
    }
    lua_pop(L, 1);
    if (end == NULL) break;
    p = end;
  }
  lua_pushfstring(L, "exec: \"%s\": executable file not found in $PATH",
                  name);
  return 0;
}

/* g.exec.look_path(name) -> path, or nil and Go's message */
static int llookpath (lua_State *L) {
  size_t len;
  const char *name = luaL_checklstring(L, 1, &len);
  if (lookpath(L, name, len)) return 1;
  lua_pushnil(L);
  lua_insert(L, -2);
  return 2;
}


/* --- cmds -------------------------------------------------------------- */

static void closechildfds (gr_cmd *cmd) {
  int i;
  for (i = 0; i < 3; i++) {
    if (cmd->childfd[i] >= 0) close(cmd->childfd[i]);
    cmd->childfd[i] = -1;
  }
}

/* The stream's onclose (its __gc): the cmd lets go of its child, which
** runs on if it runs (reaped by libuv, or killed at the state's close). */
static void cmdclose (gr_stream *st) {
  gr_cmd *cmd = (gr_cmd *)st->closearg;
  st->closearg = NULL;
  st->onclose = NULL;
  if (cmd->proc) cmd->proc->cmd = NULL;
  closechildfds(cmd);
  free(cmd);
}

/* The cmd at index 1. */
static gr_cmd *checkcmd (lua_State *L) {
  gr_stream *st = gr_stream_check(L, 1, CMDMT);
  gr_getstate(L);   /* raises once the runtime is closed */
  return (gr_cmd *)st->closearg;   /* set until __gc */
}

/* Pushes the settings of the cmd at idx. */
static void pushfields (lua_State *L, int idx) {
  idx = lua_absindex(L, idx);
  gr_state_weaktable(L, &fieldskey);
  lua_pushvalue(L, idx);
  lua_rawget(L, -2);
  lua_remove(L, -2);
}

/* Pushes nil and msg; returns 2. */
static int fail (lua_State *L, const char *msg) {
  lua_pushnil(L);
  lua_pushstring(L, msg);
  return 2;
}

/* A new cmd of name and the arguments from index first, with the
** context at ctx (0: none), pushed. */
static int newcmd (lua_State *L, int first, int ctx) {
  gr_state *S = gr_getstate(L);
  int top = lua_gettop(L), i, fields;
  size_t len;
  const char *name = luaL_checklstring(L, first, &len);
  gr_stream *st;
  gr_cmd *cmd;
  for (i = first + 1; i <= top; i++) luaL_checkstring(L, i);
  getprocs(L);
  lua_createtable(L, 0, 5);
  fields = lua_gettop(L);
  lua_createtable(L, top - first + 1, 0);
  for (i = first; i <= top; i++) {
    lua_pushvalue(L, i);
    lua_rawseti(L, -2, i - first + 1);
  }
  lua_setfield(L, fields, "args");
  /* Go's Command looks a bare name up in $PATH, and start fails with the
  ** lookup's error (unless path is set meanwhile). */
  if (memchr(name, '/', len) == NULL) {
    if (lookpath(L, name, len)) lua_setfield(L, fields, "path");
    else {
      lua_setfield(L, fields, "err");
      lua_pushvalue(L, first);
      lua_setfield(L, fields, "path");
    }
  }
  else {
    lua_pushvalue(L, first);
    lua_setfield(L, fields, "path");
  }
  if (ctx) {
    lua_pushvalue(L, ctx);
    lua_setfield(L, fields, "ctx");
  }
  st = gr_stream_new(L, S, CMDMT, "exec");
  cmd = (gr_cmd *)calloc(1, sizeof(*cmd));
  if (cmd == NULL) return luaL_error(L, "not enough memory");
  for (i = 0; i < 3; i++) cmd->childfd[i] = -1;
  cmd->st = st;
  st->closearg = cmd;
  st->onclose = cmdclose;
  gr_state_weaktable(L, &fieldskey);
  lua_pushvalue(L, -2);
  lua_pushvalue(L, fields);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  return 1;
}

/* g.exec.command(name, ...) -> cmd */
static int lcommand (lua_State *L) {
  return newcmd(L, 1, 0);
}

/* g.exec.command_context(ctx, name, ...) -> cmd: killed when ctx is done */
static int lcommandcontext (lua_State *L) {
  luaL_checkudata(L, 1, CTXMT);
  return newcmd(L, 2, 1);
}

/* The strings of the list field name of the settings at fields, in a
** NULL-terminated array of a userdata pushed on L (freed with it), or
** NULL (nothing pushed) when the field is nil. Raises for a bad list;
** sets *nul when a string holds a NUL byte (C would cut it there). */
static char **checklist (lua_State *L, int fields, const char *name,
                         int *nul) {
  char **v;
  size_t len;
  lua_Integer n, i;
  lua_getfield(L, fields, name);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return NULL;
  }
  n = luaL_len(L, -1);
  if (n < 0 || n > 1000000)
    luaL_error(L, "bad cmd.%s (too many strings)", name);
  if (!lua_checkstack(L, (int)n + 4)) luaL_error(L, "cmd.%s too long", name);
  v = (char **)lua_newuserdatauv(L, ((size_t)n + 1) * sizeof(char *), 0);
  for (i = 1; i <= n; i++) {
    if (lua_rawgeti(L, -2 - (int)(i - 1), i) != LUA_TSTRING)
      luaL_error(L, "bad cmd.%s[%d] (string expected, got %s)", name,
                 (int)i, luaL_typename(L, -1));
    v[i - 1] = (char *)lua_tolstring(L, -1, &len);
    if (strlen(v[i - 1]) != len) *nul = 1;
  }
  v[n] = NULL;
  lua_pop(L, (int)n);   /* the list keeps its strings */
  lua_remove(L, -2);    /* the list, kept by the settings */
  return v;
}

/* Closes the parent's ends of the pipes of the cmd with settings at
** fields (Go closes them after start fails, and once wait saw the exit). */
static void closepipes (lua_State *L, int fields) {
  int i;
  for (i = 0; i < 3; i++) {
    if (lua_rawgeti(L, fields, i) == LUA_TUSERDATA)
      gr_stream_close(gr_stream_check(L, -1, PIPEMT));
    lua_pop(L, 1);
  }
}

/* Pushes nil and start's failure; the pipes are closed. */
static int startfail (lua_State *L, gr_cmd *cmd, int fields) {
  closechildfds(cmd);
  closepipes(L, fields);
  lua_pushnil(L);
  lua_insert(L, -2);
  return 2;
}

/* cmd:start() -> true, or nil and a message */
static int lstart (lua_State *L) {
  gr_state *S;
  gr_cmd *cmd = checkcmd(L);
  int fields, r, i, nul;
  size_t plen, dlen;
  const char *path, *dir = NULL;
  char **args, **env;
  uv_process_options_t o;
  uv_stdio_container_t io[3];
  gr_proc *p;
  gr_donewatch *cw = NULL;
  gr_chan *done = NULL;
  S = gr_getstate(L);
  lua_settop(L, 1);
  if (cmd->started) return fail(L, "exec: already started");
  pushfields(L, 1);
  fields = lua_gettop(L);
  if (lua_getfield(L, fields, "err") == LUA_TSTRING)
    return startfail(L, cmd, fields);
  lua_pop(L, 1);
  lua_getfield(L, fields, "path");
  path = lua_tolstring(L, -1, &plen);   /* a string: __newindex checks it */
  if (plen == 0) {
    lua_pushliteral(L, "exec: no command");
    return startfail(L, cmd, fields);
  }
  /* A NUL byte in the path, an argument or the environment fails the
  ** start, as Go's syscall.BytePtrFromString does. */
  nul = strlen(path) != plen;
  args = checklist(L, fields, "args", &nul);
  if (args[0] == NULL) {   /* Go's: no Args is {Path} */
    args = (char **)lua_newuserdatauv(L, 2 * sizeof(char *), 0);
    args[0] = (char *)path;
    args[1] = NULL;
  }
  env = checklist(L, fields, "env", &nul);
  if (lua_getfield(L, fields, "dir") == LUA_TSTRING) {
    struct stat sb;
    dir = lua_tolstring(L, -1, &dlen);
    if (strlen(dir) != dlen) {
      pushquoted(L, "chdir ", dir, dlen, ": invalid argument");
      return startfail(L, cmd, fields);
    }
    if (stat(dir, &sb) != 0) {   /* Go's StartProcess says it first */
      lua_pushfstring(L, "chdir %s: %s", dir, gr_stream_strerror(-errno));
      return startfail(L, cmd, fields);
    }
  }
  if (nul) {
    pushquoted(L, "fork/exec ", path, plen, ": invalid argument");
    return startfail(L, cmd, fields);
  }
  if (lua_getfield(L, fields, "ctx") != LUA_TNIL) {
    int ctx = lua_gettop(L);
    callctx(L, ctx, "err");
    if (!lua_isnil(L, -1)) return startfail(L, cmd, fields);
    callctx(L, ctx, "done");   /* the context keeps its channel */
    done = gr_chan_checkud(L, -1)->c;
    if ((cw = gr_donewatch_new()) == NULL)
      return luaL_error(L, "not enough memory");
  }
  p = (gr_proc *)calloc(1, sizeof(*p));
  if (p == NULL) {
    free(cw);
    return luaL_error(L, "not enough memory");
  }
  /* Nothing raises from here on. */
  memset(&o, 0, sizeof(o));
  o.exit_cb = onexit;
  o.file = path;
  o.args = args;
  o.env = env;
  o.cwd = dir;
  for (i = 0; i < 3; i++) {
    if (cmd->childfd[i] >= 0) {
      io[i].flags = UV_INHERIT_FD;
      io[i].data.fd = cmd->childfd[i];
    }
    else io[i].flags = UV_IGNORE;   /* /dev/null, as Go's nil Stdin... */
  }
  o.stdio_count = 3;
  o.stdio = io;
  p->h.data = p;
  r = uv_spawn(&S->loop, &p->h, &o);
  closechildfds(cmd);
  if (r < 0) {
    free(cw);
    uv_close((uv_handle_t *)&p->h, onprocclosed);   /* libuv's rule */
    lua_pushfstring(L, "fork/exec %s: %s", path, gr_stream_strerror(r));
    return startfail(L, cmd, fields);
  }
  p->cmd = cmd;
  p->reg = getprocs(L);
  p->next = p->reg->running;
  if (p->next) p->next->prev = p;
  p->reg->running = p;
  cmd->proc = p;
  cmd->started = 1;
  cmd->pid = p->h.pid;
  if (cw) watch(S, p, done, cw);
  lua_pushboolean(L, 1);
  return 1;
}

/* Go's ProcessState text of the exit: "exit status 3", "signal: killed". */
static void pushexit (lua_State *L, gr_cmd *cmd) {
  int i;
  if (cmd->signal == 0) {
    lua_pushfstring(L, "exit status %d", (int)cmd->status);
    return;
  }
  for (i = 0; signals[i].name; i++) {
    if (signals[i].num == cmd->signal) {
      lua_pushfstring(L, "signal: %s", signals[i].text);
      return;
    }
  }
  lua_pushfstring(L, "signal: signal %d", cmd->signal);
}

static int waitattempt (lua_State *L, gr_stream *st, lua_KContext ctx) {
  gr_cmd *cmd = (gr_cmd *)st->closearg;
  (void)ctx;
  if (cmd->waited) return fail(L, "exec: Wait was already called");
  if (!cmd->exited) return GR_SAGAIN;
  cmd->waited = 1;
  pushfields(L, 1);
  closepipes(L, lua_gettop(L));
  lua_pop(L, 1);
  if (cmd->signal == 0 && cmd->status == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  lua_pushnil(L);
  pushexit(L, cmd);
  return 2;
}

static int waitk (lua_State *L, int status, lua_KContext ctx) {
  (void)status;
  return gr_stream_run(L, gr_stream_check(L, 1, CMDMT), GR_SREAD,
                       waitattempt, waitk, ctx);
}

/* cmd:wait() -> true, or nil and "exit status 3" / "signal: killed" */
static int lwait (lua_State *L) {
  gr_cmd *cmd = checkcmd(L);
  lua_settop(L, 1);
  if (!cmd->started) return fail(L, "exec: not started");
  return gr_stream_run(L, cmd->st, GR_SREAD, waitattempt, waitk, 0);
}

/* cmd:kill([signal]) -> true, or nil and a message: signal is a name
** ("SIGTERM") or a number, SIGKILL by default (Go's Process.Kill) */
static int lkill (lua_State *L) {
  gr_cmd *cmd = checkcmd(L);
  int sig = SIGKILL, r;
  if (lua_type(L, 2) == LUA_TNUMBER) {
    lua_Integer n = luaL_checkinteger(L, 2);
    luaL_argcheck(L, n >= 0 && n <= 64, 2, "invalid signal number");
    sig = (int)n;
  }
  else if (!lua_isnoneornil(L, 2)) {
    const char *name = luaL_checkstring(L, 2);
    int i;
    for (i = 0; signals[i].name && strcmp(signals[i].name, name) != 0; i++)
      {}
    if (signals[i].name == NULL)
      return luaL_argerror(L, 2,
                           lua_pushfstring(L, "unknown signal '%s'", name));
    sig = signals[i].num;
  }
  if (!cmd->started) return fail(L, "exec: not started");
  if (cmd->proc == NULL) return fail(L, "os: process already finished");
  r = uv_process_kill(&cmd->proc->h, sig);
  if (r == UV_ESRCH) return fail(L, "os: process already finished");
  if (r < 0) return fail(L, gr_stream_strerror(r));
  lua_pushboolean(L, 1);
  return 1;
}


/* --- pipes ------------------------------------------------------------- */

/* Makes the pipe of the child's fd (0, 1, 2) and pushes the parent's end;
** with dup2err, the child's stderr is the same pipe as its stdout. */
static int newpipe (lua_State *L, int fd, int dup2err) {
  gr_state *S = gr_getstate(L);
  gr_cmd *cmd = checkcmd(L);
  uv_file fds[2];
  gr_stream *st;
  int r, mine, theirs, set, errfd = -1;
  lua_settop(L, 1);
  if (cmd->started) {
    lua_pushnil(L);
    lua_pushfstring(L, "exec: %sPipe after process started", pipenames[fd]);
    return 2;
  }
  pushfields(L, 1);
  set = lua_rawgeti(L, 2, fd) != LUA_TNIL || cmd->childfd[fd] >= 0;
  if (set || (dup2err && cmd->childfd[2] >= 0)) {
    lua_pushnil(L);
    lua_pushfstring(L, "exec: %s already set", pipenames[set ? fd : 2]);
    return 2;
  }
  lua_pop(L, 1);
  gr_stream_nosigpipe();   /* from the first pipe on */
  st = gr_stream_new(L, S, PIPEMT, fd == 0 ? "|1" : "|0");
  st->file = 1;
  st->noread = fd == 0;   /* ours writes the child's stdin */
  st->nowrite = fd != 0;
  uv_pipe_init(&S->loop, &st->u.pipe, 0);   /* cannot fail */
  gr_stream_adopt(st, GR_SPIPE);
  if ((r = uv_pipe(fds, 0, 0)) < 0) {
    gr_stream_close(st);
    lua_pushnil(L);
    lua_pushfstring(L, "pipe: %s", gr_stream_strerror(r));
    return 2;
  }
  mine = fd == 0 ? fds[1] : fds[0];
  theirs = fd == 0 ? fds[0] : fds[1];
  if (dup2err && (errfd = fcntl(theirs, F_DUPFD_CLOEXEC, 0)) < 0)
    r = -errno;
  else r = uv_pipe_open(&st->u.pipe, mine);
  if (r < 0) {
    close(mine);
    close(theirs);
    if (errfd >= 0) close(errfd);
    gr_stream_close(st);
    lua_pushnil(L);
    lua_pushfstring(L, "pipe: %s", gr_stream_strerror(r));
    return 2;
  }
  cmd->childfd[fd] = theirs;
  if (dup2err) cmd->childfd[2] = errfd;
  lua_pushvalue(L, -1);
  lua_rawseti(L, 2, fd);
  return 1;
}

static int lstdinpipe (lua_State *L) { return newpipe(L, 0, 0); }
static int lstdoutpipe (lua_State *L) { return newpipe(L, 1, 0); }
static int lstderrpipe (lua_State *L) { return newpipe(L, 2, 0); }
/* The pipe of combined_output (init.lua): stdout and stderr in one. */
static int lcombinedpipe (lua_State *L) { return newpipe(L, 1, 1); }

/* pipe:close_write(): a pipe goes one way, so closing the writing end of
** stdin_pipe is its close_write (the child reads EOF); a reading end has
** nothing to close. */
static int lpipe_closewrite (lua_State *L) {
  gr_stream *st = gr_stream_check(L, 1, PIPEMT);
  if (strcmp(st->net, "|1") != 0)
    return gr_stream_fail(L, st, "close_write", "bad file descriptor");
  if (st->closed)
    return gr_stream_fail(L, st, "close_write", "file already closed");
  gr_stream_close(st);
  lua_pushboolean(L, 1);
  return 1;
}


/* --- fields: path, args, dir, env, pid ----------------------------------- */

/* The settings a cmd exposes (pid aside), and what each may hold. */
static const struct { const char *name; int type; int nilok; } settings[] = {
  {"path", LUA_TSTRING, 0}, {"args", LUA_TTABLE, 0},
  {"dir", LUA_TSTRING, 1}, {"env", LUA_TTABLE, 1}, {NULL, 0, 0}
};

static int findsetting (const char *k) {
  int i;
  for (i = 0; settings[i].name; i++)
    if (strcmp(settings[i].name, k) == 0) return i;
  return -1;
}

/* __index: a method (upvalue 1), pid, or a setting. */
static int lcmd_index (lua_State *L) {
  const char *k;
  gr_stream *st = gr_stream_check(L, 1, CMDMT);
  lua_settop(L, 2);
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
  if (lua_type(L, 2) != LUA_TSTRING) return 1;   /* nil */
  k = lua_tostring(L, 2);
  if (strcmp(k, "pid") == 0) {
    gr_cmd *cmd = (gr_cmd *)st->closearg;
    if (cmd->started) lua_pushinteger(L, cmd->pid);
    else lua_pushnil(L);
    return 1;
  }
  if (findsetting(k) < 0) return 1;   /* nil */
  pushfields(L, 1);
  lua_getfield(L, -1, k);
  return 1;
}

/* __newindex: a setting, of its type, before start. */
static int lcmd_newindex (lua_State *L) {
  gr_stream *st = gr_stream_check(L, 1, CMDMT);
  gr_cmd *cmd = (gr_cmd *)st->closearg;
  const char *k = lua_tostring(L, 2);
  int i = lua_type(L, 2) == LUA_TSTRING ? findsetting(k) : -1;
  if (i < 0)
    return luaL_error(L, "exec: cmd has no field '%s'",
                      k ? k : luaL_typename(L, 2));
  if (lua_type(L, 3) != settings[i].type &&
      !(settings[i].nilok && lua_isnil(L, 3)))
    return luaL_error(L, "bad cmd.%s (%s expected, got %s)", k,
                      lua_typename(L, settings[i].type),
                      luaL_typename(L, 3));
  if (cmd->started)
    return luaL_error(L, "exec: cmd.%s set after the process started", k);
  pushfields(L, 1);
  lua_pushvalue(L, 3);
  lua_setfield(L, -2, k);
  if (i == 0) {   /* a path set by hand replaces the lookup's */
    lua_pushnil(L);
    lua_setfield(L, -2, "err");
  }
  return 0;
}

static int lcmd_tostring (lua_State *L) {
  lua_pushfstring(L, CMDMT ": %p", lua_touserdata(L, 1));
  return 1;
}


/* --- crossing states ----------------------------------------------------- */

/* A cmd or a pipe stays in its state: its child is reaped by that
** state's loop. */
static void *cmdtake (lua_State *L, int idx, int *aux) {
  (void)idx;
  (void)aux;
  luaL_error(L, "exec: a cmd cannot move to another state");
  return NULL;
}

static void *pipetake (lua_State *L, int idx, int *aux) {
  (void)idx;
  (void)aux;
  luaL_error(L, "exec: a pipe cannot move to another state");
  return NULL;
}

/* take always raises: no pack ever holds one, so push and drop are
** never called. */
static const gr_objtype cmdtype = { CMDMT, cmdtake, NULL, NULL, NULL };
static const gr_objtype pipetype = { PIPEMT, pipetake, NULL, NULL, NULL };


/* --- registration -------------------------------------------------------- */

static const luaL_Reg cmdmethods[] = {
  {"start", lstart},
  {"wait", lwait},
  {"kill", lkill},
  {"stdin_pipe", lstdinpipe},
  {"stdout_pipe", lstdoutpipe},
  {"stderr_pipe", lstderrpipe},
  {NULL, NULL}
};

static const luaL_Reg funcs[] = {
  {"command", lcommand},
  {"command_context", lcommandcontext},
  {"look_path", llookpath},
  {"_combined_pipe", lcombinedpipe},
  {NULL, NULL}
};

void gr_exec_open (lua_State *L) {
  int methods;
  luaL_newmetatable(L, PROCSMT);
  lua_pushcfunction(L, lprocs_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  /* pipes: the methods of conns, close_write as a pipe's */
  lua_newtable(L);
  gr_stream_setmethods(L, GR_SMETABYTES);
  lua_pushcfunction(L, lpipe_closewrite);
  lua_setfield(L, -2, "close_write");
  gr_stream_newmeta(L, PIPEMT, GR_SMETABYTES);
  luaL_getmetatable(L, PIPEMT);
  gr_objtype_set(L, -1, &pipetype);
  lua_pop(L, 1);
  /* cmds: methods, then fields, through __index */
  lua_newtable(L);
  gr_state_setfuncs(L, cmdmethods);
  methods = lua_gettop(L);
  lua_pushvalue(L, methods);   /* gr_stream_newmeta pops it */
  gr_stream_newmeta(L, CMDMT, GR_SMETANONE);
  luaL_getmetatable(L, CMDMT);
  lua_pushvalue(L, methods);
  lua_pushcclosure(L, lcmd_index, 1);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, lcmd_newindex);
  lua_setfield(L, -2, "__newindex");
  lua_pushcfunction(L, lcmd_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushnil(L);   /* a cmd has no close: its child runs on */
  lua_setfield(L, -2, "__close");
  gr_objtype_set(L, -1, &cmdtype);
  lua_pop(L, 1);
  lua_newtable(L);
  gr_state_setfuncs(L, funcs);
  lua_pushvalue(L, methods);
  lua_setfield(L, -2, "_cmd_methods");   /* init.lua adds to them */
  lua_setfield(L, -3, "exec");
  lua_pop(L, 1);   /* methods */
}
