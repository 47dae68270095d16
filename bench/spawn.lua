-- spawn: N goroutines parked on one channel, then released and awaited.
--
-- Each goroutine marks itself started on a wait group and blocks in a
-- receive on one shared unbuffered channel. When all have started, main
-- samples the resident set size (VmRSS, /proc/self/status); it then closes
-- the channel, which releases every goroutine, and waits for all of them
-- on a second wait group. Same workload as go/spawn/main.go.
--
-- Usage: lua5.4 bench/spawn.lua [N, default 1000000]
-- Output:
--   RESULT spawn us_per_goroutine_<N> <total time / N, in microseconds>
--   RESULT spawn bytes_per_goroutine_<N> <(VmRSS parked - VmRSS before) / N>
local g = require "goroutines"

local now = g.time.now

-- Returns a field of /proc/self/status ("VmRSS", "VmHWM") in kB, or 0.
local function status_kb (field)
  local f = io.open("/proc/self/status", "r")
  if not f then return 0 end
  local s = f:read("a")
  f:close()
  return tonumber(s:match(field .. ":%s*(%d+)")) or 0
end

local n = math.tointeger(tonumber(arg[1])) or 1000000

collectgarbage()
collectgarbage()
local base = status_kb("VmRSS")

local ch = g.chan()
local started, done = g.sync.waitgroup(), g.sync.waitgroup()
started:add(n)
done:add(n)

-- One function shared by all goroutines: no closure per goroutine.
local function worker ()
  started:done()
  ch:recv()  -- parked here until main closes ch
  done:done()
end

local t0 = now()
for _ = 1, n do g.go(worker) end
started:wait()
-- Every goroutine has started; let any that are between started:done()
-- and the receive reach it before memory is sampled (as in the Go version;
-- in one state the last one has already parked when main resumes).
g.gosched()
local spawn_phase = now() - t0
local parked = status_kb("VmRSS")  -- not timed

local t1 = now()
ch:close()
done:wait()
local total = spawn_phase + (now() - t1)

print(string.format("RESULT spawn us_per_goroutine_%d %.3f", n, total * 1e6 / n))
print(string.format("RESULT spawn bytes_per_goroutine_%d %.0f", n,
                    (parked - base) * 1024 / n))
