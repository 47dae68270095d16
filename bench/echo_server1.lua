-- echo server of the echo benchmark (bench/echo.sh), in one Lua state: main
-- accepts, a g.go goroutine per connection reads what has arrived (up to
-- 64 KiB) and writes it back, until EOF or an error. The twin of
-- go/echoserver.go run with GOMAXPROCS=1. Prints "LISTENING host:port".
--
-- Usage: lua5.4 bench/echo_server1.lua [host:port, default 127.0.0.1:0]
local g = require "goroutines"

local ln = assert(g.net.listen("tcp", arg[1] or "127.0.0.1:0"))

local function serve(conn)
  while true do
    local data = conn:read(65536)
    if not data or not conn:write(data) then break end
  end
  conn:close()
end

io.stdout:write("LISTENING ", ln:addr(), "\n")
io.stdout:flush()
while true do
  local conn, err = ln:accept()
  if conn then g.go(serve, conn)
  else
    io.stderr:write("echo_server1: accept: ", err, "\n")
    g.time.sleep(0.005)   -- EMFILE and the like: back off, go on
  end
end
