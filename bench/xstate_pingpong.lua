-- xstate_pingpong: round trips between main and a parallel goroutine.
--
-- As pingpong.lua, but the partner is started with g.parallel: it runs in
-- a worker Lua state on a worker thread, so each round trip is two
-- unbuffered hand-offs between threads (and two copies of an integer
-- between states). A warm-up of 1/20 of the size (which also starts the
-- worker threads) runs first, untimed.
-- Same workload as go/xstate_pingpong/main.go.
--
-- Usage: lua5.4 bench/xstate_pingpong.lua [round trips, default 200000]
-- Output: RESULT xstate_pingpong us_per_roundtrip <us>
local g = require "goroutines"

local now = g.time.now

local function partner (ping, pong)
  for v in ping:range() do pong:send(v) end
end

-- Does n round trips; returns the elapsed wall time in seconds.
local function run (n)
  local ping, pong = g.chan(), g.chan()
  g.parallel(partner, ping, pong)
  local t0 = now()
  for i = 1, n do
    ping:send(i)
    local v = pong:recv()
    if v ~= i then error("xstate_pingpong: got " .. tostring(v) .. ", want " .. i) end
  end
  local elapsed = now() - t0
  ping:close()  -- the partner's range loop ends
  return elapsed
end

local n = math.tointeger(tonumber(arg[1])) or 200000
run(n // 20)  -- warm-up: starts the workers; not measured
local t = run(n)
print(string.format("RESULT xstate_pingpong us_per_roundtrip %.3f", t * 1e6 / n))
