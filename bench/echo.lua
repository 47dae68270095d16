-- echo: TCP round trips of 64 bytes over loopback, a goroutine per
-- connection on the server side, C client connections doing M round trips
-- each, server and clients in one Lua state (one thread).
-- Same workload as go/echo/main.go (which runs with GOMAXPROCS=1).
--
-- Usage: lua5.4 bench/echo.lua [connections, default 100] [round trips, 200]
-- Output: RESULT echo roundtrips_per_s <n>
--         RESULT echo p99_latency_us <us>
local g = require "goroutines"

local now = g.time.now
local C = math.tointeger(tonumber(arg[1])) or 100
local M = math.tointeger(tonumber(arg[2])) or 200
local MSG = ("x"):rep(64)

local ln = assert(g.net.listen("tcp", "127.0.0.1:0"))
g.go(function()
  while true do
    local conn = ln:accept()
    if not conn then return end
    g.go(function()
      while true do
        local data = conn:read(64)
        if not data or not conn:write(data) then break end
      end
      conn:close()
    end)
  end
end)

-- Each client does m round trips; its latencies go into lat.
local function client(m, lat, done)
  local conn = assert(g.net.dial("tcp", ln:addr()))
  for _ = 1, m do
    local t0 = now()
    assert(conn:write(MSG))
    local got = 0
    while got < 64 do got = got + #assert(conn:read(64 - got)) end
    lat[#lat + 1] = now() - t0
  end
  conn:close()
  done:send(true)
end

local function run(c, m)
  local lat, done = {}, g.chan(c)
  local t0 = now()
  for _ = 1, c do g.go(client, m, lat, done) end
  for _ = 1, c do done:recv() end
  return now() - t0, lat
end

run(10, 20)   -- warm-up
local elapsed, lat = run(C, M)
table.sort(lat)
print(("RESULT echo roundtrips_per_s %.0f"):format(C * M / elapsed))
print(("RESULT echo p99_latency_us %.1f"):format(lat[math.ceil(#lat * 0.99)] * 1e6))
ln:close()
