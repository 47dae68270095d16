-- pingpong: round trips between two goroutines over two unbuffered channels.
--
-- The main goroutine sends an integer on ping; the partner goroutine
-- receives it and sends it back on pong. One round trip is therefore two
-- unbuffered channel hand-offs and two goroutine switches.
-- Same workload as go/pingpong/main.go.
--
-- Usage: lua5.4 bench/pingpong.lua [round trips, default 200000]
-- Output: RESULT pingpong ns_per_roundtrip <ns>
local g = require "goroutines"

local now = g.time.now

-- Does n round trips; returns the elapsed wall time in seconds.
local function run (n)
  local ping, pong = g.chan(), g.chan()
  g.go(function ()
    for v in ping:range() do pong:send(v) end
  end)
  local t0 = now()
  for i = 1, n do
    ping:send(i)
    pong:recv()
  end
  local elapsed = now() - t0
  ping:close()  -- the partner's range loop ends
  return elapsed
end

local n = math.tointeger(tonumber(arg[1])) or 200000
run(n // 20)  -- warm-up: same code path, not measured
local t = run(n)
print(string.format("RESULT pingpong ns_per_roundtrip %.1f", t * 1e9 / n))
