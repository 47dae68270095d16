-- SPEC "sync, context": g.sync.rwmutex, after Go's sync/rwmutex_test.go.
-- Many readers or one writer; a writer that waits stops new readers
-- (Go's writer preference); rlock and lock return guards whose __close
-- unlocks; Go's texts for unlocking what is not locked; every state shares
-- the same lock by handle.

local g = require "goroutines"
local h = require "spec.helpers"

-- Records the order of events in a list.
local function recorder()
  local log = {}
  return log, function(e) log[#log + 1] = e end
end

describe("sync.rwmutex", function()
  -- TestParallelReaders: every reader holds the read lock at once.
  for _, n in ipairs { 1, 3, 4 } do
    it("lets " .. n .. " readers hold it together", function()
      local m = g.sync.rwmutex()
      local locked, unlock, done = g.chan(), g.chan(), g.chan()
      for _ = 1, n do
        g.go(function()
          m:rlock()
          locked:send(true)
          unlock:recv()
          m:runlock()
          done:send(true)
        end)
      end
      for _ = 1, n do h.recv_within(locked, 5) end
      for _ = 1, n do unlock:send(true) end
      for _ = 1, n do h.recv_within(done, 5) end
    end)
  end

  -- TestRWMutex (HammerRWMutex): activity counts readers + 10000 per
  -- writer; a reader sees no writer, a writer sees nobody else. Each yields
  -- inside its critical section, so that the others run meanwhile.
  for _, readers in ipairs { 1, 3, 10 } do
    it("excludes writers from readers and from each other (2 writers, "
       .. readers .. " readers)", function()
      local rw, activity, bad = g.sync.rwmutex(), 0, {}
      local done = g.chan(2 + readers)
      local function reader()
        for _ = 1, 50 do
          rw:rlock()
          activity = activity + 1
          if activity < 1 or activity >= 10000 then bad[#bad + 1] = activity end
          g.gosched()
          activity = activity - 1
          rw:runlock()
        end
        done:send(true)
      end
      local function writer()
        for _ = 1, 50 do
          rw:lock()
          activity = activity + 10000
          if activity ~= 10000 then bad[#bad + 1] = activity end
          g.gosched()
          activity = activity - 10000
          rw:unlock()
        end
        done:send(true)
      end
      g.go(writer)
      for _ = 1, readers // 2 do g.go(reader) end
      g.go(writer)
      for _ = readers // 2 + 1, readers do g.go(reader) end
      for _ = 1, 2 + readers do h.recv_within(done, 20) end
      assert.are.same({}, bad)
      assert.are.equal(0, activity)
    end)
  end

  -- TestRLocker: rl:lock() read-locks, and respects the write lock.
  it("gives an rlocker whose lock and unlock read-lock", function()
    local wl = g.sync.rwmutex()
    local rl = wl:rlocker()
    assert.are.equal(rl, wl:rlocker())
    local wlocked, rlocked = g.chan(1), g.chan(1)
    local n = 10
    g.go(function()
      for _ = 1, n do
        rl:lock()
        rl:lock()
        rlocked:send(true)
        wl:lock()
        wlocked:send(true)
      end
    end)
    for _ = 1, n do
      h.recv_within(rlocked, 5)
      rl:unlock()
      g.gosched()
      assert.are.equal("default",
        g.select { wlocked:on_recv(), default = true },
        "RLocker() didn't read-lock it")
      rl:unlock()
      h.recv_within(wlocked, 5)
      assert.are.equal("default",
        g.select { rlocked:on_recv(), default = true },
        "RLocker() didn't respect the write lock")
      wl:unlock()
    end
  end)

  it("makes new readers wait behind a writer that waits (Go's writer "
     .. "preference)", function()
    local rw = g.sync.rwmutex()
    local log, rec = recorder()
    local wg = g.sync.waitgroup()
    rw:rlock()                          -- main reads
    wg:add(2)
    g.go(function()
      rw:lock()                         -- waits for main's read lock
      rec("writer")
      rw:unlock()
      wg:done()
    end)
    g.gosched()                         -- the writer waits now
    g.go(function()
      rw:rlock()                        -- a new reader: behind the writer
      rec("reader")
      rw:runlock()
      wg:done()
    end)
    g.gosched()
    assert.are.same({}, log)            -- neither got in
    rw:runlock()
    wg:wait()
    assert.are.same({ "writer", "reader" }, log)
  end)

  it("admits the readers that waited for a writer before the next writer",
     function()
    local rw = g.sync.rwmutex()
    local log, rec = recorder()
    local wg = g.sync.waitgroup()
    rw:lock()
    wg:add(4)
    local function reader(name)
      g.go(function()
        rw:rlock()
        rec(name)
        g.gosched()                     -- both readers hold it here
        rec(name .. " out")
        rw:runlock()
        wg:done()
      end)
    end
    reader("r1")
    g.go(function()
      rw:lock()
      rec("w2")
      rw:unlock()
      wg:done()
    end)
    reader("r2")
    g.gosched()                         -- r1, w2, r2 wait, in that order
    rw:unlock()
    g.go(function()                     -- a third reader, after w2 claimed
      rw:rlock()
      rec("r3")
      rw:runlock()
      wg:done()
    end)
    wg:wait()
    assert.are.same({ "r1", "r2", "r1 out", "r2 out", "w2", "r3" }, log)
  end)

  it("returns itself from lock and its rlocker from rlock, as guards that "
     .. "unlock on close", function()
    local rw = g.sync.rwmutex()
    do
      local guard <close> = rw:lock()
      assert.are.equal(rw, guard)
    end
    do                                  -- free again: readers get in
      local r1 <close> = rw:rlock()
      local r2 <close> = rw:rlock()
      assert.are.equal(rw:rlocker(), r1)
      assert.are.equal(r1, r2)
    end
    local got = g.chan()
    g.go(function()                     -- both read locks were released
      local _ <close> = rw:lock()
      got:send("locked")
    end)
    assert.are.equal("locked", h.recv_within(got, 5))
    local _ <close> = rw:lock()         -- and that guard unlocked too
  end)

  it("unlocks through the guards of a goroutine that raises", function()
    local rw = g.sync.rwmutex()
    local errs = g.chan(2)
    g.go(function()
      local ok, e = pcall(function()
        local _ <close> = rw:lock()
        error("writer failed", 0)
      end)
      errs:send(e)
      local _ <close> = rw:rlock()
      error("reader failed", 0)         -- uncaught: the guard still closes
    end)
    assert.are.equal("writer failed", h.recv_within(errs, 5))
    local err = h.error_of(h.recv_never)
    assert.is_true(h.has(err, "reader failed"), err)
    local _ <close> = rw:lock()         -- neither lock is held any more
  end)

  it("raises Go's texts on unlocking what is not locked, and changes "
     .. "nothing", function()
    local rw = g.sync.rwmutex()
    h.raises("sync: RUnlock of unlocked RWMutex", rw.runlock, rw)
    h.raises("sync: Unlock of unlocked RWMutex", rw.unlock, rw)
    rw:rlock()
    h.raises("sync: Unlock of unlocked RWMutex", rw.unlock, rw)
    rw:runlock()
    h.raises("sync: RUnlock of unlocked RWMutex", rw.runlock, rw)
    rw:lock()
    h.raises("sync: RUnlock of unlocked RWMutex", rw.runlock, rw)
    h.raises("sync: RUnlock of unlocked RWMutex", rw:rlocker().unlock,
             rw:rlocker())
    rw:unlock()
    h.raises("sync: Unlock of unlocked RWMutex", rw.unlock, rw)
    -- the lock still works: one writer, then readers
    rw:lock()
    rw:unlock()
    rw:rlock()
    rw:rlock()
    rw:runlock()
    rw:runlock()
    h.raises("sync: RUnlock of unlocked RWMutex", rw.runlock, rw)
  end)

  it("lets the readers behind a writer in when that writer's wait ends "
     .. "by an error", function()
    local rw, hold, inside = g.sync.rwmutex(), g.chan(), g.chan(1)
    g.go(function() rw:rlock(); hold:recv(); rw:runlock() end)
    g.gosched()                         -- a reader holds rw
    g.go(function()                     -- a reader that will queue
      rw:rlock()
      inside:send("reader in")
      rw:runlock()
    end)
    g.go(function() g.time.sleep(0.02); error("boom", 0) end)
    -- main's lock claims rw and waits; the error ends that wait
    local err = h.error_of(rw.lock, rw)
    assert.is_true(h.has(err, "boom"), err)
    assert.are.equal("reader in", h.recv_within(inside, 5))
    hold:send(true)
    local _ <close> = rw:lock()         -- free: the claim went with main
  end)

  it("rejects other values and finalized handles", function()
    local rw = g.sync.rwmutex()
    h.raises({ "bad argument #1", "goroutines.rwmutex expected, got "
               .. "goroutines.mutex" }, rw.lock, g.sync.mutex())
    h.raises({ "bad argument #1", "goroutines.rlocker expected, got nil" },
             rw:rlocker().lock, nil)
    getmetatable(rw).__gc(rw)
    h.raises("attempt to use a finalized goroutines.rwmutex", rw.rlock, rw)
    assert.are.equal("goroutines.rwmutex: finalized", tostring(rw))
  end)

  it("cannot block inside a C call that cannot yield", function()
    local rw = g.sync.rwmutex()
    rw:lock()
    g.go(function()
      local err = h.error_of(table.sort, { 1, 2, 3 }, function(a, b)
        rw:rlock()
        return a < b
      end)
      assert(h.has(err, "sync.RWMutex.RLock: cannot block here"), err)
      rw:unlock()
    end)
    g.gosched()
    rw:lock()                           -- the goroutine unlocked it
    rw:unlock()
  end)

  it("names its wait reasons as Go in the deadlock report", function()
    local out, err, code, path = h.run_script(table.concat({
      'local g = require "goroutines"',                  -- 1
      'local rw = g.sync.rwmutex()',                     -- 2
      'rw:rlock()',                                      -- 3
      'g.go(function() rw:lock() end)',                  -- 4
      'g.go(function() rw:rlock() end)',                 -- 5
      'g.chan():recv()',                                 -- 6
    }, "\n"))
    assert.are.equal("", out)
    assert.are.equal(1, code)
    assert.is_true(h.has(err, "all goroutines are asleep - deadlock!"), err)
    assert.is_true(h.has(err, "goroutine 2 [sync.RWMutex.Lock]:\n\t"
                              .. path .. ":4"), err)
    assert.is_true(h.has(err, "goroutine 3 [sync.RWMutex.RLock]:\n\t"
                              .. path .. ":5"), err)
  end)
end)

describe("sync.rwmutex across states", function()
  -- HammerRWMutex with parallel goroutines: each one logs on a shared
  -- channel while it holds the lock (after it got it, before it lets it
  -- go), so the log is in lock order: no event falls inside a write, and
  -- no write starts while a read is open.
  it("excludes writers from readers of every state", function()
    local out, err, code = h.run_script([[
      local g = require "goroutines"
      g.gomaxprocs(2)
      local rw, log, done = g.sync.rwmutex(), g.chan(1000), g.chan()
      local N = 40
      local function writer(rw, log, done, N, id)
        for _ = 1, N do
          local _ <close> = rw:lock()
          log:send("w+" .. id)
          log:send("w-" .. id)
        end
        done:send(true)
      end
      local function reader(rw, log, done, N, id)
        local g = require "goroutines"
        for _ = 1, N do
          local _ <close> = rw:rlock()
          log:send("r+")
          g.gosched()
          log:send("r-")
        end
        done:send(true)
      end
      g.parallel(writer, rw, log, done, N, 1)
      g.parallel(reader, rw, log, done, N, 1)
      g.go(writer, rw, log, done, N, 2)
      g.go(reader, rw, log, done, N, 2)
      g.parallel(reader, rw, log, done, N, 3)
      local ended, readers, writing, bad, events = 0, 0, nil, 0, 0
      local function check(v)
        events = events + 1
        if writing then
          if v ~= "w-" .. writing then bad = bad + 1 end
          writing = nil
        elseif v:sub(1, 2) == "w+" then
          if readers > 0 then bad = bad + 1 end
          writing = v:sub(3)
        elseif v == "r+" then readers = readers + 1
        elseif v == "r-" then readers = readers - 1
        else bad = bad + 1 end
      end
      while ended < 5 do
        local i, v = g.select { log:on_recv(), done:on_recv() }
        if i == 2 then ended = ended + 1 else check(v) end
      end
      while log:len() > 0 do check((log:recv())) end
      print(bad, events, readers)
    ]], 60)
    assert.are.equal(0, code, err)
    assert.are.equal("0\t400\t0\n", out)
  end)

  it("is locked by one state and unlocked by another, and main waits for "
     .. "a worker's write lock", function()
    local out, err, code = h.run_script([[
      local g = require "goroutines"
      local rw, locked, release = g.sync.rwmutex(), g.chan(), g.chan()
      g.parallel(function(rw, locked, release)
        rw:lock()
        locked:send(true)
        release:recv()
        rw:unlock()
      end, rw, locked, release)
      locked:recv()
      g.go(function() g.time.sleep(0.02); release:send(true) end)
      local t0 = g.time.now()
      rw:rlock()                        -- waits for the worker's unlock
      print("read after", g.time.since(t0) >= 0.01)
      g.parallel(function(rw, locked) rw:runlock(); locked:send(true) end,
                 rw, locked)
      locked:recv()
      rw:lock()
      print(pcall(rw.runlock, rw))
      rw:unlock()
    ]], 20)
    assert.are.equal(0, code, err)
    assert.is_true(h.has(out, "read after\ttrue\n"), out)
    assert.is_true(h.has(out, "false\t"), out)
    assert.is_true(h.has(out, "sync: RUnlock of unlocked RWMutex\n"), out)
  end)
end)
