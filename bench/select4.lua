-- select4: a 4-way receive select, each channel fed by its own goroutine.
--
-- Four unbuffered channels; one goroutine per channel sends 1, 2, 3, ...
-- on it forever. Main runs selects over the four receives, so each select
-- finds one or more senders parked and takes one of them, whose goroutine
-- then runs again to park with its next value. Each channel's values must
-- arrive in order, none lost or repeated (checked), and with a fair choice
-- every channel is taken. A warm-up of N/20 selects over the same channels
-- runs first, untimed; the senders are abandoned at the end, as in sieve.
-- Compare bench/select.lua (a poll and a fan-in over buffered channels).
-- Same workload as go/select4/main.go.
--
-- Usage: lua5.4 bench/select4.lua [selects, default 200000]
-- Output: RESULT select4 ns_per_select <ns>
local g = require "goroutines"

local now = g.time.now

-- Sends 1, 2, 3, ... on ch, forever.
local function sender (ch)
  local i = 1
  while true do
    ch:send(i)
    i = i + 1
  end
end

local chans = { g.chan(), g.chan(), g.chan(), g.chan() }
for _, ch in ipairs(chans) do g.go(sender, ch) end
local c1, c2, c3, c4 = chans[1], chans[2], chans[3], chans[4]
local got = { 0, 0, 0, 0 }  -- the last value taken from each channel

-- Runs n selects; returns the elapsed wall time in seconds.
local function run (n)
  local t0 = now()
  for _ = 1, n do
    -- The case list is built at every select, as Go's select statement does.
    local k, v, ok = g.select { c1:on_recv(), c2:on_recv(), c3:on_recv(), c4:on_recv() }
    if not ok or v ~= got[k] + 1 then
      error(string.format("select4: channel %s gave %s, %s after %s", tostring(k), tostring(v),
        tostring(ok), tostring(got[k])))
    end
    got[k] = v
  end
  return now() - t0
end

local n = math.tointeger(tonumber(arg[1])) or 200000
local warm = n // 20
run(warm)  -- warm-up: same channels and code path, not measured
local t = run(n)
if got[1] + got[2] + got[3] + got[4] ~= warm + n then
  error(string.format("select4: %d values in %d selects", got[1] + got[2] + got[3] + got[4], warm + n))
end
for k = 1, 4 do
  if n >= 1000 and got[k] == 0 then error("select4: channel " .. k .. " never chosen") end
end
print(string.format("RESULT select4 ns_per_select %.1f", t * 1e9 / n))
