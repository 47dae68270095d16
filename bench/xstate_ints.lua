-- xstate_ints: integers from a parallel goroutine to main, across states.
--
-- A g.parallel producer (in a worker Lua state, on a worker thread) sends
-- the integers 1..N on a buffered channel (capacity 1024) and closes it;
-- main receives them with ch:range() and sums them (checked). Every value
-- crosses from the worker's state to main's. A warm-up of N/20 (which
-- also starts the worker threads) runs first, untimed.
-- Same workload as go/xstate_ints/main.go.
--
-- Usage: lua5.4 bench/xstate_ints.lua [N, default 1000000]
-- Output: RESULT xstate_ints msgs_per_sec <N / wall time>
local g = require "goroutines"

local now = g.time.now

local function producer (ch, n)
  for i = 1, n do ch:send(i) end
  ch:close()
end

-- Moves n integers; returns the elapsed wall time in seconds.
local function run (n)
  local ch = g.chan(1024)
  local t0 = now()
  g.parallel(producer, ch, n)
  local sum = 0
  for v in ch:range() do sum = sum + v end
  local elapsed = now() - t0
  assert(sum == n * (n + 1) // 2, "xstate_ints: bad sum " .. sum)
  return elapsed
end

local n = math.tointeger(tonumber(arg[1])) or 1000000
run(n // 20)  -- warm-up: starts the workers; not measured
local t = run(n)
print(string.format("RESULT xstate_ints msgs_per_sec %.0f", n / t))
