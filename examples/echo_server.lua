-- An echo server with a goroutine per connection and a graceful shutdown:
-- on SIGINT (Ctrl-C) or SIGTERM a context is canceled, the server stops
-- accepting, lets the connections still open finish for a grace period,
-- then closes those left, and the program exits with status 0.
--
--   lua5.4 examples/echo_server.lua serve [address] [grace seconds]
--       serves until SIGINT (address 127.0.0.1:0 picks a port, grace 5 s);
--       try it with `nc 127.0.0.1 PORT` in another terminal
--   lua5.4 examples/echo_server.lua [clients] [round trips]
--       a demo that ends by itself: the server, and clients that talk to
--       it; when they are done, the demo cancels the context itself, as
--       the signal would
local g = require "goroutines"

io.stdout:setvbuf("line")

-- Serves one connection: each line comes back as it was sent, until the
-- client closes it (EOF) or the server does (after the grace period).
local function serve(conn, live, conns)
  while true do
    local line = conn:read("L")
    if not line or not conn:write(line) then break end
  end
  conn:close()
  live[conn] = nil
  conns:done()
end

local function count(live)
  local n = 0
  for _ in pairs(live) do n = n + 1 end
  return n
end

local function plural(n, what)
  return ("%d %s%s"):format(n, what, n == 1 and "" or "s")
end

-- Accepts until ctx is done, then closes the listener, waits up to grace
-- seconds for the connections still open, and closes those left. Returns
-- how many connections it served.
local function server(ctx, ln, grace)
  local conns, live, served = g.sync.waitgroup(), {}, 0
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
    served = served + 1
    live[conn] = true
    conns:add(1)
    g.go(serve, conn, live, conns)
  end
  print(("stopped accepting; waiting up to %g s for %s")
        :format(grace, plural(count(live), "connection")))
  local finished = g.chan()
  g.go(function() conns:wait(); finished:close() end)
  g.select {
    finished:on_recv(),
    g.time.after(grace):on_recv(function()
      print("grace period over: closing " .. plural(count(live), "connection"))
      for conn in pairs(live) do conn:close() end   -- wakes their reads
    end),
  }
  conns:wait()
  return served
end

-- A context canceled by the first SIGINT or SIGTERM. The notification
-- stops there: a second SIGINT during the grace period ends the program at
-- once (the signal's default action, as after Go's signal.Stop).
local function signal_context()
  local ctx, cancel = g.context.with_cancel(g.context.background())
  local sig = g.chan(1)
  g.signal.notify(sig, "SIGINT", "SIGTERM")
  g.go(function()
    g.select {
      sig:on_recv(function(name) print("got " .. name) end),
      ctx:done():on_recv(),
    }
    g.signal.stop(sig)
    cancel()
  end)
  return ctx, cancel
end

local function client(addr, id, ntrips, results)
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

if arg[1] == "serve" then
  local ln = assert(g.net.listen("tcp", arg[2] or "127.0.0.1:0"))
  local ctx = signal_context()
  print("listening on " .. ln:addr())
  local served = server(ctx, ln, tonumber(arg[3]) or 5)
  print("server stopped: " .. plural(served, "connection") .. " served")
else
  local nclients = tonumber(arg[1]) or 20
  local ntrips = tonumber(arg[2]) or 100
  local ln = assert(g.net.listen("tcp", "127.0.0.1:0"))
  local ctx, cancel = signal_context()
  local stopped = g.chan(1)
  g.go(function() stopped:send(server(ctx, ln, 5)) end)
  local t0 = g.time.now()
  local results = g.chan(nclients)
  for id = 1, nclients do g.go(client, ln:addr(), id, ntrips, results) end
  local trips = 0
  for _ = 1, nclients do trips = trips + results:recv() end
  local elapsed = g.time.since(t0)
  cancel()                          -- what SIGINT does in "serve"
  local served = stopped:recv()
  print(("%d clients, %d round trips in %.3f s (%.0f/s); %s served")
        :format(nclients, trips, elapsed, trips / elapsed,
                plural(served, "connection")))
end
