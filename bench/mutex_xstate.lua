-- mutex_xstate: one g.sync.mutex locked by two states at once.
--
-- Main and a g.parallel goroutine (a worker Lua state on a worker thread)
-- each do N lock/unlock pairs on the same mutex, as fast as they can: the
-- critical section only counts the pairs, so the cost measured is the
-- lock's own when two threads contend for it. The partner says it is
-- ready over a channel; the clock starts when main has heard it and
-- stops when both have done their N (the partner sends its count back).
-- A warm-up of 1/20 of the size (which also starts the worker threads)
-- runs first, untimed. Same workload as go/mutex_xstate/main.go.
--
-- Usage: lua5.4 bench/mutex_xstate.lua [pairs per side, default 200000]
-- Output: RESULT mutex_xstate ns_per_pair <ns>
local g = require "goroutines"

local now = g.time.now

local function partner (mu, ready, done, n)
  ready:send(true)
  local count = 0
  for _ = 1, n do
    mu:lock()
    count = count + 1
    mu:unlock()
  end
  done:send(count)
end

-- Does n pairs on each side; returns the elapsed wall time in seconds.
local function run (n)
  local mu, ready, done = g.sync.mutex(), g.chan(), g.chan()
  g.parallel(partner, mu, ready, done, n)
  ready:recv()
  local t0 = now()
  local count = 0
  for _ = 1, n do
    mu:lock()
    count = count + 1
    mu:unlock()
  end
  local theirs = done:recv()
  local elapsed = now() - t0
  if count ~= n or theirs ~= n then
    error(("mutex_xstate: counted %d and %s, want %d"):format(
      count, tostring(theirs), n))
  end
  return elapsed
end

local n = math.tointeger(tonumber(arg[1])) or 200000
run(n // 20)  -- warm-up: starts the workers; not measured
local t = run(n)
print(string.format("RESULT mutex_xstate ns_per_pair %.1f", t * 1e9 / (2 * n)))
