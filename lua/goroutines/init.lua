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
local CTXMT = debug.getregistry()["goroutines.context"]
local function typename (v)
  local mt = getmetatable(v)
  return type(mt) == "table" and type(rawget(mt, "__name")) == "string"
         and mt.__name or type(v)
end

function M.context.after_func(ctx, f)
  if getmetatable(ctx) ~= CTXMT then
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

return M
