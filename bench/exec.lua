-- exec: N `true` processes, at most 8 running at a time, through g.exec
-- (uv_spawn; each goroutine waits for its child, the others run).
-- Same workload as go/exec/main.go (os/exec).
--
-- Usage: lua5.4 bench/exec.lua [processes, default 100]
-- Output: RESULT exec ms_total <ms>
--         RESULT exec us_per_process <us>
local g = require "goroutines"

local function run (n)
  local sem, wg = g.sync.semaphore(8), g.sync.waitgroup()
  local t0 = g.time.now()
  wg:add(n)
  for _ = 1, n do
    sem:acquire(1)
    g.go(function ()
      assert(g.exec.command("true"):run())
      sem:release(1)
      wg:done()
    end)
  end
  wg:wait()
  return g.time.now() - t0
end

local n = math.tointeger(tonumber(arg[1])) or 100
run(8)   -- warm-up: the first spawn sets up the loop's child watcher
local t = run(n)
print(string.format("RESULT exec ms_total %.1f", t * 1e3))
print(string.format("RESULT exec us_per_process %.0f", t * 1e6 / n))
