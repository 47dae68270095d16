-- worker_pool.lua -- a fixed pool of workers draining a job queue, after
-- Go by Example's "Worker Pools", plus a mutex-guarded shared tally and
-- errors returned as values.

local g = require "goroutines"
local time = g.time

local jobs = g.chan(100)        -- buffered: the producer never waits
local results = g.chan(100)
local wg = g.sync.waitgroup()

-- The tally is a plain Lua table shared by the workers. Goroutines of one
-- state run one at a time and switch when one blocks (or computes for long),
-- so an update that blocks half-way (the sleep below) needs the mutex.
local tally = { jobs = 0, busy = 0, maxbusy = 0 }
local mu = g.sync.mutex()

local function worker(id, jobq, out)
  for j in jobq:range() do
    mu:lock()
    tally.busy = tally.busy + 1
    tally.maxbusy = math.max(tally.maxbusy, tally.busy)
    time.sleep(0.001)            -- blocking while holding the lock
    tally.jobs = tally.jobs + 1
    tally.busy = tally.busy - 1
    mu:unlock()

    time.sleep(0.05)             -- the "work"
    local ok, res = pcall(function()
      if j == 7 then error("job 7 is cursed", 0) end
      return j * 10
    end)
    out:send({ worker = id, job = j, ok = ok, value = res })
  end
  wg:done()
end

local t0 = time.now()
for w = 1, 3 do
  wg:add(1)
  -- Workers get direction views: they may only receive jobs and send results.
  g.go(worker, w, jobs:receiver(), results:sender())
end

for j = 1, 9 do jobs:send(j) end
jobs:close()

g.go(function()
  wg:wait()
  results:close()
end)

local byjob = {}
for r in results:range() do byjob[r.job] = r end
for j = 1, 9 do
  local r = byjob[j]
  if r.ok then
    print(("job %d -> %d"):format(j, r.value))
  else
    print(("job %d failed: %s"):format(j, r.value))
  end
end

-- 9 jobs of ~50 ms on 3 workers take ~3 rounds, not 9.
local elapsed = time.since(t0)
print(("jobs counted: %d, most workers inside the lock at once: %d"):format(
  tally.jobs, tally.maxbusy))
print(("3 workers, 9 jobs: %s"):format(elapsed < 0.3 and "ran concurrently"
  or ("took %.2f s"):format(elapsed)))
