-- pipeline.lua -- Go's pipeline pattern: stages connected by channels,
-- fan-out, fan-in, and cancellation through a done channel.
-- (After "Go Concurrency Patterns: Pipelines and cancellation".)

local g = require "goroutines"

-- Each stage returns the receive-only view of its output channel and closes
-- that channel when its input is exhausted or done is closed.

local function gen(done, ...)
  local out = g.chan()
  local nums = { ... }
  g.go(function()
    for _, n in ipairs(nums) do
      local sent = g.select {
        out:on_send(n, function() return true end),
        done:on_recv(function() return false end),
      }
      if not sent then break end
    end
    out:close()
  end)
  return out:receiver()
end

local function sq(done, input)
  local out = g.chan()
  g.go(function()
    for n in input:range() do
      local sent = g.select {
        out:on_send(n * n, function() return true end),
        done:on_recv(function() return false end),
      }
      if not sent then break end
    end
    out:close()
  end)
  return out:receiver()
end

-- merge: fan-in of several channels into one.
local function merge(done, ...)
  local out = g.chan()
  local wg = g.sync.waitgroup()
  local function forward(c)
    for n in c:range() do
      local sent = g.select {
        out:on_send(n, function() return true end),
        done:on_recv(function() return false end),
      }
      if not sent then break end
    end
    wg:done()
  end
  local inputs = { ... }
  wg:add(#inputs)
  for _, c in ipairs(inputs) do g.go(forward, c) end
  g.go(function()
    wg:wait()
    out:close()
  end)
  return out:receiver()
end

-- 1. Run a pipeline to completion: gen -> two sq workers -> merge.
do
  local done = g.chan()
  local input = gen(done, 1, 2, 3, 4, 5, 6)
  local results = {}
  for v in merge(done, sq(done, input), sq(done, input)):range() do
    results[#results + 1] = v
  end
  table.sort(results)   -- the two workers may interleave in any order
  print("squares: " .. table.concat(results, " "))
  done:close()
end

-- 2. Cancel early: take one value, then close done; every stage returns.
do
  local done = g.chan()
  local input = gen(done, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
  local out = merge(done, sq(done, input), sq(done, input))
  local first = out:recv()
  print("first value: " .. first)
  print("goroutines before cancel: " .. g.numgoroutine())
  done:close()
  g.time.sleep(0.01)     -- let the stages see done and return
  print("goroutines after cancel: " .. g.numgoroutine())
end

-- 3. Direction views: the pipeline's output cannot be sent to or closed.
do
  local out = gen(g.chan(), 1)
  print(select(2, pcall(out.send, out, 42)))
  print(select(2, pcall(out.close, out)))
end
