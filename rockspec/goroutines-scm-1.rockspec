-- LuaRocks build of goroutines from a checkout:
--   luarocks --lua-version 5.4 make rockspec/goroutines-scm-1.rockspec
package = "goroutines"
version = "scm-1"

source = {
  -- `luarocks make` builds the checkout it is run from; this URL is only
  -- used by `luarocks build` and `luarocks pack`.
  url = "git+file://./goroutines",
}

description = {
  summary = "Go's concurrency model for Lua 5.4: goroutines, channels, select, timers, sync",
  license = "MIT",
  detailed = [[
Goroutines are Lua coroutines run by a scheduler written in C; channels,
select, timers and sync objects follow Go's semantics. The runtime uses
libuv for its timers and event loop.
]],
}

dependencies = {
  "lua >= 5.4, < 5.5",
}

external_dependencies = {
  LIBUV = {
    header = "uv.h",
  },
}

build = {
  type = "builtin",
  modules = {
    ["goroutines.core"] = {
      -- Keep in sync with src/*.c (.ci/run checks it).
      sources = {
        "src/chan.c",
        "src/context.c",
        "src/copy.c",
        "src/donewatch.c",
        "src/embed.c",
        "src/errors.c",
        "src/exec.c",
        "src/goroutines.c",
        "src/gos.c",
        "src/gr.c",
        "src/gsignal.c",
        "src/gtime.c",
        "src/gtrace.c",
        "src/hostchan.c",
        "src/leak.c",
        "src/net.c",
        "src/parallel.c",
        "src/runtime.c",
        "src/sched.c",
        "src/select.c",
        "src/stack.c",
        "src/state.c",
        "src/stream.c",
        "src/sync.c",
        "src/timer.c",
        "src/trace.c",
        "src/wait.c",
      },
      -- gcc's default dialect (gnu17) covers the C11 the sources need;
      -- _GNU_SOURCE is what the Makefile adds besides -std=c11.
      defines = { "_GNU_SOURCE" },
      libraries = { "uv", "pthread" },
      incdirs = { "include", "$(LIBUV_INCDIR)" },
      libdirs = { "$(LIBUV_LIBDIR)" },
    },
    ["goroutines"] = "lua/goroutines/init.lua",
  },
}
