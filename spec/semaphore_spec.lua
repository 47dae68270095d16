-- SPEC "sync, context": g.sync.semaphore(n), after golang.org/x/sync's
-- semaphore_test.go. Weighted acquire, try_acquire and release; waiters
-- are served in FIFO order, none passed over; releasing more than held
-- raises x/sync's text; every state shares a semaphore by handle.

local g = require "goroutines"
local h = require "spec.helpers"

describe("sync.semaphore", function()
  -- TestWeighted (HammerWeighted): goroutine i takes weight i, often.
  it("never grants more than its size", function()
    local n = 4
    local sem = g.sync.semaphore(n)
    local held, most, bad = 0, 0, 0
    local wg = g.sync.waitgroup()
    wg:add(n + 1)
    for i = 0, n do
      g.go(function()
        for _ = 1, 50 do
          sem:acquire(i)
          held = held + i
          if held > n then bad = bad + 1 end
          if held > most then most = held end
          g.time.sleep(math.random() * 0.0005)
          held = held - i
          sem:release(i)
        end
        wg:done()
      end)
    end
    wg:wait()
    assert.are.equal(0, bad)
    assert.are.equal(0, held)
    assert.is_true(most <= n)
  end)

  -- TestWeightedPanic
  it("raises on releasing more than held, and changes nothing", function()
    local w = g.sync.semaphore(1)
    h.raises("semaphore: released more than held", w.release, w, 1)
    w:acquire()
    h.raises("semaphore: released more than held", w.release, w, 2)
    w:release()                         -- the unit acquired is still held
    h.raises("semaphore: released more than held", w.release, w)
    assert.is_true(w:try_acquire(1))
  end)

  -- TestWeightedTryAcquire
  it("try_acquire takes what is free at once, or nothing", function()
    local sem = g.sync.semaphore(2)
    local tries = {}
    sem:acquire(1)
    tries[#tries + 1] = sem:try_acquire(1)
    tries[#tries + 1] = sem:try_acquire(1)
    sem:release(2)
    tries[#tries + 1] = sem:try_acquire(1)
    sem:acquire(1)
    tries[#tries + 1] = sem:try_acquire(1)
    assert.are.same({ true, false, true, false }, tries)
  end)

  -- TestLargeAcquireDoesntStarve
  it("lets a large acquire in while small ones keep coming", function()
    local n = 4
    local sem = g.sync.semaphore(n)
    local running = true
    local wg = g.sync.waitgroup()
    wg:add(n)
    for _ = 1, n do
      sem:acquire(1)
      g.go(function()
        while running do
          g.time.sleep(0.001)
          sem:release(1)
          sem:acquire(1)
        end
        sem:release(1)
        wg:done()
      end)
    end
    sem:acquire(n)                      -- would wait forever if starved
    running = false
    sem:release(n)
    wg:wait()
  end)

  it("serves waiters in FIFO order: a large one holds back later small "
     .. "ones", function()
    local sem = g.sync.semaphore(3)
    local log = {}
    local wg = g.sync.waitgroup()
    sem:acquire(2)
    wg:add(2)
    g.go(function()
      sem:acquire(3)                    -- first in the queue
      log[#log + 1] = "3"
      sem:release(3)
      wg:done()
    end)
    g.gosched()
    g.go(function()
      sem:acquire(1)                    -- one unit is free, yet it waits
      log[#log + 1] = "1"
      sem:release(1)
      wg:done()
    end)
    g.gosched()
    assert.are.same({}, log)
    assert.is_false(sem:try_acquire(1))   -- nor can anyone jump the queue
    sem:release(2)
    wg:wait()
    assert.are.same({ "3", "1" }, log)
  end)

  it("serves the waiters behind one whose wait ends by an error",
     function()
    local sem, got = g.sync.semaphore(3), g.chan(1)
    sem:acquire(2)
    g.go(function() g.time.sleep(0.02); error("boom", 0) end)
    g.go(function()
      g.gosched()                       -- behind main in the queue
      sem:acquire(1)
      got:send("acquired 1")
    end)
    local err = h.error_of(sem.acquire, sem, 3)
    assert.is_true(h.has(err, "boom"), err)
    assert.are.equal("acquired 1", h.recv_within(got, 5))
    sem:release(3)
    assert.is_true(sem:try_acquire(3))
  end)

  it("accepts weight 0 and takes 1 by default", function()
    local sem = g.sync.semaphore(1)
    sem:acquire(0)
    assert.is_true(sem:try_acquire())
    assert.is_true(sem:try_acquire(0))
    assert.is_false(sem:try_acquire())
    sem:release()
    sem:release(0)
    assert.is_true(sem:try_acquire(1))
  end)

  it("rejects bad sizes and weights, and an acquire that can never be "
     .. "granted", function()
    h.raises({ "bad argument #1", "size must be a non-negative integer" },
             g.sync.semaphore, -1)
    h.raises({ "bad argument #1", "number has no integer representation" },
             g.sync.semaphore, 1.5)
    h.raises({ "bad argument #1", "number expected, got no value" },
             g.sync.semaphore)
    local sem = g.sync.semaphore(2)
    for _, f in ipairs { sem.acquire, sem.try_acquire, sem.release } do
      h.raises({ "bad argument #2", "weight must be a non-negative integer" },
               f, sem, -1)
      h.raises({ "bad argument #2", "number expected, got table" },
               f, sem, {})
    end
    h.raises("semaphore: acquire of 3 exceeds the size 2", sem.acquire,
             sem, 3)
    h.raises("semaphore: acquire of 3 exceeds the size 2", sem.try_acquire,
             sem, 3)
    assert.is_true(sem:try_acquire(2))  -- nothing was taken
  end)

  it("names its wait reason as Go in the deadlock report", function()
    local out, err, code, path = h.run_script(table.concat({
      'local g = require "goroutines"',                  -- 1
      'local sem = g.sync.semaphore(1)',                 -- 2
      'sem:acquire()',                                   -- 3
      'sem:acquire()',                                   -- 4
    }, "\n"))
    assert.are.equal("", out)
    assert.are.equal(1, code)
    assert.is_true(h.has(err, "goroutine 1 [semacquire]:\n\t"
                              .. path .. ":4"), err)
  end)
end)

describe("sync.semaphore across states", function()
  -- TestWeighted with parallel goroutines: each worker logs its weight in
  -- and out while it holds it, so the log shows what is held at once.
  it("never grants more than its size to goroutines of every state",
     function()
    local out, err, code = h.run_script([[
      local g = require "goroutines"
      g.gomaxprocs(2)
      local sem, log, done = g.sync.semaphore(3), g.chan(1000), g.chan()
      local function hammer(sem, log, done, k)
        local g = require "goroutines"
        for _ = 1, 40 do
          sem:acquire(k)
          log:send(k)
          g.gosched()
          log:send(-k)
          sem:release(k)
        end
        done:send(true)
      end
      for k = 1, 3 do g.parallel(hammer, sem, log, done, k) end
      g.go(hammer, sem, log, done, 2)
      local held, most, ended, events = 0, 0, 0, 0
      while ended < 4 do
        local i, v = g.select { log:on_recv(), done:on_recv() }
        if i == 2 then ended = ended + 1
        else
          events = events + 1
          held = held + v
          if held > most then most = held end
        end
      end
      while log:len() > 0 do
        held = held + (log:recv())
        events = events + 1
      end
      print(most <= 3, held, events, sem:try_acquire(3))
    ]], 60)
    assert.are.equal(0, code, err)
    assert.are.equal("true\t0\t320\ttrue\n", out)
  end)
end)
