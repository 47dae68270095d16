-- demo.lua -- goroutines in one screen: go, chan, select, time.
--
-- Three producers feed an unbuffered channel; the main goroutine selects
-- between that data, a ticker and an overall deadline; a wait group closes
-- the channel when the producers are done. Then a request that takes too
-- long is abandoned after a timeout, and a non-blocking select polls.
--
-- Run: make demo

local g = require "goroutines"
local time = g.time

local data = g.chan()                -- unbuffered: a send waits for the receiver
local wg = g.sync.waitgroup()

-- Producer p sends its i-th item at p*40ms + (i-1)*200ms.
local function producer(p)
  time.sleep(p * 0.04)
  for i = 1, 3 do
    data:send(("producer %d, item %d"):format(p, i))
    if i < 3 then time.sleep(0.2) end
  end
  wg:done()
end

for p = 1, 3 do
  wg:add(1)
  g.go(producer, p)
end

-- Go: go func() { wg.Wait(); close(data) }()
g.go(function()
  wg:wait()
  data:close()
end)

print("== select: data, ticker, deadline")
local ticker = time.ticker(0.1)
local deadline = time.after(2.0)     -- not reached: the producers finish first
local items, ticks = 0, 0
local running = true
while running do
  g.select {
    data:on_recv(function(v, ok)
      if ok then
        items = items + 1
        print("  recv  " .. v)
      else
        print("  data closed")
        running = false
      end
    end),
    ticker.c:on_recv(function()
      ticks = ticks + 1
      print("  tick  " .. ticks)
    end),
    deadline:on_recv(function()
      print("  deadline reached")
      running = false
    end),
  }
end
ticker:stop()
print(("%d items, %d ticks"):format(items, ticks))

print("== timeout")
local reply = g.chan(1)              -- buffered: the late reply never blocks
g.go(function()
  time.sleep(0.3)
  reply:send("slow answer")
end)
g.select {
  reply:on_recv(function(v) print("  reply: " .. v) end),
  time.after(0.1):on_recv(function() print("  gave up after 100 ms") end),
}

print("== non-blocking select")
local r = g.select { reply:on_recv(), default = true }
print("  select returned " .. tostring(r))

-- The main chunk ends here: like Go's main, it does not wait for the
-- goroutine that is still sleeping.
print("done")
