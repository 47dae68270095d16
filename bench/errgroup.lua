-- errgroup: a group of 10,000 members that each do nothing, then wait.
--
-- Measures grp:go for every member plus the wait, per member, with no
-- limit and with set_limit(100). Same workload as go/errgroup/main.go.
--
-- Usage: lua5.4 bench/errgroup.lua [members, default 10000]
-- Output: RESULT errgroup ns_per_member <ns>
--         RESULT errgroup ns_per_member_limit100 <ns>
local g = require "goroutines"

local function run (n, limit)
  local grp = g.errgroup.new()
  if limit then grp:set_limit(limit) end
  local function member () end
  local t0 = g.time.now()
  for _ = 1, n do grp:go(member) end
  assert(grp:wait() == nil)
  return g.time.now() - t0
end

local n = math.tointeger(tonumber(arg[1])) or 10000
run(n // 10)
run(n // 10, 100)
local best, bestlim = math.huge, math.huge
for _ = 1, 5 do   -- the best of 5: one group is only milliseconds
  best = math.min(best, run(n))
  bestlim = math.min(bestlim, run(n, 100))
end
print(string.format("RESULT errgroup ns_per_member %.1f", best * 1e9 / n))
print(string.format("RESULT errgroup ns_per_member_limit100 %.1f",
                    bestlim * 1e9 / n))
