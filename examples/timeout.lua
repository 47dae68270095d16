-- timeout.lua -- time in select: per-call timeouts, first reply wins,
-- cancelling and resetting timers (a debounce), and after_func.

local g = require "goroutines"
local time = g.time
local ms = time.millisecond

-- A fake service: answers after `latency` seconds on a buffered channel,
-- so that an abandoned reply never blocks its goroutine.
local function query(name, latency)
  local reply = g.chan(1)
  g.go(function()
    time.sleep(latency)
    reply:send(name)
  end)
  return reply:receiver()
end

-- 1. A call with a timeout (Go: select { case r := <-c: ... case <-time.After(d): ... }).
local function call(latency, timeout)
  return g.select {
    query("answer", latency):on_recv(function(v) return v end),
    time.after(timeout):on_recv(function() return "timeout" end),
  }
end
print("fast call: " .. call(10 * ms, 50 * ms))
print("slow call: " .. call(100 * ms, 50 * ms))

-- 2. First reply wins among replicas. A replica's case becomes `false`
-- (disabled, Go's nil channel) once it has answered, so the second select
-- waits for the others only.
do
  local replicas = {
    query("replica A", 60 * ms),
    query("replica B", 20 * ms),
    query("replica C", 40 * ms),
  }
  local deadline = time.after(100 * ms)
  local cases = {}
  for i, r in ipairs(replicas) do
    cases[i] = r:on_recv(function(v)
      cases[i] = false
      return v
    end)
  end
  cases[#cases + 1] = deadline:on_recv(function() return "nobody" end)
  print("first reply: " .. g.select(cases))
  print("second reply: " .. g.select(cases))
end

-- 3. Stop a timer before it fires: stop() reports true and nothing is sent.
do
  local t = time.timer(30 * ms)
  print("stopped before firing: " .. tostring(t:stop()))
  local got = g.select {
    t.c:on_recv(function() return "fired" end),
    time.after(60 * ms):on_recv(function() return "silent" end),
  }
  print("after stop the timer is " .. got)
end

-- 4. Debounce with reset(): a burst of 5 events 10 ms apart; the action runs
-- once, 50 ms after the last event.
do
  local events = g.chan()
  g.go(function()
    for i = 1, 5 do
      events:send(i)
      time.sleep(10 * ms)
    end
    events:close()
  end)
  local t = time.timer(time.hour)      -- armed far away until the first event
  local src, last, running = events, nil, true
  while running do
    g.select {
      -- Once the burst is over, src is false: a disabled case.
      src and src:on_recv(function(v, ok)
        if ok then
          last = v
          t:reset(50 * ms)
        else
          src = false
        end
      end) or false,
      t.c:on_recv(function()
        print("debounced: acted once, on event " .. last)
        running = false
      end),
    }
  end
end

-- 5. after_func runs a function in its own goroutine after a delay.
do
  local done = g.chan()
  time.after_func(20 * ms, function()
    print("after_func ran in goroutine " .. g.id())
    done:close()
  end)
  local cancelled = time.after_func(10 * ms, function() print("never printed") end)
  print("cancelled after_func: " .. tostring(cancelled:stop()))
  done:recv()
end
