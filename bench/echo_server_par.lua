-- echo server of the echo benchmark (bench/echo.sh), over every core: main
-- accepts; g.gomaxprocs() long-lived g.parallel servers each receive conns
-- on a channel of their own (a conn moves with the value: SPEC, conns cross
-- states by move) and serve each with a g.go goroutine in their state, by
-- the loop of echo_server1.lua. Main deals the conns round-robin. The twin
-- of go/echoserver.go at the default GOMAXPROCS. Prints "LISTENING
-- host:port".
--
-- Usage: lua5.4 bench/echo_server_par.lua [host:port, default 127.0.0.1:0]
local g = require "goroutines"

local ln = assert(g.net.listen("tcp", arg[1] or "127.0.0.1:0"))

-- Runs in a worker state: copied there by the transfer rules.
local function server(conns)
  local go = require("goroutines").go
  local function serve(conn)
    while true do
      local data = conn:read(65536)
      if not data or not conn:write(data) then break end
    end
    conn:close()
  end
  for conn in conns:range() do go(serve, conn) end
end

local chans, n, k = {}, g.gomaxprocs(), 0
for i = 1, n do
  chans[i] = g.chan(64)
  g.parallel(server, chans[i]:receiver())
end

io.stdout:write("LISTENING ", ln:addr(), "\n")
io.stdout:flush()
while true do
  local conn, err = ln:accept()
  if conn then
    k = k % n + 1
    chans[k]:send(conn)
  else
    io.stderr:write("echo_server_par: accept: ", err, "\n")
    g.time.sleep(0.005)   -- EMFILE and the like: back off, go on
  end
end
