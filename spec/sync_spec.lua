-- SPEC "sync": waitgroup, mutex (mutual exclusion, FIFO hand-off in one
-- state, contention across states), once.

local g = require "goroutines"
local h = require "spec.helpers"

describe("sync.waitgroup", function()
  it("wait returns once every added goroutine called done", function()
    local wg = g.sync.waitgroup()
    local finished = 0
    wg:add(3)
    for i = 1, 3 do
      g.go(function()
        g.time.sleep(0.005 * i)
        finished = finished + 1
        wg:done()
      end)
    end
    wg:wait()
    assert.are.equal(3, finished)
  end)

  it("wait returns at once when the counter is zero", function()
    local wg = g.sync.waitgroup()
    local ran = false
    g.go(function() ran = true end)
    wg:wait()
    assert.is_false(ran)  -- did not block, so nothing else ran
    g.gosched()
  end)

  it("add accepts several at once, and done counts one", function()
    local wg = g.sync.waitgroup()
    wg:add(2)
    wg:add(3)
    local released = false
    g.go(function() wg:wait(); released = true end)
    for _ = 1, 4 do wg:done() end
    g.gosched()
    assert.is_false(released)
    wg:done()
    g.gosched()
    assert.is_true(released)
  end)

  it("releases every waiter, in goroutines and main", function()
    local wg = g.sync.waitgroup()
    local released = 0
    local all = g.sync.waitgroup()
    wg:add(1)
    all:add(4)
    for _ = 1, 4 do
      g.go(function() wg:wait(); released = released + 1; all:done() end)
    end
    g.go(function() g.time.sleep(0.01); wg:done() end)
    wg:wait()
    all:wait()
    assert.are.equal(4, released)
  end)

  it("can be reused after wait returned", function()
    local wg = g.sync.waitgroup()
    for round = 1, 3 do
      local n = 0
      wg:add(round)
      for _ = 1, round do g.go(function() n = n + 1; wg:done() end) end
      wg:wait()
      assert.are.equal(round, n)
    end
  end)

  it("raises on a negative counter", function()
    local wg = g.sync.waitgroup()
    h.raises("sync: negative WaitGroup counter", wg.done, wg)
    wg:add(1)
    h.raises("sync: negative WaitGroup counter", wg.add, wg, -2)
  end)

  it("raises on overflow and leaves the counter as it was", function()
    local wg = g.sync.waitgroup()
    wg:add(math.maxinteger)
    h.raises("sync: WaitGroup counter overflow", wg.add, wg, math.maxinteger)
    h.raises("sync: WaitGroup counter overflow", wg.add, wg, 1)
    h.raises("sync: negative WaitGroup counter", wg.add, wg,
             math.mininteger)
    wg:add(-math.maxinteger + 1)
    local released = false
    g.go(function() wg:wait(); released = true end)
    g.gosched()
    assert.is_false(released)   -- one is left
    wg:done()
    g.gosched()
    assert.is_true(released)
    h.raises("sync: negative WaitGroup counter", wg.add, wg,
             math.mininteger)
    wg:wait()                   -- still 0
  end)
end)

describe("sync.mutex", function()
  it("lock and unlock without contention", function()
    local m = g.sync.mutex()
    m:lock()
    m:unlock()
    m:lock()
    m:unlock()
  end)

  it("raises on unlock of an unlocked mutex", function()
    local m = g.sync.mutex()
    h.raises("sync: unlock of unlocked mutex", m.unlock, m)
    m:lock()
    m:unlock()
    h.raises("sync: unlock of unlocked mutex", m.unlock, m)
  end)

  it("excludes goroutines that yield inside the critical section",
     function()
    local m = g.sync.mutex()
    local counter, inside, max_inside = 0, 0, 0
    local wg = g.sync.waitgroup()
    wg:add(5)
    for _ = 1, 5 do
      g.go(function()
        for _ = 1, 20 do
          m:lock()
          inside = inside + 1
          if inside > max_inside then max_inside = inside end
          local c = counter
          g.gosched()       -- others run, and must wait for the lock
          counter = c + 1   -- a lost update without mutual exclusion
          inside = inside - 1
          m:unlock()
        end
        wg:done()
      end)
    end
    wg:wait()
    assert.are.equal(100, counter)
    assert.are.equal(1, max_inside)
  end)

  it("excludes across sleeps in the critical section", function()
    local m = g.sync.mutex()
    local log = {}
    local wg = g.sync.waitgroup()
    wg:add(3)
    for i = 1, 3 do
      g.go(function()
        m:lock()
        log[#log + 1] = "in" .. i
        g.time.sleep(0.005)
        log[#log + 1] = "out" .. i
        m:unlock()
        wg:done()
      end)
    end
    wg:wait()
    assert.are.same({ "in1", "out1", "in2", "out2", "in3", "out3" }, log)
  end)

  it("hands the lock to waiters in FIFO order", function()
    local m = g.sync.mutex()
    local order = {}
    local wg = g.sync.waitgroup()
    m:lock()
    wg:add(5)
    for i = 1, 5 do
      g.go(function()
        m:lock()
        order[#order + 1] = i
        g.gosched()
        m:unlock()
        wg:done()
      end)
    end
    g.gosched()  -- all five are now waiting, in spawn order
    assert.are.same({}, order)
    m:unlock()
    wg:wait()
    assert.are.same({ 1, 2, 3, 4, 5 }, order)
  end)

  it("may be unlocked by another goroutine or state, as in Go", function()
    local out, err, code = h.run_script([[
      local g = require "goroutines"
      local m, done = g.sync.mutex(), g.chan()
      m:lock()
      g.parallel(function(m, done) m:unlock(); done:send("unlocked") end,
                 m, done)
      print(done:recv())
      m:lock()                          -- free again: at once
      g.parallel(function(m)           -- main waits, a worker unlocks
        require("goroutines").time.sleep(0.02)
        m:unlock()
      end, m)
      m:lock()
      print("handed over")
      g.go(function() m:unlock() end)   -- another goroutine of main's
      g.gosched()
      print(pcall(m.unlock, m))
    ]], 10)
    assert.are.equal(0, code, err)
    assert.are.equal("unlocked\ttrue\nhanded over\n"
                     .. "false\tsync: unlock of unlocked mutex\n", out)
  end)

  it("excludes the goroutines of two states that contend for it", function()
    -- Inside the lock each side checks that a slot shared by the two
    -- states is empty, fills it and empties it again.
    local out, err, code = h.run_script([[
      local g = require "goroutines"
      local function hammer (m, slot, n)
        for _ = 1, n do
          m:lock()
          assert(slot:len() == 0, "two holders at once")
          slot:send(true)
          slot:recv()
          m:unlock()
        end
      end
      local m, slot, done = g.sync.mutex(), g.chan(1), g.chan()
      g.parallel(function (m, slot, done, hammer)
        done:recv()
        hammer(m, slot, 20000)
        done:send(true)
      end, m, slot, done, hammer)
      done:send(true)
      hammer(m, slot, 20000)
      done:recv()
      print("done", slot:len())
    ]], 60)
    assert.are.equal(0, code, err)
    assert.are.equal("done\t0\n", out)
  end)

  it("lets two states contend without a wake across threads at every "
     .. "lock: within 20 times the cost of a lock without contention",
     function()
    -- A lock handed to a goroutine of another state at every unlock made
    -- each pair cost a wake of a parked thread (tens of microseconds).
    local out, err, code = h.run_script([[
      local g = require "goroutines"
      local N = 100000
      local function pairs_ (m, n)
        for _ = 1, n do m:lock(); m:unlock() end
      end
      local m = g.sync.mutex()
      local t0 = g.time.now()
      pairs_(m, 2 * N)
      local alone = g.time.now() - t0
      local ready, done = g.chan(), g.chan()
      g.parallel(function (m, ready, done, pairs_, n)
        ready:send(true)
        pairs_(m, n)
        done:send(true)
      end, m, ready, done, pairs_, N)
      ready:recv()
      t0 = g.time.now()
      pairs_(m, N)
      done:recv()
      local both = g.time.now() - t0
      print(both < 20 * alone or ("%.0f ns a pair, alone %.0f ns")
            :format(both * 1e9 / (2 * N), alone * 1e9 / (2 * N)))
    ]], 120)
    assert.are.equal(0, code, err)
    assert.are.equal("true\n", out)
  end)

  it("returns a guard from lock whose __close unlocks: Go's defer "
     .. "mu.Unlock()", function()
    local m = g.sync.mutex()
    local order = {}
    local function critical(i)
      local guard <close> = m:lock()
      assert.are.equal(m, guard)
      order[#order + 1] = i
      g.gosched()                       -- others wait for the guard
      order[#order + 1] = -i
    end
    local wg = g.sync.waitgroup()
    wg:add(3)
    for i = 1, 3 do g.go(function() critical(i); wg:done() end) end
    wg:wait()
    assert.are.same({ 1, -1, 2, -2, 3, -3 }, order)
    local _ <close> = m:lock()          -- every guard unlocked it
  end)

  it("unlocks through the guard of a goroutine that raises, with the "
     .. "error passed on", function()
    local m = g.sync.mutex()
    g.go(function()
      local _ <close> = m:lock()
      g.gosched()
      error("worker failed", 0)
    end)
    local err = h.error_of(h.recv_never)
    assert.is_true(h.has(err, "worker failed"), err)
    m:lock()                            -- free again
    m:unlock()
    h.raises("sync: unlock of unlocked mutex", function()
      local _ <close> = m:lock()
      m:unlock()                        -- the guard then finds it unlocked
    end)
  end)

  it("blocks main in lock until a goroutine unlocks", function()
    local m = g.sync.mutex()
    local unlocked = false
    m:lock()
    g.go(function()
      g.time.sleep(0.01)
      unlocked = true
      m:unlock()
    end)
    m:lock()
    assert.is_true(unlocked)
    m:unlock()
  end)
end)

describe("sync.once", function()
  it("runs f on the first call only", function()
    local o = g.sync.once()
    local n = 0
    o:call(function() n = n + 1 end)
    o:call(function() n = n + 1 end)
    o:call(function() n = n + 100 end)
    assert.are.equal(1, n)
  end)

  it("makes concurrent callers wait until f has returned", function()
    local o = g.sync.once()
    local runs, done = 0, false
    local seen = {}
    local wg = g.sync.waitgroup()
    wg:add(4)
    for i = 1, 4 do
      g.go(function()
        o:call(function()
          runs = runs + 1
          g.time.sleep(0.02)   -- the others call meanwhile
          done = true
        end)
        seen[i] = done         -- f has finished for every caller
        wg:done()
      end)
    end
    wg:wait()
    assert.are.equal(1, runs)
    assert.are.same({ true, true, true, true }, seen)
  end)

  it("counts as done when f raised, and the error reaches the first caller",
     function()
    local o = g.sync.once()
    h.raises("once failed", o.call, o, function() error("once failed") end)
    local ran = false
    o:call(function() ran = true end)
    assert.is_false(ran)
  end)

  it("rejects what cannot be called, and stays unused", function()
    local o = g.sync.once()
    h.raises({ "bad argument #2", "function expected, got number" },
             o.call, o, 42)
    h.raises({ "bad argument #2", "function expected, got no value" },
             o.call, o)
    h.raises({ "bad argument #2", "function expected, got table" },
             o.call, o, {})
    local ran = 0
    o:call(setmetatable({}, { __call = function() ran = ran + 1 end }))
    o:call(function() ran = ran + 10 end)
    assert.are.equal(1, ran)
  end)

  it("survives f finalizing the once it runs for", function()
    local out, err, code = h.run_script([[
      local g = require "goroutines"
      local o = g.sync.once()
      o:call(function() getmetatable(o).__gc(o); collectgarbage() end)
      print(pcall(o.call, o, print))
      local o2 = g.sync.once()
      local released = g.chan(1)
      g.go(function() o2:call(print); released:send("released") end)
      print(pcall(o2.call, o2, function()
        g.gosched()                     -- the goroutine waits on o2
        getmetatable(o2).__gc(o2)
        collectgarbage()
        error("f failed")
      end))
      print(released:recv())
    ]], 10)
    assert.are.equal(0, code, err)
    local lines = {}
    for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.is_true(h.has(lines[1],
      "false\tattempt to use a finalized goroutines.once"), lines[1])
    assert.is_true(h.has(lines[2], "false\t") and
                   h.has(lines[2], "f failed"), lines[2])
    assert.are.equal("released\ttrue", lines[3])
  end)

  it("makes callers of other states wait while f blocks, then raises "
     .. "only in the first", function()
    local out, err, code = h.run_script([[
      local g = require "goroutines"
      local o, started, result = g.sync.once(), g.chan(), g.chan(1)
      g.parallel(function(o, started, result)
        local g = require "goroutines"
        result:send({ pcall(o.call, o, function()
          started:send(true)
          g.time.sleep(0.05)
          error("f failed", 0)
        end) })
      end, o, started, result)
      started:recv()
      local t0 = g.time.now()
      o:call(function() print("ran twice") end)
      print("main waited", g.time.since(t0) >= 0.03)
      local r = result:recv()
      print("worker", table.unpack(r))
    ]], 10)
    assert.are.equal(0, code, err)
    assert.is_true(h.has(out, "worker\tfalse\tf failed\n"), out)
    assert.is_true(h.has(out, "main waited\ttrue\n"), out)
    assert.is_false(h.has(out, "ran twice"), out)
  end)

  it("releases concurrent callers when f raised", function()
    local o = g.sync.once()
    local released = 0
    local wg = g.sync.waitgroup()
    wg:add(2)
    for _ = 1, 2 do
      g.go(function()
        o:call(function() end)
        released = released + 1
        wg:done()
      end)
    end
    local ok = pcall(o.call, o, function()
      g.time.sleep(0.01)
      error("first caller fails")
    end)
    wg:wait()
    assert.is_false(ok)
    assert.are.equal(2, released)
  end)
end)

describe("sync handles", function()
  it("raise after a manual __gc instead of crashing", function()
    local out, err, code = h.run_script([[
      local g = require "goroutines"
      local function try(f, ...) print(pcall(f, ...)) end
      local wg, mu, once = g.sync.waitgroup(), g.sync.mutex(), g.sync.once()
      for _, o in ipairs { wg, mu, once } do
        getmetatable(o).__gc(o)
        getmetatable(o).__gc(o)          -- idempotent
      end
      try(wg.add, wg, 1); try(wg.done, wg); try(wg.wait, wg)
      try(mu.lock, mu); try(mu.unlock, mu)
      try(once.call, once, print)
      print(tostring(wg), tostring(mu), tostring(once))
      for _, o in ipairs { wg, mu, once } do
        try(getmetatable(o).__gc, nil)
      end
      try(getmetatable(wg).__gc, mu)
      try(getmetatable(mu).__tostring)
      print("end")
    ]], 20)
    assert.are.equal(0, code, err)
    local lines = {}
    for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
    local kinds = { "waitgroup", "waitgroup", "waitgroup", "mutex", "mutex",
                    "once" }
    for i, kind in ipairs(kinds) do
      assert.is_true(h.has(lines[i], "false\t") and h.has(lines[i],
        "attempt to use a finalized goroutines." .. kind), lines[i])
    end
    assert.are.equal("goroutines.waitgroup: finalized\t"
                     .. "goroutines.mutex: finalized\t"
                     .. "goroutines.once: finalized", lines[7])
    for i, kind in ipairs { "waitgroup", "mutex", "once" } do
      local l = lines[7 + i]
      assert.is_true(h.has(l, "false\tbad argument #1") and
                     h.has(l, "goroutines." .. kind .. " expected, got nil"),
                     l)
    end
    assert.is_true(h.has(lines[11], "goroutines.waitgroup expected, got "
                                    .. "goroutines.mutex"), lines[11])
    assert.is_true(h.has(lines[12], "bad argument #1"), lines[12])
    assert.are.equal("end", lines[13])
  end)

  it("name the C object, the same in every state", function()
    local mu = g.sync.mutex()
    local name = g.chan(1)
    -- (tostring passed along: this file's _ENV is busted's, not _G)
    g.parallel(function(mu, name, str) name:send(str(mu)) end, mu, name,
               tostring)
    local s = h.recv_within(name, 5)
    assert.is_truthy(s:match("^goroutines%.mutex: "))
    assert.are.equal(tostring(mu), s)
  end)
end)
