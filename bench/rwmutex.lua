-- rwmutex: 8 readers and 1 writer share one g.sync.rwmutex.
--
-- Each reader does N rlock/runlock pairs, the writer N/8 lock/unlock
-- pairs; each yields (g.gosched) every 16 pairs while it holds no lock,
-- so that the goroutines interleave and the writer's wait stops the
-- readers (writer preference) now and then.
-- Same workload as go/rwmutex/main.go.
--
-- Usage: lua5.4 bench/rwmutex.lua [pairs per reader, default 200000]
-- Output: RESULT rwmutex ns_per_lock <ns>
local g = require "goroutines"

local function run (n)
  local rw, wg = g.sync.rwmutex(), g.sync.waitgroup()
  local shared = 0
  wg:add(9)
  for _ = 1, 8 do
    g.go(function ()
      for i = 1, n do
        rw:rlock()
        local _ = shared
        rw:runlock()
        if i % 16 == 0 then g.gosched() end
      end
      wg:done()
    end)
  end
  g.go(function ()
    for i = 1, n // 8 do
      rw:lock()
      shared = shared + 1
      rw:unlock()
      if i % 2 == 0 then g.gosched() end
    end
    wg:done()
  end)
  local t0 = g.time.now()
  wg:wait()
  return g.time.now() - t0, 8 * n + n // 8
end

local n = math.tointeger(tonumber(arg[1])) or 200000
run(n // 20)
local t, ops = run(n)
print(string.format("RESULT rwmutex ns_per_lock %.1f", t * 1e9 / ops))
