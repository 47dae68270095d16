-- timers: N goroutines each sleep a random 0-200 ms, then signal a wait
-- group; main waits for all of them. The ideal wall time is the longest
-- sleep, just under 200 ms; the excess is the cost of creating, running
-- and firing N timers. Same workload as go/timers/main.go.
--
-- Usage: lua5.4 bench/timers.lua [N, default 100000]
-- Output: RESULT timers ms_wall <ms>
local g = require "goroutines"

local n = math.tointeger(tonumber(arg[1])) or 100000

-- Draw the sleeps first, with a fixed seed, so that only the goroutines
-- and timers are measured.
math.randomseed(1)
local sleeps = {}
for i = 1, n do sleeps[i] = math.random() * 0.200 end

local wg = g.sync.waitgroup()
wg:add(n)
local sleep = g.time.sleep

local function sleeper (d)
  sleep(d)
  wg:done()
end

local t0 = g.time.now()
for i = 1, n do g.go(sleeper, sleeps[i]) end
wg:wait()
local elapsed = g.time.now() - t0
print(string.format("RESULT timers ms_wall %.1f", elapsed * 1e3))
