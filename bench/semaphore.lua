-- semaphore: acquire/release pairs on one g.sync.semaphore.
--
-- uncontended: one goroutine, size 1, N acquire/release pairs.
-- contended: 4 goroutines share a semaphore of size 2, each does N/4
-- pairs and yields (g.gosched) every 8 pairs while it holds a unit, so
-- that the others queue and releases hand units over in FIFO order.
-- Same workload as go/semaphore/main.go.
--
-- Usage: lua5.4 bench/semaphore.lua [pairs, default 1000000]
-- Output: RESULT semaphore ns_per_pair_uncontended <ns>
--         RESULT semaphore ns_per_pair_contended <ns>
local g = require "goroutines"

local function uncontended (n)
  local sem = g.sync.semaphore(1)
  local t0 = g.time.now()
  for _ = 1, n do
    sem:acquire(1)
    sem:release(1)
  end
  return g.time.now() - t0
end

local function contended (n)
  local sem, wg = g.sync.semaphore(2), g.sync.waitgroup()
  wg:add(4)
  for _ = 1, 4 do
    g.go(function ()
      for i = 1, n // 4 do
        sem:acquire(1)
        if i % 8 == 0 then g.gosched() end
        sem:release(1)
      end
      wg:done()
    end)
  end
  local t0 = g.time.now()
  wg:wait()
  return g.time.now() - t0
end

local n = math.tointeger(tonumber(arg[1])) or 1000000
uncontended(n // 20)
contended(n // 20)
print(string.format("RESULT semaphore ns_per_pair_uncontended %.1f",
                    uncontended(n) * 1e9 / n))
print(string.format("RESULT semaphore ns_per_pair_contended %.1f",
                    contended(n) * 1e9 / n))
