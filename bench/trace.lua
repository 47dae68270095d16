-- trace: the cost of the execution trace (GOROUTINES_TRACE, g.trace) on
-- pingpong's round trips (two unbuffered hand-offs, two switches each),
-- and how fast the trace is written.
--
-- Runs n round trips untraced, then n traced into a temporary file, five
-- times alternately (so that a change of the machine's load falls on both),
-- and reports the medians: both times per round trip, the ratio of each
-- traced run to the untraced one before it, the events a trace holds, and
-- the seconds per million events from g.trace.start to the file written
-- whole (g.trace.stop returns once the writer has drained every thread).
-- Same workload as go/trace/main.go (runtime/trace).
--
-- Usage: lua5.4 bench/trace.lua [round trips, default 200000]
-- Output: RESULT trace ns_per_roundtrip_off <ns>
--         RESULT trace ns_per_roundtrip_traced <ns>
--         RESULT trace traced_over_off <ratio>
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
local pairs_run = 5   -- untraced and traced runs, alternately
run(n // 20)   -- warm-up, untraced

local function median (t)
  local c = table.move(t, 1, #t, 1, {})
  table.sort(c)
  local m = #c // 2
  return #c % 2 == 1 and c[m + 1] or (c[m] + c[m + 1]) / 2
end

local offs, ons, ratios, perm = {}, {}, {}, {}
local events
for i = 1, pairs_run do
  offs[i] = run(n)
  local path = os.tmpname()
  local t0 = now()
  assert(g.trace.start(path))
  ons[i] = run(n)
  assert(g.trace.stop())
  local total = now() - t0
  local f = assert(io.open(path, "rb"))
  local _, count = f:read("a"):gsub('{"ph":', "")
  f:close()
  os.remove(path)
  events = count
  ratios[i] = ons[i] / offs[i]
  perm[i] = total / count * 1e6
end
print(string.format("RESULT trace ns_per_roundtrip_off %.1f",
                    median(offs) * 1e9 / n))
print(string.format("RESULT trace ns_per_roundtrip_traced %.1f",
                    median(ons) * 1e9 / n))
print(string.format("RESULT trace traced_over_off %.2f", median(ratios)))
print(string.format("RESULT trace events %d", events))
print(string.format("RESULT trace s_per_million_events %.3f", median(perm)))
