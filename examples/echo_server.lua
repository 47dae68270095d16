-- An echo server with a goroutine per connection, and clients that talk to
-- it, in one program that ends by itself: the clients do their round trips,
-- then a context shuts the server down (the listener closes, which wakes the
-- accept loop; each connection goroutine ends when its peer closes).
--
--   lua5.4 examples/echo_server.lua [clients] [round trips]
local g = require "goroutines"

local nclients = tonumber(arg and arg[1]) or 20
local ntrips = tonumber(arg and arg[2]) or 100

-- Serves one connection: each line comes back as it was sent.
local function serve(conn, conns)
  for line in conn:lines("L") do
    if not conn:write(line) then break end
  end
  conn:close()
  conns:done()
end

-- Accepts until ctx is done, then closes the listener and waits for the
-- connections it still serves.
local function server(ctx, ln, stopped)
  local conns = g.sync.waitgroup()
  g.go(function()
    ctx:done():recv()
    ln:close()                      -- wakes the accept below
  end)
  while true do
    local conn, err = ln:accept()
    if not conn then
      if ctx:err() == nil then print("accept: " .. err) end
      break
    end
    conns:add(1)
    g.go(serve, conn, conns)
  end
  conns:wait()
  stopped:send(true)
end

local function client(addr, id, results)
  local conn = assert(g.net.dial("tcp", addr, 5))
  conn:set_deadline(g.time.now() + 30)   -- a bound on the whole exchange
  for i = 1, ntrips do
    local msg = ("client %d message %d"):format(id, i)
    assert(conn:write(msg, "\n"))
    local echo = assert(conn:read("l"))
    assert(echo == msg, echo)
  end
  conn:close()
  results:send(ntrips)
end

local ln = assert(g.net.listen("tcp", "127.0.0.1:0"))
local ctx, cancel = g.context.with_cancel(g.context.background())
local stopped = g.chan()
g.go(server, ctx, ln, stopped)

local t0 = g.time.now()
local results = g.chan(nclients)
for id = 1, nclients do g.go(client, ln:addr(), id, results) end
local trips = 0
for _ = 1, nclients do trips = trips + results:recv() end
local elapsed = g.time.since(t0)

cancel()                            -- graceful shutdown
stopped:recv()
print(("%d clients, %d round trips in %.3f s (%.0f/s); server stopped")
      :format(nclients, trips, elapsed, trips / elapsed))
