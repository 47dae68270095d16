-- goroutines: Go's concurrency model for Lua 5.4.
-- The C core (goroutines.core) does the work; this file is the public face:
-- it re-exports the core's functions and makes the module callable, so that
-- g(f, ...) is g.go(f, ...).
--
-- It also gives this Lua state a coroutine.resume and a coroutine.wrap that
-- let a plain coroutine block on a channel (or select, sleep, wait...) while a
-- goroutine runs it: the blocked coroutine yields the core's suspend token,
-- each resume on the way passes it up by yielding it too, and the goroutine
-- parks; when it is woken, the resumes go back down and the operation
-- completes where it blocked. Coroutines used for anything else see no
-- difference.
local core = require "goroutines.core"

local M = {}
for name, value in pairs(core) do
  if name:sub(1, 1) ~= "_" or name == "_stats" then M[name] = value end
end

setmetatable(M, { __call = core._call })

-- context.AfterFunc(ctx, f): f runs in a goroutine of its own once ctx is
-- done; stop() keeps it from running and returns true, unless ctx was done
-- already (then f runs, or ran, and stop returns false). The waiting is a
-- goroutine of this state, parked on ctx:done() until either comes.
-- The metatable of contexts, found at the first check: a context made at
-- load would cost each state (each worker's too) a live channel until its
-- first collection.
local CTXMT
local function isctx (v)
  if CTXMT == nil then CTXMT = getmetatable(core.context.background()) end
  return getmetatable(v) == CTXMT
end
local function typename (v)
  local mt = getmetatable(v)
  return type(mt) == "table" and type(rawget(mt, "__name")) == "string"
         and mt.__name or type(v)
end

function M.context.after_func(ctx, f)
  if not isctx(ctx) then
    error(("bad argument #1 to 'after_func' (goroutines.context expected, "
           .. "got %s)"):format(typename(ctx)), 2)
  end
  local done = ctx:done()
  local mt = getmetatable(f)
  if type(f) ~= "function" and not (type(mt) == "table" and
                                    type(rawget(mt, "__call")) == "function") then
    error(("bad argument #2 to 'after_func' (function expected, got %s)")
          :format(type(f)), 2)
  end
  local stopch, state = M.chan(), "waiting"
  M.go(function()
    M.select { done:on_recv(), stopch:on_recv() }
    if state == "waiting" then
      state = "ran"
      f()
    end
  end)
  return function()
    if state ~= "waiting" or ctx:err() ~= nil then return false end
    state = "stopped"
    stopch:close()
    return true
  end
end

-- golang.org/x/sync/errgroup. A group belongs to the state that made it;
-- its members run in that state (grp:go) or on workers (grp:parallel), and
-- share with it only runtime objects: a wait group, the limit's channel of
-- tokens, a channel of one slot that the first failure fills (the other
-- failures find it full), and the cancel of the group's context. The
-- members of the group's own state count in grp.running, a plain field
-- that only that state's thread touches: the wait group counts them as
-- one while it is above 0, so that a member costs no call into it. A member
-- fails by raising: its error, a string with the member's traceback
-- appended or any other value as it was raised, is the group's when it
-- fails first. A member of the group's own state records the very value,
-- and puts false in the slot; a parallel member puts there its copy.
local errgroup = {}
M.errgroup = errgroup

local Group = {}
Group.__index = Group
Group.__name = "goroutines.errgroup"

-- The message handler of a member: a string gets the traceback.
local function membertrace (e)
  if type(e) == "string" and debug then return debug.traceback(e, 2) end
  return e
end

local function callable (f)
  if type(f) == "function" then return true end
  local mt = getmetatable(f)
  return type(mt) == "table" and type(rawget(mt, "__call")) == "function"
end

-- Takes a token of the limit (waiting for one with wait, else only if one
-- is free at once) and counts the member in (on a worker with parallel);
-- returns true and the token's channel (false: no limit), or false when no
-- token was free.
local function enter (grp, f, name, wait, parallel)
  if type(f) ~= "function" and not callable(f) then
    error(("bad argument #1 to '%s' (function expected, got %s)")
          :format(name, type(f)), 3)
  end
  local sem = grp.sem
  if sem then
    if wait then sem:send(true)
    elseif core.select { sem:on_send(true), default = true } == "default" then
      return false
    end
  end
  if parallel then grp.wg:add(1)
  else
    local n = grp.running
    if n == 0 then grp.wg:add(1) end
    grp.running = n + 1
  end
  return true, sem
end

-- A failure raised as nil would read as success: it is named instead.
local function failure (e)
  if e == nil then return "(error object is a nil value)" end
  return e
end

-- Runs a member in the group's state.
local function runlocal (grp, sem, f, ...)
  local ok, e = xpcall(f, membertrace, ...)
  if not ok and core.select { grp.first:on_send(false), default = true } == 1
  then
    e = failure(e)
    grp.err = e
    if grp.cancel then grp.cancel(e) end
  end
  if sem then sem:recv() end
  local n = grp.running - 1
  grp.running = n
  if n == 0 then grp.wg:done() end
end

-- Runs a member on a worker: only what it is passed is shared.
local function runparallel (wg, sem, first, cancel, f, ...)
  local ok, e = xpcall(f, membertrace, ...)
  if not ok then
    e = failure(e)
    local sent, won = pcall(core.select,
                            { first:on_send(e), default = true })
    if not sent then              -- e cannot cross: its text does
      e = ("(error object is a %s value)"):format(type(e))
      won = core.select { first:on_send(e), default = true }
    end
    if won == 1 and cancel then pcall(cancel, e) end
  end
  if sem then sem:recv() end
  wg:done()
end

local function newgroup (cancel)
  return setmetatable({ wg = core.sync.waitgroup(), first = core.chan(1),
                        cancel = cancel, sem = false, running = 0 }, Group)
end

-- errgroup.new(): Go's zero Group
function errgroup.new ()
  return newgroup(false)
end

-- errgroup.with_context(ctx) -> grp, ctx canceled at the first failure
-- (its cause that failure) or when wait returns
function errgroup.with_context (ctx)
  if not isctx(ctx) then
    error(("bad argument #1 to 'with_context' (goroutines.context expected, "
           .. "got %s)"):format(typename(ctx)), 2)
  end
  local gctx, cancel = core.context.with_cancel_cause(ctx)
  return newgroup(cancel), gctx
end

-- grp:go(f, ...): f(...) in a new goroutine of this state, once the limit
-- lets it in (it waits for a token)
function Group:go (f, ...)
  local _, sem = enter(self, f, "go", true)
  core.go(runlocal, self, sem, f, ...)
end

-- grp:parallel(f, ...): the same, with f(...) on a worker (g.parallel)
function Group:parallel (f, ...)
  local _, sem = enter(self, f, "parallel", true, true)
  local ok, e = pcall(core.parallel, runparallel, self.wg, sem, self.first,
                      self.cancel, f, ...)
  if not ok then                  -- not started: undo the entry
    if sem then sem:recv() end
    self.wg:done()
    error(e, 2)
  end
end

-- grp:try_go(f, ...) -> whether f started: false when the limit is reached
function Group:try_go (f, ...)
  local entered, sem = enter(self, f, "try_go", false)
  if not entered then return false end
  core.go(runlocal, self, sem, f, ...)
  return true
end

-- grp:set_limit(n): at most n members at once; n < 0: no limit. Raises,
-- as Go panics, while members hold tokens of the current limit.
function Group:set_limit (n)
  if math.type(n) ~= "integer" then
    error(("bad argument #1 to 'set_limit' (integer expected, got %s)")
          :format(math.type(n) or type(n)), 2)
  end
  if n < 0 then
    self.sem = false
    return
  end
  local active = self.sem and self.sem:len() or 0
  if active ~= 0 then
    error(("errgroup: modify limit while %d goroutines in the group are "
           .. "still active"):format(active), 2)
  end
  self.sem = core.chan(n)
end

-- grp:wait() -> nil, or the first failure; cancels the group's context
function Group:wait ()
  self.wg:wait()
  if self.err == nil then
    local i, v = core.select { self.first:on_recv(), default = true }
    if i == 1 and v ~= false then self.err = v end
  end
  if self.cancel then self.cancel(self.err) end
  return self.err
end

local co_resume, co_yield, co_running = coroutine.resume, coroutine.yield, coroutine.running
local co_create, co_close = coroutine.create, coroutine.close
local SUSPEND, BLOCKED, resuming = core._suspend, core._blocked, core._resuming

-- Installed once per state: a second require finds them in place.
if not resuming[coroutine] then
  resuming[coroutine] = true   -- marks the coroutine library as patched

  local function finish (co, prev, ok, ...)
    if ok and select("#", ...) == 1 then
      local v = ...
      if v == SUSPEND then
        co_yield(SUSPEND)            -- park the goroutine above us too
        return finish(co, prev, co_resume(co))
      elseif v == BLOCKED then       -- parked: only its scheduler resumes it
        resuming[co] = prev
        return false, "cannot resume a coroutine that waits in a goroutine"
      end
    end
    resuming[co] = nil
    return ok, ...
  end

  coroutine.resume = function (co, ...)
    if type(co) ~= "thread" then
      error(("bad argument #1 to 'resume' (coroutine expected, got %s)")
            :format(type(co)), 2)
    end
    local prev = resuming[co]
    resuming[co] = co_running()
    return finish(co, prev, co_resume(co, ...))
  end

  local resume = coroutine.resume
  local function unwrap (co, ok, ...)
    if ok then return ... end
    local err = ...
    co_close(co)
    if type(err) == "string" then error(err, 2) end
    error(err, 0)
  end

  coroutine.wrap = function (f)
    if type(f) ~= "function" then
      error(("bad argument #1 to 'wrap' (function expected, got %s)")
            :format(type(f)), 2)
    end
    local co = co_create(f)
    return function (...)
      return unwrap(co, resume(co, ...))
    end
  end
end

-- g.os.read_file and g.os.write_file: Go's os.ReadFile and os.WriteFile,
-- on the files of g.os (only the calling goroutine waits).
do
  local gos = M.os
  local function checkstr (v, i, name)
    if type(v) ~= "string" then
      error(("bad argument #%d to '%s' (string expected, got %s)")
            :format(i, name, type(v)), 3)
    end
  end

  function gos.read_file (path)
    checkstr(path, 1, "read_file")
    local f, err = gos.open(path, "r")
    if not f then return nil, err end
    local data, rerr = f:read("a")
    f:close()
    if data == nil then return nil, rerr end
    return data
  end

  function gos.write_file (path, data)
    checkstr(path, 1, "write_file")
    checkstr(data, 2, "write_file")
    local f, err = gos.open(path, "w")
    if not f then return nil, err end
    local ok, werr = f:write(data)
    f:close()
    if not ok then return nil, werr end
    return true
  end
end

-- cmd:run(), cmd:output(), cmd:combined_output(): Go's Cmd.Run, Output
-- and CombinedOutput, over start, wait and a pipe. The output is read to
-- its end before wait (which closes the pipe once the child exited).
do
  local exec = M.exec
  local methods, combined = exec._cmd_methods, exec._combined_pipe
  exec._cmd_methods, exec._combined_pipe = nil, nil

  function methods.run (cmd)
    local ok, err = cmd:start()
    if not ok then return nil, err end
    return cmd:wait()
  end

  -- Starts cmd and reads pipe p to its end: the bytes, or nil, the
  -- failure and what was read.
  local function collect (cmd, p)
    local ok, err = cmd:start()
    if not ok then return nil, err end
    local out, rerr = p:read("a")
    ok, err = cmd:wait()
    if not ok then return nil, err, out or "" end
    if out == nil then return nil, rerr, "" end
    return out
  end

  local function output (cmd, pipe)
    if cmd.pid then return nil, "exec: already started" end
    local p, err = pipe(cmd)
    if not p then return nil, err end
    return collect(cmd, p)
  end

  function methods.output (cmd) return output(cmd, methods.stdout_pipe) end
  function methods.combined_output (cmd) return output(cmd, combined) end
end

return M
