-- Shared helpers for the specs.
--
-- run_script(src) runs a Lua chunk in a fresh interpreter, for anything that
-- ends the process (deadlock, uncaught errors at exit, main ending while
-- goroutines are alive).  The child uses the same interpreter command as the
-- suite (env LUA, default lua5.4: under `make valgrind` it is a valgrind
-- command line) and the suite's package.path/package.cpath.

local M = {}

local LUA = os.getenv("LUA") or "lua5.4"
-- Time limits are stretched under tools that slow every thread down
-- (`make valgrind` sets SPEC_TIME_SCALE): a limit only catches hangs.
local SCALE = tonumber(os.getenv("SPEC_TIME_SCALE")) or 1
M.TIME_SCALE = SCALE

-- Quotes s for /bin/sh.
local function shquote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- Writes src to a temporary file and runs it with the suite's interpreter.
-- Returns stdout, stderr, exit code (128+n when killed by signal n, 124 when
-- it ran longer than `limit` seconds, default 60) and the script's path, as
-- it appears in chunk names and tracebacks.  `env`, a table of names to
-- values, adds variables to the child's environment.  The script file is
-- removed afterwards.
function M.run_script(src, limit, env)
  local script = os.tmpname()
  local out, err = os.tmpname(), os.tmpname()
  local f = assert(io.open(script, "w"))
  f:write(src)
  f:close()
  local vars = {}
  for name, value in pairs(env or {}) do
    assert(name:match("^[%a_][%w_]*$"), "bad variable name " .. name)
    vars[#vars + 1] = name .. "=" .. shquote(tostring(value)) .. " "
  end
  table.sort(vars)
  local cmd = string.format(
    "%sLUA_PATH=%s LUA_CPATH=%s timeout -k 5 %d %s %s >%s 2>%s",
    table.concat(vars), shquote(package.path), shquote(package.cpath),
    math.ceil((limit or 60) * SCALE), LUA,
    shquote(script), shquote(out), shquote(err))
  local _, how, code = os.execute(cmd)
  if how == "signal" then code = 128 + code end
  local stdout, stderr = slurp(out), slurp(err)
  os.remove(script)
  os.remove(out)
  os.remove(err)
  return stdout, stderr, code, script
end

-- Runs a Lua chunk as run_script does, with its standard streams set up by
-- the shell: opts.stdin, a redirection ("</dev/null", "<path", "<&-"), or
-- opts.feed, a shell command whose output is piped into the script;
-- opts.stdout_to, a shell command that reads the script's stdout through a
-- pipe and whose own output is captured (opts.stdout_pipe: cat), else
-- stdout is a file;
-- opts.limit as run_script's. Returns stdout, stderr, the script's exit
-- code, and how long the script ran, in seconds (the feed not counted).
function M.run_stdio(src, opts)
  local script = os.tmpname()
  local out, err, rc = os.tmpname(), os.tmpname(), os.tmpname()
  local f = assert(io.open(script, "w"))
  f:write(src)
  f:close()
  local run = string.format(
    "t0=$(date +%%s%%N); LUA_PATH=%s LUA_CPATH=%s timeout -k 5 %d %s %s %s 2>%s; " ..
    "echo $? $(date +%%s%%N) $t0 >%s",
    shquote(package.path), shquote(package.cpath),
    math.ceil((opts.limit or 60) * SCALE), LUA, shquote(script),
    opts.stdin or "", shquote(err), shquote(rc))
  local to = opts.stdout_to or (opts.stdout_pipe and "cat")
  local cmd = "{ " .. run .. "; }" .. (to and " | " .. to or "") ..
              " >" .. shquote(out)
  if opts.feed then cmd = opts.feed .. " | " .. cmd end
  -- Under `make asan` the suite's LD_PRELOAD would load ASan into the
  -- shell's tools too (their leaks abort them); $LUA sets it for Lua.
  cmd = "unset LD_PRELOAD; " .. cmd
  os.execute(cmd)
  local code, t1, t0 = slurp(rc):match("^(%d+) (%d+) (%d+)")
  local stdout, stderr = slurp(out), slurp(err)
  os.remove(script)
  os.remove(out)
  os.remove(err)
  os.remove(rc)
  return stdout, stderr, tonumber(code), (tonumber(t1) - tonumber(t0)) / 1e9
end

-- Runs a C host of the embedding API built by make (`kind` "ctest" for
-- spec/ctest/, "examples" for examples/host/) with the given arguments,
-- without LUA_PATH and LUA_CPATH (gr_open needs none), from /tmp. Returns
-- stdout, stderr and the exit code, as run_script. Under `make valgrind`
-- the host runs under valgrind too (HOSTWRAP).
function M.run_host(kind, name, args, limit)
  local build = assert(os.getenv("GR_BUILD"), "GR_BUILD is not set (make test sets it)")
  local out, err = os.tmpname(), os.tmpname()
  local quoted = {}
  for i, a in ipairs(args or {}) do quoted[i] = shquote(a) end
  local cmd = string.format(
    "cd /tmp && env -u LUA_PATH -u LUA_CPATH timeout -k 5 %d %s %s %s >%s 2>%s",
    math.ceil((limit or 60) * SCALE), os.getenv("HOSTWRAP") or "",
    shquote(build .. "/" .. kind .. "/" .. name), table.concat(quoted, " "),
    shquote(out), shquote(err))
  local _, how, code = os.execute(cmd)
  if how == "signal" then code = 128 + code end
  local stdout, stderr = slurp(out), slurp(err)
  os.remove(out)
  os.remove(err)
  return stdout, stderr, code
end

-- Receives from ch, failing the test instead of hanging when nothing comes
-- within secs seconds; stops its timer, so that no timer stays pending
-- for later specs.
-- A fresh path in the temporary directory, with nothing there.
function M.tmpname()
  local p = os.tmpname()
  os.remove(p)
  return p
end

-- Writes data to the file at path, replacing it.
function M.put(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

function M.recv_within(ch, secs)
  local g = require "goroutines"
  local t = g.time.timer(secs)
  local i, v, ok = g.select { ch:on_recv(), t.c:on_recv() }
  t:stop()
  assert(i == 1, "nothing received within " .. secs .. " s")
  return v, ok
end

-- True when string s contains plain text sub.
function M.has(s, sub)
  return type(s) == "string" and string.find(s, sub, 1, true) ~= nil
end

-- Calls f and returns the error it raised (fails when it did not raise).
function M.error_of(f, ...)
  local ok, err = pcall(f, ...)
  assert(not ok, "expected an error, got none")
  return err
end

-- Asserts that f(...) raises an error whose message contains every string in
-- `texts` (plain text), and returns the message.
function M.raises(texts, f, ...)
  local err = M.error_of(f, ...)
  assert(type(err) == "string",
         "expected a string error, got " .. type(err) .. ": " .. tostring(err))
  if type(texts) == "string" then texts = { texts } end
  for _, t in ipairs(texts) do
    if not M.has(err, t) then
      error(string.format("error message %q does not contain %q", err, t), 2)
    end
  end
  return err
end

-- Blocks on a channel that nothing will ever send on: returns only by
-- raising (an uncaught goroutine error, or a deadlock).  Use it to wait for a
-- goroutine's error deterministically, where a sleep might end first.
function M.recv_never()
  local g = require "goroutines"
  local ch = g.chan()
  ch:recv()
  error("recv_never: the receive returned")
end

-- Runs f(...) and returns the wall-clock seconds it took, then f's results.
function M.timed(f, ...)
  local g = require "goroutines"
  local t0 = g.time.now()
  local r = table.pack(f(...))
  return g.time.now() - t0, table.unpack(r, 1, r.n)
end

-- Full collection, twice, so that objects with finalizers are gone too.
function M.collect()
  collectgarbage()
  collectgarbage()
end

return M
