-- SPEC "time": after, sleep, tick, timer (stop, reset), ticker, after_func,
-- now/since, the duration constants.  Timing checks allow a tolerance band
-- (as libdill's time_assert): early by at most a few milliseconds, late by
-- a lot, because the machine may be loaded (or running valgrind).

local g = require "goroutines"
local h = require "spec.helpers"
local time = g.time

-- Asserts that a wait meant to take d seconds took `elapsed`. Under
-- valgrind (SPEC_TIME_SCALE), which runs one thread at a time, lateness
-- says nothing: only earliness is checked strictly.
local LATE = 0.45 * (tonumber(os.getenv("SPEC_TIME_SCALE")) or 1)
local function took(d, elapsed)
  assert.is_true(elapsed >= d - 0.005,
                 ("%.4f s is too early for %.3f s"):format(elapsed, d))
  assert.is_true(elapsed < d + LATE,
                 ("%.4f s is too late for %.3f s"):format(elapsed, d))
end

-- True when ch holds no value right now (a non-blocking receive).
local function empty(ch)
  return g.select { ch:on_recv(), default = true } == "default"
end

describe("the duration constants", function()
  it("are in seconds", function()
    assert.are.equal(1, time.second)
    assert.are.equal(0.001, time.millisecond)
    assert.are.equal(1e-6, time.microsecond)
    assert.are.equal(1e-9, time.nanosecond)
    assert.are.equal(60, time.minute)
    assert.are.equal(3600, time.hour)
  end)
end)

describe("time.now and time.since", function()
  it("now is a float number of seconds that never goes back", function()
    local a = time.now()
    assert.are.equal("float", math.type(a))
    local prev = a
    for _ = 1, 1000 do
      local t = time.now()
      assert.is_true(t >= prev)
      prev = t
    end
  end)

  it("now advances with a sleep, and since measures it", function()
    local t0 = time.now()
    time.sleep(0.02)
    local t1 = time.now()
    local s = time.since(t0)
    took(0.02, t1 - t0)
    assert.is_true(s >= t1 - t0)
    assert.is_true(s < t1 - t0 + 0.1)
    assert.are.equal("float", math.type(s))
  end)
end)

describe("time.sleep", function()
  it("blocks main for the duration", function()
    took(0.05, h.timed(time.sleep, 0.05))
  end)

  it("blocks a goroutine for the duration", function()
    local done = g.chan()
    g.go(function() done:send((h.timed(time.sleep, 0.05))) end)
    took(0.05, done:recv())
  end)

  it("accepts durations written with the constants", function()
    took(0.03, h.timed(time.sleep, 30 * time.millisecond))
  end)

  it("returns at once for zero or a negative duration", function()
    assert.is_true(h.timed(time.sleep, 0) < 0.2)
    assert.is_true(h.timed(time.sleep, -1) < 0.2)
  end)

  it("blocks only the goroutine: sleepers overlap", function()
    local wg = g.sync.waitgroup()
    wg:add(5)
    for _ = 1, 5 do
      g.go(function() time.sleep(0.1); wg:done() end)
    end
    local elapsed = h.timed(wg.wait, wg)
    -- One after the other they would take 0.5 s.
    assert.is_true(elapsed >= 0.095 and elapsed < 0.4, tostring(elapsed))
  end)

  it("lets other goroutines run while one sleeps", function()
    local ch = g.chan()
    local woke = false
    g.go(function() time.sleep(0.2); woke = true end)
    g.go(function() for i = 1, 50 do ch:send(i) end end)
    local sum = 0
    for _ = 1, 50 do sum = sum + ch:recv() end
    assert.are.equal(1275, sum)
    assert.is_false(woke)
    time.sleep(0.25)
    assert.is_true(woke)
  end)

  it("ends while other goroutines keep the run queue busy", function()
    -- Each round does a little work and yields; LIMIT rounds take far
    -- longer than the sleep, and are reached only if main never wakes.
    local LIMIT, stop, rounds = 20000, false, 0
    local wg = g.sync.waitgroup()
    wg:add(2)
    for _ = 1, 2 do
      g.go(function()
        while not stop and rounds < LIMIT do
          for _ = 1, 3000 do end
          rounds = rounds + 1
          g.gosched()
        end
        wg:done()
      end)
    end
    local elapsed = h.timed(time.sleep, 0.005)
    stop = true
    wg:wait()
    assert.is_true(rounds < LIMIT, "main's sleep ended after " .. rounds
                   .. " rounds")
    took(0.005, elapsed)
  end)

  it("wakes sleepers in deadline order", function()
    local order = {}
    local wg = g.sync.waitgroup()
    wg:add(3)
    for _, d in ipairs { 0.06, 0.02, 0.04 } do
      g.go(function() time.sleep(d); order[#order + 1] = d; wg:done() end)
    end
    wg:wait()
    assert.are.same({ 0.02, 0.04, 0.06 }, order)
  end)
end)

describe("time.after", function()
  it("delivers the current time once, after the duration", function()
    local t0 = time.now()
    local ch = time.after(0.05)
    local v, ok = ch:recv()
    local t1 = time.now()
    took(0.05, t1 - t0)
    assert.is_true(ok)
    assert.are.equal("number", type(v))
    assert.is_true(v >= t0 + 0.045 and v <= t1,
                   ("value %.4f outside [%.4f, %.4f]"):format(v, t0, t1))
    time.sleep(0.06)
    assert.is_true(empty(ch))
  end)

  it("is not ready before the duration", function()
    local ch = time.after(0.2)
    assert.is_true(empty(ch))
    time.sleep(0.01)
    assert.is_true(empty(ch))
  end)

  it("returns a receive-only channel", function()
    local ch = time.after(0.01)
    h.raises("send to receive-only channel", ch.send, ch, 1)
    h.raises("close of receive-only channel", ch.close, ch)
    assert.is_true(select(2, ch:recv()))
  end)

  it("with zero fires promptly", function()
    local elapsed, v, ok = h.timed(function() return time.after(0):recv() end)
    assert.is_true(elapsed < 0.2)
    assert.are.equal("number", type(v))
    assert.is_true(ok)
  end)

  it("that nobody waits on does not hide a deadlock", function()
    -- As in Go 1.23, where a channel timer is pending only while a
    -- goroutine is blocked on its channel: firing, it could wake nobody.
    local _, err, code = h.run_script([[
      local g = require "goroutines"
      local keep = g.time.after(3600)
      local tk = g.time.ticker(3600)
      g.chan():recv()
    ]], 20)
    assert.are.equal(1, code)
    assert.is_true(h.has(err, "all goroutines are asleep - deadlock!"), err)
  end)

  it("works as a select case", function()
    local never = g.chan()
    local elapsed, r = h.timed(g.select, {
      never:on_recv(function() return "never" end),
      time.after(0.03):on_recv(function(v)
        return type(v) == "number" and "timeout"
      end),
    })
    assert.are.equal("timeout", r)
    took(0.03, elapsed)
  end)
end)

describe("time.timer", function()
  it("fires once after the duration on t.c, a capacity 1 channel",
     function()
    local t0 = time.now()
    local t = time.timer(0.03)
    assert.are.equal(1, t.c:cap())
    local v, ok = t.c:recv()
    took(0.03, time.now() - t0)
    assert.is_true(ok)
    assert.are.equal("number", type(v))
    h.raises("send to receive-only channel", t.c.send, t.c, 1)
  end)

  it("stop before it fires returns true and nothing is delivered",
     function()
    local t = time.timer(0.03)
    assert.is_true(t:stop())
    assert.is_false(t:stop())
    time.sleep(0.06)
    assert.is_true(empty(t.c))
  end)

  it("stop after it fired and was received returns false", function()
    local t = time.timer(0.01)
    t.c:recv()
    assert.is_false(t:stop())
  end)

  it("stop discards a fired value not yet received", function()
    local t = time.timer(0.01)
    time.sleep(0.05)
    t:stop()
    assert.is_true(empty(t.c))
  end)

  it("stop of a fired timer whose value nobody received returns true",
     function()
    -- Go 1.23: the value is discarded, as if the timer had not fired, so
    -- `if not t:stop() then t.c:recv() end` can never block for good.
    local t = time.timer(0.01)
    time.sleep(0.05)
    assert.is_true(t:stop())
    assert.is_true(empty(t.c))
    assert.is_false(t:stop())
    local u = time.timer(0.01)
    time.sleep(0.05)
    local blocked = false
    if not u:stop() then
      blocked = g.select { u.c:on_recv(), default = true } == "default"
    end
    assert.is_false(blocked)
  end)

  it("reset of a fired timer whose value nobody received returns true",
     function()
    local t = time.timer(0.01)
    time.sleep(0.05)
    local t0 = time.now()
    assert.is_true(t:reset(0.03))
    assert.is_true(empty(t.c))
    t.c:recv()
    took(0.03, time.now() - t0)
  end)

  it("reset of an active timer returns true and moves its deadline",
     function()
    local t = time.timer(10)
    local t0 = time.now()
    assert.is_true(t:reset(0.03))
    t.c:recv()
    took(0.03, time.now() - t0)
  end)

  it("reset of an expired timer returns false and arms it again",
     function()
    local t = time.timer(0.01)
    t.c:recv()
    local t0 = time.now()
    assert.is_false(t:reset(0.03))
    t.c:recv()
    took(0.03, time.now() - t0)
  end)

  it("reset of a stopped timer returns false and arms it again", function()
    local t = time.timer(0.01)
    assert.is_true(t:stop())
    local t0 = time.now()
    assert.is_false(t:reset(0.02))
    t.c:recv()
    took(0.02, time.now() - t0)
  end)

  it("reset discards a fired value not yet received", function()
    local t = time.timer(0.01)
    time.sleep(0.05)
    local t0 = time.now()
    t:reset(0.05)
    assert.is_true(empty(t.c))
    t.c:recv()
    took(0.05, time.now() - t0)
  end)

  it("wakes a goroutine blocked on t.c", function()
    local t = time.timer(0.02)
    local done = g.chan()
    g.go(function() done:send(select(2, t.c:recv())) end)
    assert.is_true(done:recv())
  end)
end)

describe("time.ticker", function()
  it("delivers ticks every interval on tk.c until stopped", function()
    local tk = time.ticker(0.02)
    finally(function() tk:stop() end)
    assert.are.equal(1, tk.c:cap())
    local t0 = time.now()
    local prev = t0
    for _ = 1, 3 do
      local v, ok = tk.c:recv()
      assert.is_true(ok)
      assert.is_true(v >= prev)
      prev = v
    end
    took(0.06, time.now() - t0)
    tk:stop()
    time.sleep(0.06)
    assert.is_true(empty(tk.c))
  end)

  it("drops ticks for a slow reader: at most one is waiting", function()
    local tk = time.ticker(0.01)
    finally(function() tk:stop() end)
    time.sleep(0.1)
    local n = 0
    while n < 10 and not empty(tk.c) do n = n + 1 end
    assert.are.equal(1, n)
    tk:stop()
  end)

  it("reset changes the interval", function()
    local tk = time.ticker(10)
    finally(function() tk:stop() end)
    local t0 = time.now()
    tk:reset(0.02)
    tk.c:recv()
    took(0.02, time.now() - t0)
    tk.c:recv()
    took(0.04, time.now() - t0)
    tk:stop()
  end)

  it("rejects a non-positive interval", function()
    h.raises({ "bad argument #1", "non-positive interval" }, time.ticker, 0)
    h.raises({ "bad argument #1", "non-positive interval" }, time.ticker, -1)
  end)

  it("stop of a ticker with a tick nobody received returns true",
     function()
    local tk = time.ticker(0.01)
    time.sleep(0.05)
    assert.is_true(tk:stop())
    assert.is_true(empty(tk.c))
  end)
end)

describe("argument errors of the time functions", function()
  -- Called through pcall, Lua itself cannot name a function of the g.time
  -- subtable: the functions name themselves.
  it("name the function", function()
    h.raises("bad argument #1 to 'tick' (non-positive interval)",
             time.tick, -1)
    h.raises("bad argument #1 to 'ticker' (non-positive interval)",
             time.ticker, 0)
    h.raises("bad argument #1 to 'sleep' (number expected, got string)",
             time.sleep, "x")
    h.raises("bad argument #1 to 'after' (number expected, got no value)",
             time.after)
    h.raises("bad argument #1 to 'timer' (number expected, got nil)",
             time.timer, nil)
    h.raises("bad argument #2 to 'after_func' (function expected, got nil)",
             time.after_func, 1, nil)
    h.raises("bad argument #1 to 'since' (number expected, got table)",
             time.since, {})
  end)

  it("of a method do not count self", function()
    local tk = time.ticker(1)
    finally(function() tk:stop() end)
    h.raises("bad argument #1 to 'reset' (non-positive interval)",
             function() return tk:reset(-1) end)
    h.raises("bad argument #2 to 'reset' (number expected, got boolean)",
             tk.reset, tk, true)
  end)
end)

describe("time.tick", function()
  -- A tick cannot be stopped, so it runs in a process of its own.
  it("delivers ticks every interval on a receive-only channel", function()
    local out, err, code = h.run_script [[
      local g = require "goroutines"
      local t0 = g.time.now()
      local c = g.time.tick(0.02)
      local prev, increasing = t0, true
      for _ = 1, 3 do
        local v = c:recv()
        increasing = increasing and v >= prev
        prev = v
      end
      local ok, e = pcall(c.send, c, 1)
      print(increasing, string.format("%.3f", g.time.now() - t0), e)
    ]]
    assert.are.equal("", err)
    assert.are.equal(0, code)
    local inc, elapsed, e = out:match("^(%a+)\t([%d.]+)\t(.-)\n$")
    assert.are.equal("true", inc)
    took(0.06, tonumber(elapsed))
    assert.is_true(h.has(e, "send to receive-only channel"))
  end)

  it("rejects a non-positive interval", function()
    h.raises({ "bad argument #1", "non-positive interval" }, time.tick, 0)
    h.raises({ "bad argument #1", "non-positive interval" }, time.tick, -0.5)
  end)

  it("with a period under a nanosecond keeps ticking", function()
    -- 1e-10 s rounds to 0 ns: the period is at least 1 ns.
    local out, err, code = h.run_script([[
      local g = require "goroutines"
      local c = g.time.tick(1e-10)
      local n = 0
      for _ = 1, 5 do
        if type(c:recv()) == "number" then n = n + 1 end
      end
      print(n)
    ]], 20)
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("5\n", out)
  end)
end)

describe("time.after_func", function()
  it("runs f in its own goroutine after the duration", function()
    local done = g.chan()
    local t0 = time.now()
    local t = time.after_func(0.03, function()
      done:send({ g.id(), time.now() })
    end)
    assert.is_nil(t.c)
    local r = done:recv()
    assert.are_not.equal(1, r[1])
    assert.are.equal("integer", math.type(r[1]))
    took(0.03, r[2] - t0)
  end)

  it("stop before it fires returns true and f never runs", function()
    local ran = false
    local t = time.after_func(0.02, function() ran = true end)
    assert.is_true(t:stop())
    time.sleep(0.06)
    assert.is_false(ran)
    assert.is_false(t:stop())
  end)

  it("survives the collection of its dropped handle while it fires",
     function()
    -- Spawning f allocates: a collection then finalizes the handle of a
    -- timer that fire() still uses.
    local out, err, code = h.run_script([[
      local g = require "goroutines"
      local mt = { __gc = function() end }
      local ran = 0
      -- Fewer under gcstress, which collects at every scheduling point.
      local N = (os.getenv("GOROUTINES_GCSTRESS") or "0") ~= "0" and 50
                or 5000
      for _ = 1, 10 do
        for _ = 1, N do
          g.time.after_func(0.002, function() ran = ran + 1 end)
        end
        for _ = 1, 20000 do setmetatable({}, mt) end
        g.time.sleep(0.003)
      end
      local t0 = g.time.now()
      while ran < 10 * N and g.time.since(t0) < 20 do g.time.sleep(0.01) end
      print(ran == 10 * N)
    ]], 60)
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("true\n", out)
  end)

  it("lets f block", function()
    local ch = g.chan()
    time.after_func(0.01, function()
      time.sleep(0.01)
      ch:send("from f")
    end)
    assert.are.equal("from f", ch:recv())
  end)
end)

describe("a timer shared with another state", function()
  -- Timers whose effect is safe on any thread fire on the process's timer
  -- thread: on time, whatever the state that made them is doing.
  it("fires on time while its state computes", function()
    local out, err, code = h.run_script([[
      local g = require "goroutines"
      -- Both waiters are parked on their workers before the clock starts:
      -- what is measured is the firing, not a worker's start.
      local res, ready, tq, cq = g.chan(2), g.chan(2), g.chan(1), g.chan(1)
      g.parallel(function(tq, res, ready)
        local g = require "goroutines"
        ready:send(true)
        local m = tq:recv()
        m.c:recv()
        res:send(g.time.now() - m.t0)
      end, tq, res, ready)
      g.parallel(function(cq, res, ready)
        local g = require "goroutines"
        ready:send(true)
        local m = cq:recv()
        m.ctx:done():recv()
        res:send(g.time.now() - m.t0)
      end, cq, res, ready)
      ready:recv(); ready:recv()
      local t0 = g.time.now()
      tq:send({ c = g.time.after(0.05), t0 = t0 })
      local ctx = g.context.with_timeout(g.context.background(), 0.05)
      cq:send({ ctx = ctx, t0 = t0 })
      while g.time.since(t0) < 1 do end   -- computes: never blocks
      local a, b = res:recv(), res:recv()
      print(string.format("%.3f %.3f %s", a, b, ctx:err()))
    ]], 30)
    assert.are.equal("", err)
    assert.are.equal(0, code)
    local a, b, e = out:match("^([%d.]+) ([%d.]+) (.-)\n$")
    took(0.05, tonumber(a))
    took(0.05, tonumber(b))
    assert.are.equal("context deadline exceeded", e)
  end)

  it("stops, resets and ticks as a local one", function()
    local out, err, code = h.run_script([[
      local g = require "goroutines"
      local t = g.time.timer(0.02)
      local tk = g.time.ticker(0.01)
      local done = g.chan()
      g.parallel(function(a, b, done) done:send(a:cap() + b:cap()) end,
                 t.c, tk.c, done)
      assert(done:recv() == 2)
      g.time.sleep(0.06)
      local r = { t:stop(), t:stop() }       -- fired, not received: true
      local t0 = g.time.now()
      r[3] = t:reset(0.03)                   -- stopped: false
      t.c:recv()
      r[4] = g.time.since(t0) >= 0.025
      for _ = 1, 3 do tk.c:recv() end
      r[5] = tk:stop()
      g.time.sleep(0.03)
      r[6] = g.select { tk.c:on_recv(), default = true }
      print(table.concat({ tostring(r[1]), tostring(r[2]), tostring(r[3]),
                           tostring(r[4]), tostring(r[5]), r[6] }, " "))
    ]], 30)
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("true false false true true default\n", out)
  end)

  it("is collected when no state references its channel", function()
    local out, err, code = h.run_script([[
      local g = require "goroutines"
      collectgarbage(); collectgarbage()
      local before = g._stats().chans
      local done = g.chan()
      -- A worker drops its handle and collects: its last ref may be
      -- the one that frees the channel, on its thread.
      local function use(c, done)
        local n = c:cap()
        c = nil
        collectgarbage(); collectgarbage()
        done:send(n)
      end
      for _ = 1, 50 do
        g.parallel(use, g.time.after(3600), done)
        g.parallel(use, g.time.tick(3600), done)
        done:recv(); done:recv()
      end
      -- Only done is left, and workers may still hold it.
      local t0 = g.time.now()
      repeat
        collectgarbage(); collectgarbage()
        g.time.sleep(0.01)
      until g._stats().chans == before + 1 or g.time.since(t0) > 10
      print(g._stats().chans - before - 1)
    ]], 30)
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("0\n", out)
  end)
end)

describe("timer handles with hostile input", function()
  it("__gc and __tostring of another value raise instead of crashing",
     function()
    local out, err, code = h.run_script [[
      local g = require "goroutines"
      local mt = getmetatable(g.time.timer(1))
      setmetatable({}, mt)          -- its __gc gets a table
      collectgarbage()
      collectgarbage()
      print(pcall(mt.__gc, io.stdout))
      print(pcall(mt.__tostring, 42))
      io.stdout:write("stdout still works\n")
    ]]
    assert.are.equal(0, code, err)
    assert.is_true(h.has(out, "false\t"), out)
    assert.is_true(h.has(out, "goroutines.timer expected"), out)
    assert.is_true(h.has(out, "stdout still works\n"), out)
  end)

  it("a timer finalized by hand says so", function()
    local t = g.time.timer(1)
    getmetatable(t).__gc(t)
    h.raises("attempt to use a finalized goroutines.timer", t.stop, t)
    h.raises("attempt to use a finalized goroutines.timer", t.reset, t, 1)
  end)
end)

describe("the value a timer sends", function()
  it("is the time it expired, however late its state lets it fire",
     function()
    local t0 = g.time.now()
    local c = g.time.after(0.05)
    local t = os.clock()
    while os.clock() - t < 0.3 do end   -- the state computes meanwhile
    local v = c:recv()
    assert.is_true(math.abs(v - (t0 + 0.05)) < 0.03,
                   "sent " .. (v - t0) .. " s after the start")
  end)
end)
