-- select: the cost of a 4-way select, in two settings.
--
-- poll -- one goroutine, no partner. The four cases are a receive from
-- and a send to channel a (capacity 1), a receive from b (always empty)
-- and a send to c (always full). Exactly one case is ready at each select:
-- the send when a is empty, the receive when it is full. This measures
-- select itself: the cases, locking three channels, polling them.
--
-- fanin -- four producer goroutines each send M/4 integers into their own
-- buffered channel (capacity 64); the consumer receives all M values
-- through a 4-way select over the four channels. This adds the producers'
-- sends and the park/wake traffic of a typical fan-in loop.
--
-- Both build the case list at every select, as Go's select statement does
-- and as idiomatic Lua code would. Same workloads as go/select/main.go.
--
-- Usage: lua5.4 bench/select.lua [M, default 1000000]
-- Output:
--   RESULT select ns_per_select_poll <ns>
--   RESULT select ns_per_select_fanin <ns>
local g = require "goroutines"

local now, select = g.time.now, g.select

-- Runs n selects with exactly one ready case; returns the time in seconds.
local function poll (n)
  local a = g.chan(1)
  local b = g.chan(1)  -- stays empty: its receive case is never ready
  local c = g.chan(1)  -- stays full: its send case is never ready
  c:send(0)
  local sum = 0
  local t0 = now()
  for i = 0, n - 1 do
    local k, v = select { a:on_recv(), a:on_send(i), b:on_recv(), c:on_send(i) }
    if k == 1 or k == 3 then sum = sum + v end
  end
  local elapsed = now() - t0
  -- The alternation send, receive, send, ... is deterministic.
  assert(sum == (n // 2) * (n // 2 - 1), "select poll: bad sum " .. sum)
  return elapsed
end

-- Sends the integers 1..m on ch.
local function produce (ch, m)
  for i = 1, m do ch:send(i) end
end

-- Receives n values (n a multiple of 4) from four producers through one
-- select; returns the time in seconds, producers' start included.
local function fanin (n)
  local c1, c2, c3, c4 = g.chan(64), g.chan(64), g.chan(64), g.chan(64)
  local t0 = now()
  g.go(produce, c1, n // 4)
  g.go(produce, c2, n // 4)
  g.go(produce, c3, n // 4)
  g.go(produce, c4, n // 4)
  for _ = 1, n do
    select { c1:on_recv(), c2:on_recv(), c3:on_recv(), c4:on_recv() }
  end
  return now() - t0
end

local n = math.tointeger(tonumber(arg[1])) or 1000000
n = n - n % 4
poll(n // 20)  -- warm-up: same code path, not measured
print(string.format("RESULT select ns_per_select_poll %.1f", poll(n) * 1e9 / n))
fanin(n // 20 // 4 * 4)
print(string.format("RESULT select ns_per_select_fanin %.1f", fanin(n) * 1e9 / n))
