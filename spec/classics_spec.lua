-- Go's classic concurrent programs, written with goroutines, asserting their
-- exact results: the daisy-chain prime sieve, a pipeline with fan-out and
-- fan-in, a worker pool, the timeout pattern, stopping a goroutine through a
-- quit channel, ping-pong.

local g = require "goroutines"

describe("the prime sieve", function()
  local FIRST_100_PRIMES = {
    2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67,
    71, 73, 79, 83, 89, 97, 101, 103, 107, 109, 113, 127, 131, 137, 139, 149,
    151, 157, 163, 167, 173, 179, 181, 191, 193, 197, 199, 211, 223, 227,
    229, 233, 239, 241, 251, 257, 263, 269, 271, 277, 281, 283, 293, 307,
    311, 313, 317, 331, 337, 347, 349, 353, 359, 367, 373, 379, 383, 389,
    397, 401, 409, 419, 421, 431, 433, 439, 443, 449, 457, 461, 463, 467,
    479, 487, 491, 499, 503, 509, 521, 523, 541,
  }

  it("daisy-chains 100 filters and yields the first 100 primes", function()
    -- Send the sequence 2, 3, 4, ... to channel out.
    local function generate(out)
      local i = 2
      while true do out:send(i); i = i + 1 end
    end
    -- Copy the values from in to out, removing those divisible by prime.
    local function filter(input, out, prime)
      while true do
        local i = input:recv()
        if i % prime ~= 0 then out:send(i) end
      end
    end

    local function sieve()
      local ch = g.chan()
      g.go(generate, ch:sender())
      local primes = {}
      for _ = 1, 100 do
        local prime = ch:recv()
        primes[#primes + 1] = prime
        local ch1 = g.chan()
        g.go(filter, ch:receiver(), ch1:sender(), prime)
        ch = ch1
      end
      return primes
    end
    assert.are.same(FIRST_100_PRIMES, sieve())
    -- As in Go, the generator and the filters are left blocked in a send
    -- that nobody will ever receive: they leak, and are found and freed
    -- once the numbers in flight have filled the chain (one state runs its
    -- goroutines in a fixed order: 2000 rounds always settle it).
    for _ = 1, 2000 do g.gosched() end
    local leaks = g.leaks()
    assert.are.equal(101, #leaks)
    for _, r in ipairs(leaks) do assert.are.equal("chan send", r.wait) end
  end)
end)

describe("a pipeline", function()
  it("fans out to three squarers and fans in their results", function()
    local function gen(n)
      local out = g.chan()
      g.go(function()
        for i = 1, n do out:send(i) end
        out:close()
      end)
      return out:receiver()
    end
    local function sq(input)
      local out = g.chan()
      g.go(function()
        for n in input:range() do out:send(n * n) end
        out:close()
      end)
      return out:receiver()
    end
    local function merge(...)
      local out = g.chan()
      local wg = g.sync.waitgroup()
      local inputs = { ... }
      wg:add(#inputs)
      for _, c in ipairs(inputs) do
        g.go(function()
          for v in c:range() do out:send(v) end
          wg:done()
        end)
      end
      g.go(function() wg:wait(); out:close() end)
      return out:receiver()
    end

    local src = gen(100)
    local sum, seen, count = 0, {}, 0
    for v in merge(sq(src), sq(src), sq(src)):range() do
      sum = sum + v
      count = count + 1
      seen[v] = (seen[v] or 0) + 1
    end
    assert.are.equal(338350, sum)  -- 1^2 + ... + 100^2
    assert.are.equal(100, count)
    for i = 1, 100 do assert.are.equal(1, seen[i * i]) end
  end)
end)

describe("a worker pool", function()
  it("processes every job exactly once", function()
    local jobs, results = g.chan(100), g.chan(100)
    local by_worker = {}
    for w = 1, 3 do
      by_worker[w] = 0
      g.go(function()
        for j in jobs:range() do
          g.time.sleep(0.001)
          by_worker[w] = by_worker[w] + 1
          results:send({ job = j, value = j * 2, worker = w })
        end
      end)
    end
    for j = 1, 30 do jobs:send(j) end
    jobs:close()
    local done = {}
    for _ = 1, 30 do
      local r = results:recv()
      assert.are.equal(r.job * 2, r.value)
      done[r.job] = (done[r.job] or 0) + 1
    end
    for j = 1, 30 do assert.are.equal(1, done[j]) end
    assert.are.equal(0, #results)
    -- The sleeping workers overlapped: every one of them took jobs.
    for w = 1, 3 do
      assert.is_true(by_worker[w] > 0, "worker " .. w .. " did nothing")
    end
    assert.are.equal(30, by_worker[1] + by_worker[2] + by_worker[3])
  end)
end)

describe("the timeout pattern", function()
  -- Starts a worker that answers after `delay`, and waits for it at most
  -- `timeout` seconds.  Returns the select's result and the worker's channel.
  local function fetch(delay, timeout)
    local c = g.chan(1)  -- buffered: a late worker does not block forever
    g.go(function() g.time.sleep(delay); c:send("result") end)
    local r = g.select {
      c:on_recv(function(v) return v end),
      g.time.after(timeout):on_recv(function() return "timeout" end),
    }
    return r, c
  end

  it("times out when the worker is slow", function()
    local t0 = g.time.now()
    local r, c = fetch(0.4, 0.03)
    local elapsed = g.time.since(t0)
    assert.are.equal("timeout", r)
    assert.is_true(elapsed >= 0.025 and elapsed < 0.35, tostring(elapsed))
    -- The worker still finishes, into its buffered channel.
    assert.are.equal("result", c:recv())
  end)

  it("gets the result when the worker is fast", function()
    local t0 = g.time.now()
    local r = fetch(0.01, 1.0)
    assert.are.equal("result", r)
    assert.is_true(g.time.since(t0) < 0.9)
  end)
end)

describe("a quit channel", function()
  it("stops a producing goroutine when closed", function()
    local out, quit, done = g.chan(), g.chan(), g.chan()
    g.go(function()
      local i = 0
      while true do
        local stop = g.select {
          out:on_send(i, function() i = i + 1 end),
          quit:on_recv(function() return true end),
        }
        if stop then break end
      end
      done:send(i)
    end)
    local got = {}
    for _ = 1, 10 do got[#got + 1] = out:recv() end
    quit:close()
    assert.are.same({ 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 }, got)
    assert.are.equal(10, done:recv())  -- sent exactly the 10 received
    assert.are.equal("default", g.select { out:on_recv(), default = true })
  end)

  it("stops several goroutines at once", function()
    local quit = g.chan()
    local wg = g.sync.waitgroup()
    local rounds = {}
    wg:add(3)
    for w = 1, 3 do
      rounds[w] = 0
      g.go(function()
        while g.select {
          quit:on_recv(function() return false end),
          default = function() return true end,
        } do
          rounds[w] = rounds[w] + 1
          g.time.sleep(0.001)
        end
        wg:done()
      end)
    end
    g.time.sleep(0.02)
    quit:close()
    wg:wait()
    local after = { rounds[1], rounds[2], rounds[3] }
    g.time.sleep(0.01)
    for w = 1, 3 do
      assert.is_true(rounds[w] > 0, "worker " .. w .. " never ran")
      assert.are.equal(after[w], rounds[w])  -- stopped for good
    end
  end)
end)

describe("ping-pong", function()
  it("two players hit the ball back and forth until main takes it",
     function()
    local table_ = g.chan()
    local hits = { ping = 0, pong = 0 }
    local function player(name)
      while true do
        local ball = table_:recv()
        if ball == nil then return end  -- table closed
        ball.hits = ball.hits + 1
        hits[name] = hits[name] + 1
        g.time.sleep(0.001)
        table_:send(ball)
      end
    end
    g.go(player, "ping")
    g.go(player, "pong")
    table_:send({ hits = 0 })
    g.time.sleep(0.05)
    local ball = table_:recv()
    table_:close()
    assert.is_true(ball.hits >= 2, tostring(ball.hits))
    assert.are.equal(ball.hits, hits.ping + hits.pong)
    assert.is_true(math.abs(hits.ping - hits.pong) <= 1)
  end)
end)
