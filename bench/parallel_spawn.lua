-- parallel_spawn: the cost of starting parallel goroutines.
--
-- Main starts N g.parallel goroutines, each given one shared unbuffered
-- channel and its index i; each sends i back and ends. Main receives all N
-- values after spawning them all and checks their sum. Each g.parallel
-- copies the function (by bytecode) and its arguments into a job that a
-- worker state unpacks and starts. A warm-up of N/20 (which also starts
-- the worker threads) runs first, untimed.
-- Same workload as go/parallel_spawn/main.go.
--
-- Usage: lua5.4 bench/parallel_spawn.lua [N, default 100000]
-- Output: RESULT parallel_spawn us_per_goroutine <wall time / N, in microseconds>
local g = require "goroutines"

local now = g.time.now

local function worker (ch, i) ch:send(i) end

-- Spawns n goroutines and receives their values; returns the wall time.
local function run (n)
  local ch = g.chan()
  local t0 = now()
  for i = 1, n do g.parallel(worker, ch, i) end
  local sum = 0
  for _ = 1, n do sum = sum + ch:recv() end
  local elapsed = now() - t0
  assert(sum == n * (n + 1) // 2, "parallel_spawn: bad sum " .. sum)
  return elapsed
end

local n = math.tointeger(tonumber(arg[1])) or 100000
run(n // 20)  -- warm-up: starts the workers; not measured
local t = run(n)
print(string.format("RESULT parallel_spawn us_per_goroutine %.3f", t * 1e6 / n))
