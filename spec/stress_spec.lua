-- Stress across states (SPEC "Runtime model"): many parallel goroutines
-- and goroutines of main meeting on shared channels, buffered and not,
-- with select, close and timeouts. Every value is delivered exactly once,
-- close wakes every waiter of every state, and nothing hangs: every wait
-- is bounded. Sizes are modest: the file also runs under ThreadSanitizer.

local g = require "goroutines"
local h = require "spec.helpers"

-- Busted runs this file with an environment table of its own. A function
-- whose _ENV is not the globals table takes that table along, copied, when
-- it crosses to another state: run the file with the real globals instead.
local describe, it, assert = describe, it, assert
local _ENV = _G

local LIMIT = 60   -- seconds any single wait may take before the test fails

local recv_within = h.recv_within

-- Checks that counts (value -> times seen) holds every value 1..n once.
local function exactly_once(counts, n)
  local missing, extra, total = {}, {}, 0
  for v = 1, n do
    local c = counts[v] or 0
    if c == 0 then missing[#missing + 1] = v
    elseif c > 1 then extra[#extra + 1] = v end
  end
  for _, c in pairs(counts) do total = total + c end
  assert.are.same({}, missing, "values never received")
  assert.are.same({}, extra, "values received more than once")
  assert.are.equal(n, total)
end

-- Receives from every channel of chs with select until all are closed.
-- Returns the values received, or "timeout" after `limit` seconds.
local function consume(chs, limit)
  local seen, open = {}, #chs
  local cases = {}
  for k, c in ipairs(chs) do
    cases[k] = c:on_recv(function(v, ok)
      if ok then seen[#seen + 1] = v
      else cases[k] = false; open = open - 1 end   -- disable a closed case
    end)
  end
  local deadline = g.time.timer(limit)
  cases[#chs + 1] = deadline.c:on_recv(function() open = -1 end)
  while open > 0 do g.select(cases) end
  deadline:stop()
  return open == 0 and seen or "timeout"
end

describe("many producers and consumers across states", function()
  it("deliver every value exactly once over shared channels", function()
    local NP, NV = 8, 2000
    local chs = { g.chan(0), g.chan(16), g.chan(0), g.chan(64) }
    local wg = g.sync.waitgroup()
    wg:add(NP)
    for p = 1, NP do
      g.parallel(function(p, chs, wg)
        for i = 1, NV do
          local v = (p - 1) * NV + i
          if p % 2 == 0 then
            chs[i % #chs + 1]:send(v)
          else   -- select picks one of two channels: sent exactly once
            local a, b = chs[i % #chs + 1], chs[(i + 1) % #chs + 1]
            g.select { a:on_send(v), b:on_send(v) }
          end
        end
        wg:done()
      end, p, chs, wg)
    end
    g.go(function()
      wg:wait()
      for _, c in ipairs(chs) do c:close() end
    end)
    local results = g.chan(4)
    for k = 1, 4 do
      local run = k <= 2 and g.parallel or g.go
      run(function(chs, results) results:send(consume(chs, LIMIT)) end,
          chs, results)
    end
    local counts = {}
    for _ = 1, 4 do
      local seen = recv_within(results, LIMIT + 10)
      assert.are.equal("table", type(seen), seen)
      for _, v in ipairs(seen) do counts[v] = (counts[v] or 0) + 1 end
    end
    exactly_once(counts, NP * NV)
  end)

  it("deliver tables intact through chains of parallel goroutines",
     function()
    -- main -> stage 1 -> stage 2 -> main, each stage a parallel goroutine
    -- with its own copy of every table.
    local N = 1000
    local a, b, c = g.chan(8), g.chan(), g.chan(8)
    local function stage(inc, out, k)
      for t in inc:range() do
        t.path[#t.path + 1] = k
        out:send(t)
      end
      out:close()
    end
    g.parallel(stage, a, b, 1)
    g.parallel(stage, b, c, 2)
    g.go(function()
      for i = 1, N do a:send({ id = i, path = {} }) end
      a:close()
    end)
    local counts, bad = {}, 0
    local deadline = g.time.timer(LIMIT)
    while true do
      local t, ok = g.select {
        c:on_recv(function(v, ok) return v, ok end),
        deadline.c:on_recv(function() error("timed out") end),
      }
      if not ok then deadline:stop(); break end
      if not (t.path[1] == 1 and t.path[2] == 2 and #t.path == 2) then
        bad = bad + 1
      end
      counts[t.id] = (counts[t.id] or 0) + 1
    end
    assert.are.equal(0, bad)
    exactly_once(counts, N)
  end)

  it("keep a mutex-protected total right under contention", function()
    local N, EACH = 6, 100
    local m, wg = g.sync.mutex(), g.sync.waitgroup()
    local box = g.chan(1)
    box:send(0)
    wg:add(N + 2)
    local function add(m, wg, box, n)
      for _ = 1, n do
        m:lock()
        local v = box:recv()
        if v % 7 == 0 then g.gosched() end
        box:send(v + 1)
        m:unlock()
      end
      wg:done()
    end
    for _ = 1, N do g.parallel(add, m, wg, box, EACH) end
    g.go(add, m, wg, box, EACH)
    g.go(add, m, wg, box, EACH)
    local done = g.chan()
    g.go(function() wg:wait(); done:close() end)
    recv_within(done, LIMIT)
    assert.are.equal((N + 2) * EACH, box:recv())
  end)

  it("ping-pong on unbuffered channels between states", function()
    local N = 2000
    local ping, pong, res = g.chan(), g.chan(), g.chan()
    -- Two parallel goroutines play with each other...
    g.parallel(function(ping, pong, n)
      for i = 1, n do
        ping:send(i)
        if pong:recv() ~= i + 1 then error("wrong pong") end
      end
      ping:close()
    end, ping, pong, N)
    g.parallel(function(ping, pong, res)
      local count = 0
      for v in ping:range() do count = count + 1; pong:send(v + 1) end
      res:send(count)
    end, ping, pong, res)
    -- ...while main plays with a third.
    local a, b = g.chan(), g.chan()
    g.parallel(function(a, b)
      for v in a:range() do b:send(v * 2) end
      b:close()
    end, a, b)
    local sum = 0
    for i = 1, N do
      a:send(i)
      sum = sum + recv_within(b, LIMIT)
    end
    a:close()
    assert.are.same({ nil, false }, { recv_within(b, LIMIT) })
    assert.are.equal(N * (N + 1), sum)
    assert.are.equal(N, (recv_within(res, LIMIT)))
  end)

  it("start 500 short parallel goroutines that all report", function()
    local N = 500
    local ch = g.chan(16)
    for i = 1, N do g.parallel(function(c, v) c:send(v) end, ch, i) end
    local counts = {}
    for _ = 1, N do
      local v = recv_within(ch, LIMIT)
      counts[v] = (counts[v] or 0) + 1
    end
    exactly_once(counts, N)
  end)
end)

describe("buffered channels shared by several states", function()
  -- Producers in workers and in main send p * 2^20 + i for i = 1..NV on
  -- one buffered channel; consumers in workers and in main receive with
  -- recv, range or select until it is closed. Every value must arrive
  -- once, and each consumer must see each producer's values in the order
  -- they were sent (a FIFO channel keeps it for any subsequence). Small
  -- capacities make the ring wrap, fill and drain all the time, so that
  -- receivers and senders park and are woken between fast operations.
  local SHIFT = 1 << 20

  local function producer(ch, p, nv, wg)
    for i = 1, nv do ch:send(p * SHIFT + i) end
    wg:done()
  end

  -- Returns the values received, or an error message: a value out of its
  -- producer's order, or a length outside 0..cap.
  local function consumer(ch, how, res)
    local g = require "goroutines"
    local got, last, cap = {}, {}, ch:cap()
    local function take(v)
      local p, i = v // SHIFT, v % SHIFT
      if i <= (last[p] or 0) then
        return string.format("producer %d: %d after %d", p, i, last[p])
      end
      last[p] = i
      got[#got + 1] = v
      local n = #ch
      if n < 0 or n > cap then return "len " .. n .. " outside 0.." .. cap end
    end
    local err
    if how == "range" then
      for v in ch:range() do err = err or take(v) end
    elseif how == "select" then
      local open = true
      local case = ch:on_recv(function(v, ok)
        if ok then err = err or take(v) else open = false end
      end)
      while open do g.select { case } end
    else
      while true do
        local v, ok = ch:recv()
        if not ok then break end
        err = err or take(v)
      end
    end
    res:send(err or got)
  end

  for _, cap in ipairs { 1, 3, 64 } do
    it("deliver each value once and in each producer's order, cap " .. cap,
       function()
      local NP, NV = 5, 3000
      local ch, res, wg = g.chan(cap), g.chan(5), g.sync.waitgroup()
      wg:add(NP)
      for p = 1, NP do
        local run = p <= 3 and g.parallel or g.go
        run(producer, ch, p, NV, wg)
      end
      g.go(function() wg:wait(); ch:close() end)
      local hows = { "recv", "range", "select", "recv", "range" }
      for k = 1, 5 do
        local run = k <= 3 and g.parallel or g.go
        run(consumer, ch, hows[k], res)
      end
      local counts = {}
      for _ = 1, 5 do
        local got = recv_within(res, LIMIT)
        assert.are.equal("table", type(got), got)
        for _, v in ipairs(got) do
          local p, i = v // SHIFT, v % SHIFT
          local k = (p - 1) * NV + i
          counts[k] = (counts[k] or 0) + 1
        end
      end
      exactly_once(counts, NP * NV)
      assert.are.equal(0, #ch)
    end)
  end

  it("keep values sent before close for receivers in every state", function()
    -- Producers race the close: what a send put in before close is
    -- received, a send after it raises, and nothing else comes out.
    local NP, NV = 3, 200000
    local ch, res, sent = g.chan(8), g.chan(4), g.chan(NP)
    for p = 1, NP do
      g.parallel(function(ch, p, nv, sent)
        local n = 0
        for i = 1, nv do
          if not pcall(ch.send, ch, p * (1 << 20) + i) then break end
          n = i
        end
        sent:send(n)
      end, ch, p, NV, sent)
    end
    g.parallel(consumer, ch, "recv", res)
    g.go(consumer, ch, "range", res)
    g.go(function()   -- while they send (each stops at its first error)
      g.time.sleep(0.005)
      ch:close()
    end)
    local want, counts = 0, {}
    for _ = 1, NP do want = want + recv_within(sent, LIMIT) end
    for _ = 1, 2 do
      local got = recv_within(res, LIMIT)
      assert.are.equal("table", type(got), got)
      for _, v in ipairs(got) do counts[v] = (counts[v] or 0) + 1 end
    end
    local total = 0
    for _, c in pairs(counts) do
      assert.are.equal(1, c)
      total = total + c
    end
    assert.are.equal(want, total)
  end)
end)

describe("close across states", function()
  it("wakes every receiver parked in select, in every state", function()
    for _ = 1, 10 do
      local ch, other, res = g.chan(), g.chan(), g.chan(8)
      local ready = g.sync.waitgroup()
      ready:add(8)
      local function waiter(ch, other, res, ready, limit)
        ready:done()
        local t = g.time.timer(limit)
        local got = g.select {
          other:on_recv(function() return "other" end),
          ch:on_recv(function(v, ok)
            return (v == nil and ok == false) and "closed" or "value"
          end),
          t.c:on_recv(function() return "timeout" end),
        }
        t:stop()
        res:send(got)
      end
      for k = 1, 8 do
        local run = k % 2 == 0 and g.parallel or g.go
        run(waiter, ch, other, res, ready, LIMIT)
      end
      ready:wait()
      g.time.sleep(0.005)   -- let them park
      ch:close()
      for _ = 1, 8 do
        assert.are.equal("closed", (recv_within(res, LIMIT + 10)))
      end
    end
  end)

  it("wakes every sender parked in select with 'send on closed channel'",
     function()
    for _ = 1, 5 do
      local ch, res = g.chan(), g.chan(6)
      local ready = g.sync.waitgroup()
      ready:add(6)
      local function sender(ch, res, ready, limit)
        ready:done()
        local t = g.time.timer(limit)
        local ok, err = pcall(g.select, { ch:on_send("x"), t.c:on_recv() })
        t:stop()
        res:send(ok and "no error" or err)
      end
      for k = 1, 6 do
        local run = k % 2 == 0 and g.parallel or g.go
        run(sender, ch, res, ready, LIMIT)
      end
      ready:wait()
      g.time.sleep(0.005)
      ch:close()
      for _ = 1, 6 do
        local err = recv_within(res, LIMIT + 10)
        assert.is_truthy(string.find(err, "send on closed channel", 1, true),
                         err)
      end
    end
  end)

  it("lets buffered values drain first, then reports closed, to all states",
     function()
    local ch, res = g.chan(100), g.chan(4)
    for i = 1, 100 do ch:send(i) end
    ch:close()
    local function drain(ch, res)
      local got = {}
      while true do
        local v, ok = ch:recv()
        if not ok then break end
        got[#got + 1] = v
      end
      res:send(got)
    end
    g.parallel(drain, ch, res)
    g.parallel(drain, ch, res)
    g.go(drain, ch, res)
    g.go(drain, ch, res)
    local counts = {}
    for _ = 1, 4 do
      for _, v in ipairs(recv_within(res, LIMIT)) do
        counts[v] = (counts[v] or 0) + 1
      end
    end
    exactly_once(counts, 100)
  end)
end)

describe("select with time.after across states", function()
  it("times out while nothing comes, then receives each value once",
     function()
    local NC, NV = 4, 1000
    local ch, timedout, res = g.chan(), g.chan(NC), g.chan(NC)
    local function consumer(ch, timedout, res)
      local seen, timeouts, told = {}, 0, false
      while true do
        local v, ok = g.select {
          ch:on_recv(function(v, ok) return v, ok end),
          g.time.after(0.01):on_recv(function() return "timeout", true end),
        }
        if v == "timeout" then
          timeouts = timeouts + 1
          if not told then timedout:send(true); told = true end
        elseif not ok then
          break
        else
          seen[#seen + 1] = v
        end
      end
      res:send({ seen = seen, timeouts = timeouts })
    end
    for k = 1, NC do
      local run = k <= NC - 1 and g.parallel or g.go
      run(consumer, ch, timedout, res)
    end
    -- Nothing is sent until every consumer has timed out at least once.
    for _ = 1, NC do assert.is_true((recv_within(timedout, LIMIT))) end
    for i = 1, NV do
      ch:send(i)
      if i % 100 == 0 then g.time.sleep(0.02) end   -- gaps: more timeouts
    end
    ch:close()
    local counts = {}
    for _ = 1, NC do
      local r = recv_within(res, LIMIT)
      assert.is_true(r.timeouts >= 1)
      for _, v in ipairs(r.seen) do counts[v] = (counts[v] or 0) + 1 end
    end
    exactly_once(counts, NV)
  end)

  it("a timeout case never steals a value: senders time out instead",
     function()
    -- Parallel senders offer each value with a timeout and retry until a
    -- receiver takes it; the receiver in main is slow at times.
    local NS, NV = 3, 300
    local ch, res = g.chan(), g.chan(NS)
    for s = 1, NS do
      g.parallel(function(ch, res, s, n)
        local retries = 0
        for i = 1, n do
          local v = (s - 1) * n + i
          while not g.select {
            ch:on_send(v, function() return true end),
            g.time.after(0.002):on_recv(function() return false end),
          } do retries = retries + 1 end
        end
        res:send(retries)
      end, ch, res, s, NV)
    end
    local counts = {}
    for k = 1, NS * NV do
      local v = recv_within(ch, LIMIT)
      counts[v] = (counts[v] or 0) + 1
      if k % 150 == 0 then g.time.sleep(0.01) end
    end
    local retries = 0
    for _ = 1, NS do retries = retries + recv_within(res, LIMIT) end
    assert.is_true(retries >= 1)
    exactly_once(counts, NS * NV)
    assert.are.equal("default", g.select { ch:on_recv(), default = true })
  end)
end)
