-- trace: the cost of the execution trace (GOROUTINES_TRACE, g.trace) on
-- pingpong's round trips (two unbuffered hand-offs, two switches each),
-- and how fast the trace is written.
--
-- Runs n round trips untraced, then n traced into a temporary file, and
-- reports both times per round trip, the events the trace holds, and the
-- seconds per million events from g.trace.start to the file written whole
-- (g.trace.stop returns once the writer has drained every thread).
-- Same workload as go/trace/main.go (runtime/trace).
--
-- Usage: lua5.4 bench/trace.lua [round trips, default 200000]
-- Output: RESULT trace ns_per_roundtrip_off <ns>
--         RESULT trace ns_per_roundtrip_traced <ns>
--         RESULT trace events <n>
--         RESULT trace s_per_million_events <s>
local g = require "goroutines"

local now = g.time.now

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
  ping:close()
  return elapsed
end

local n = math.tointeger(tonumber(arg[1])) or 200000
run(n // 20)   -- warm-up, untraced
local off = run(n)
local path = os.tmpname()
local t0 = now()
assert(g.trace.start(path))
local on = run(n)
assert(g.trace.stop())
local total = now() - t0
local f = assert(io.open(path, "rb"))
local _, events = f:read("a"):gsub('{"ph":', "")
f:close()
os.remove(path)
print(string.format("RESULT trace ns_per_roundtrip_off %.1f", off * 1e9 / n))
print(string.format("RESULT trace ns_per_roundtrip_traced %.1f",
                    on * 1e9 / n))
print(string.format("RESULT trace events %d", events))
print(string.format("RESULT trace s_per_million_events %.3f",
                    total / events * 1e6))
