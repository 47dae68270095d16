-- xstate_tables: small tables from a parallel goroutine to main.
--
-- A g.parallel producer sends N tables {id = i, name = "x" .. i} on a
-- buffered channel (capacity 1024) and closes it; main receives them with
-- ch:range(), checks every id and, for one table in 1,000, the name. Each
-- table is copied from the worker's state into main's. A warm-up of N/20
-- (which also starts the worker threads) runs first, untimed.
-- Same workload as go/xstate_tables/main.go.
--
-- Usage: lua5.4 bench/xstate_tables.lua [N, default 100000]
-- Output: RESULT xstate_tables msgs_per_sec <N / wall time>
local g = require "goroutines"

local now = g.time.now

local function producer (ch, n)
  for i = 1, n do ch:send({ id = i, name = "x" .. i }) end
  ch:close()
end

-- Moves n tables; returns the elapsed wall time in seconds.
local function run (n)
  local ch = g.chan(1024)
  local t0 = now()
  g.parallel(producer, ch, n)
  local i = 0
  for v in ch:range() do
    i = i + 1
    if v.id ~= i then error("xstate_tables: id " .. tostring(v.id) .. ", want " .. i) end
    if i % 1000 == 0 and v.name ~= "x" .. i then
      error("xstate_tables: bad name " .. tostring(v.name))
    end
  end
  local elapsed = now() - t0
  assert(i == n, "xstate_tables: received " .. i)
  return elapsed
end

local n = math.tointeger(tonumber(arg[1])) or 100000
run(n // 20)  -- warm-up: starts the workers; not measured
local t = run(n)
print(string.format("RESULT xstate_tables msgs_per_sec %.0f", n / t))
