-- SPEC "sync, context": g.sync.cond(l), after Go's sync/cond_test.go.
-- wait unlocks l and waits, atomically, and holds l again when it returns;
-- signal wakes the longest waiter, broadcast every one; l is a mutex, an
-- rwmutex or an rlocker; goroutines of every state share a cond by handle.

local g = require "goroutines"
local h = require "spec.helpers"

-- Whether ch has nothing to receive now.
local function empty(ch)
  return g.select { ch:on_recv(), default = true } == "default"
end

describe("sync.cond", function()
  -- TestCondSignal
  it("wakes one waiter per signal", function()
    local m = g.sync.mutex()
    local c = g.sync.cond(m)
    local n = 2
    local running, awake = g.chan(n), g.chan(n)
    for _ = 1, n do
      g.go(function()
        m:lock()
        running:send(true)
        c:wait()
        awake:send(true)
        m:unlock()
      end)
    end
    for _ = 1, n do h.recv_within(running, 5) end
    while n > 0 do
      assert.is_true(empty(awake), "goroutine not asleep")
      m:lock()
      c:signal()
      m:unlock()
      h.recv_within(awake, 5)
      g.gosched()
      assert.is_true(empty(awake), "too many goroutines awake")
      n = n - 1
    end
    c:signal()                          -- nobody waits: nothing happens
  end)

  -- TestCondSignalGenerations
  it("wakes the waiters in the order they waited", function()
    local m = g.sync.mutex()
    local c = g.sync.cond(m)
    local n = 100
    local running, awake = g.chan(n), g.chan(n)
    for i = 0, n - 1 do
      g.go(function()
        m:lock()
        running:send(true)
        c:wait()
        awake:send(i)
        m:unlock()
      end)
      if i > 0 then
        assert.are.equal(i - 1, h.recv_within(awake, 5),
                         "wrong goroutine woke up")
      end
      h.recv_within(running, 5)
      m:lock()
      c:signal()
      m:unlock()
    end
    assert.are.equal(n - 1, h.recv_within(awake, 5))
  end)

  -- TestCondBroadcast
  it("wakes every waiter on broadcast, each once", function()
    local m = g.sync.mutex()
    local c = g.sync.cond(m)
    local n = 50
    local running, awake = g.chan(n), g.chan(n)
    local exit = false
    for i = 1, n do
      g.go(function()
        m:lock()
        while not exit do
          running:send(i)
          c:wait()
          awake:send(i)
        end
        m:unlock()
      end)
    end
    for round = 1, n do
      for _ = 1, n do h.recv_within(running, 5) end
      if round == n then
        m:lock()
        exit = true
        m:unlock()
      end
      assert.is_true(empty(awake), "goroutine not asleep")
      m:lock()
      c:broadcast()
      m:unlock()
      local seen = {}
      for _ = 1, n do
        local i = h.recv_within(awake, 5)
        assert.is_nil(seen[i], "goroutine woke up twice")
        seen[i] = true
      end
    end
    g.gosched()
    assert.is_true(empty(running), "goroutine did not exit")
    c:broadcast()
  end)

  -- TestRace
  it("holds the lock again when wait returns", function()
    local m = g.sync.mutex()
    local c = g.sync.cond(m)
    local x, errs = 0, {}
    local done = g.chan(3)
    g.go(function()
      m:lock()
      x = 1
      c:wait()
      if x ~= 2 then errs[#errs + 1] = "want 2" end
      x = 3
      c:signal()
      m:unlock()
      done:send(true)
    end)
    g.go(function()
      m:lock()
      while true do
        if x == 1 then
          x = 2
          c:signal()
          break
        end
        m:unlock()
        g.gosched()
        m:lock()
      end
      m:unlock()
      done:send(true)
    end)
    g.go(function()
      m:lock()
      while true do
        if x == 2 then
          c:wait()
          if x ~= 3 then errs[#errs + 1] = "want 3" end
          break
        end
        if x == 3 then break end
        m:unlock()
        g.gosched()
        m:lock()
      end
      m:unlock()
      done:send(true)
    end)
    for _ = 1, 3 do h.recv_within(done, 5) end
    assert.are.same({}, errs)
  end)

  -- TestCondSignalStealing
  it("wakes a waiter even when a new one races the broadcast", function()
    for _ = 1, 100 do
      local m = g.sync.mutex()
      local c = g.sync.cond(m)
      local ch = g.chan()
      g.go(function()
        m:lock()
        ch:send(true)
        c:wait()
        m:unlock()
        ch:send(true)
      end)
      ch:recv()
      m:lock()
      m:unlock()
      local done = false
      g.go(function() c:broadcast() end)
      g.go(function()
        m:lock()
        while not done do c:wait() end
        m:unlock()
      end)
      h.recv_within(ch, 2)
      m:lock()
      done = true
      m:unlock()
      c:broadcast()
    end
  end)

  it("works with an rwmutex for writing and with its rlocker", function()
    local rw = g.sync.rwmutex()
    local cw, cr = g.sync.cond(rw), g.sync.cond(rw:rlocker())
    local log = g.chan(10)
    g.go(function()
      rw:lock()
      cw:wait()                         -- unlocks rw meanwhile
      log:send("writer woke")
      rw:unlock()
    end)
    g.go(function()
      rw:rlock()
      cr:wait()
      log:send("reader woke")
      rw:runlock()
    end)
    g.gosched()
    rw:lock()                           -- both waits released rw
    cw:signal()
    cr:signal()
    g.gosched()
    assert.is_true(empty(log))          -- both need rw, which main holds
    rw:unlock()
    local a, b = h.recv_within(log, 5), h.recv_within(log, 5)
    assert.are.same({ "reader woke", "writer woke" },
                    a < b and { a, b } or { b, a })
    rw:lock()                           -- both let it go again
    rw:unlock()
  end)

  it("raises the lock's unlock error when wait is called without it, and "
     .. "does not wait", function()
    local m = g.sync.mutex()
    local c = g.sync.cond(m)
    h.raises("sync: unlock of unlocked mutex", c.wait, c)
    local rw = g.sync.rwmutex()
    h.raises("sync: Unlock of unlocked RWMutex", g.sync.cond(rw).wait,
             g.sync.cond(rw))
    local cr = g.sync.cond(rw:rlocker())
    h.raises("sync: RUnlock of unlocked RWMutex", cr.wait, cr)
    m:lock()                            -- not queued: a signal finds none
    c:signal()
    m:unlock()
    h.raises({ "bad argument #1", "goroutines.mutex, rwmutex or rlocker "
               .. "expected, got table" }, g.sync.cond, {})
    h.raises({ "bad argument #1", "expected, got no value" }, g.sync.cond)
    local dead = g.sync.mutex()
    getmetatable(dead).__gc(dead)
    h.raises("attempt to use a finalized goroutines.mutex", g.sync.cond,
             dead)
  end)

  it("keeps its lock alive after the lock's handle is gone", function()
    local c
    do
      local m = g.sync.mutex()
      c = g.sync.cond(m)
    end
    h.collect()
    h.raises("sync: unlock of unlocked mutex", c.wait, c)
  end)

  it("names its wait reason as Go in the deadlock report", function()
    local out, err, code, path = h.run_script(table.concat({
      'local g = require "goroutines"',                  -- 1
      'local m = g.sync.mutex()',                        -- 2
      'local c = g.sync.cond(m)',                        -- 3
      'm:lock()',                                        -- 4
      'c:wait()',                                        -- 5
    }, "\n"))
    assert.are.equal("", out)
    assert.are.equal(1, code)
    assert.is_true(h.has(err, "goroutine 1 [sync.Cond.Wait]:\n\t"
                              .. path .. ":5"), err)
  end)
end)

describe("sync.cond across states", function()
  it("is signaled by a worker and waited on in main, and the reverse",
     function()
    local out, err, code = h.run_script([[
      local g = require "goroutines"
      local m = g.sync.mutex()
      local c = g.sync.cond(m)
      local ready, done = g.chan(), g.chan()
      -- a worker waits on the cond; main signals it
      g.parallel(function(m, c, ready, done)
        m:lock()
        ready:send(true)
        c:wait()
        m:unlock()
        done:send("worker woke")
      end, m, c, ready, done)
      ready:recv()
      m:lock()                          -- the worker is waiting now
      c:signal()
      m:unlock()
      print((done:recv()))
      -- main waits; a worker broadcasts
      m:lock()
      g.parallel(function(m, c)
        m:lock()                        -- main's wait released it
        c:broadcast()
        m:unlock()
      end, m, c)
      c:wait()
      print("main woke holding the lock", pcall(m.unlock, m))
      print(pcall(m.unlock, m))
    ]], 20)
    assert.are.equal(0, code, err)
    assert.is_true(h.has(out, "worker woke\nmain woke holding the lock\t"
                              .. "true\nfalse\t"), out)
    assert.is_true(h.has(out, "sync: unlock of unlocked mutex\n"), out)
  end)
end)
