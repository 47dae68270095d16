-- SPEC "Diagnostics", leaks: a goroutine blocked forever on objects that no
-- running code can reach is found by the collector, reported once by
-- g.leaks() (or on stderr at exit under GOROUTINES_DEBUG=leaks) and freed.
--
-- The patterns are those of Go's runtime/testdata/testgoroutineleakprofile:
-- all of simple.go and commonpatterns.go, and goker cases. Each scenario runs
-- in a function of its own that returns before g.leaks(): what only its
-- locals held is unreachable then, as in Go once the function returned.
-- Where Go's tests rely on timing (sleeps of the test harness, GOMAXPROCS=1),
-- the port forces the interleaving that leaks with g.gosched().

local g = require "goroutines"
local h = require "spec.helpers"

-- Lets every runnable goroutine reach the point where it blocks.
local function settle(n)
  for _ = 1, n or 20 do g.gosched() end
end

-- The wait reasons of the leaks g.leaks() returns, sorted.
local function reasons(reports)
  local r = {}
  for i, rep in ipairs(reports) do r[i] = rep.wait end
  table.sort(r)
  return r
end

-- n copies of s (for expected lists).
local function rep(s, n)
  local t = {}
  for i = 1, n do t[i] = s end
  return t
end

-- The sorted concatenation of lists.
local function all(...)
  local t = {}
  for _, l in ipairs({...}) do
    for _, v in ipairs(l) do t[#t + 1] = v end
  end
  table.sort(t)
  return t
end

-- Runs scenario, lets its goroutines block, and returns the wait reasons of
-- the leaks found.
local function leaksof(scenario, ...)
  scenario(...)
  settle()
  return reasons(g.leaks())
end

describe("leaks: Go's simple.go", function()
  before_each(function() g.leaks() end)   -- what earlier files left

  it("NilRecv, NilSend: a select whose only case is disabled (a nil channel)",
     function()
    assert.same({"select (no cases)", "select (no cases)"}, leaksof(function()
      g.go(function() g.select { false } end)
      g.go(function() g.select { false, false } end)
    end))
  end)

  it("SelectNoCases", function()
    assert.same({"select (no cases)"}, leaksof(function()
      g.go(function() g.select {} end)
    end))
  end)

  it("SelectNoCasesMain: main blocked in select {} is not a leak", function()
    local out, err, code = h.run_script([[
      local g = require "goroutines"
      local function f()
        local ch = g.chan()
        g.go(function() ch:recv() end)   -- leaks: only f held ch
      end
      f()
      g.go(function()
        for _ = 1, 10 do g.gosched() end
        for _, r in ipairs(g.leaks()) do print(r.id, r.wait) end
        io.stdout:flush()
        os.exit(0)
      end)
      g.select {}
    ]])
    assert.are.equal(0, code, err)
    assert.are.equal("2\tchan receive\n", out)
  end)

  it("ChanRecv, ChanSend", function()
    assert.same({"chan receive", "chan send"}, leaksof(function()
      g.go(function() g.chan():recv() end)
      g.go(function() g.chan():send(0) end)
    end))
  end)

  it("Select", function()
    assert.same({"select"}, leaksof(function()
      g.go(function()
        g.select { g.chan():on_send(0), g.chan():on_recv() }
      end)
    end))
  end)

  it("WaitGroup", function()
    assert.same({"sync.WaitGroup.Wait"}, leaksof(function()
      g.go(function()
        local wg = g.sync.waitgroup()
        wg:add(1)
        wg:wait()
      end)
    end))
  end)

  it("MutexStack: 1000 goroutines locking their own mutex twice", function()
    assert.same(rep("sync.Mutex.Lock", 1000), leaksof(function()
      for _ = 1, 1000 do
        g.go(function()
          local mu = g.sync.mutex()
          mu:lock()
          mu:lock()
        end)
      end
    end))
  end)

  it("MutexHeap: the mutex made by a goroutine that ended", function()
    assert.same(rep("sync.Mutex.Lock", 1000), leaksof(function()
      for _ = 1, 1000 do
        g.go(function()
          local mu = g.sync.mutex()
          g.go(function()
            mu:lock()
            mu:lock()
          end)
        end)
      end
    end))
  end)

  it("RWMutexRLock, RWMutexLock", function()
    assert.same({"sync.RWMutex.Lock", "sync.RWMutex.RLock"}, leaksof(function()
      g.go(function()
        local mu = g.sync.rwmutex()
        mu:lock()
        mu:rlock()
      end)
      g.go(function()
        local mu = g.sync.rwmutex()
        mu:lock()
        mu:lock()
      end)
    end))
  end)

  it("Cond", function()
    assert.same({"sync.Cond.Wait"}, leaksof(function()
      g.go(function()
        local mu = g.sync.mutex()
        local cond = g.sync.cond(mu)
        mu:lock()
        cond:wait()
      end)
    end))
  end)

  it("Mixed: a sender and the goroutine waiting for it", function()
    assert.same({"chan send", "sync.WaitGroup.Wait"}, leaksof(function()
      g.go(function()
        local ch, wg = g.chan(), g.sync.waitgroup()
        wg:add(1)
        g.go(function()
          ch:send(0)
          wg:done()
        end)
        wg:wait()
        ch:recv()
      end)
    end))
  end)

  it("NoLeakGlobal: a channel that a global holds", function()
    local got
    NOLEAK_CH = g.chan()
    assert.same({}, leaksof(function()
      g.go(function() got = NOLEAK_CH:recv() end)
    end))
    NOLEAK_CH:send(7)
    NOLEAK_CH = nil
    settle()
    assert.are.equal(7, got)
  end)
end)

describe("leaks: Go's commonpatterns.go", function()
  before_each(function() g.leaks() end)

  it("NoCloseRange: the sender without workers, the workers of a channel "
     .. "never closed", function()
    local function nocloserange(list, workers)
      local ch = g.chan()
      for _ = 1, workers do
        g.go(function()
          for item in ch:range() do local _ = item end
        end)
      end
      for _, item in ipairs(list) do ch:send(item) end
    end
    assert.same(all({"chan send"}, rep("chan receive", 3)), leaksof(function()
      g.go(nocloserange, {1, 2, 3}, 0)
      g.go(nocloserange, {1, 2, 3}, 3)
    end))
  end)

  it("MethodContractViolation: a worker never stopped", function()
    local function start(w)
      g.go(function()
        while true do
          local i = g.select { w.ch:on_recv(), w.done:on_recv() }
          if i == 2 then return end
        end
      end)
    end
    local function lifecycle(items)
      local w = { ch = g.chan(), done = g.chan() }
      start(w)
      for _, item in ipairs(items) do w.ch:send(item) end
      g.gosched()
      -- returns without w.done:close(): the worker leaks
    end
    assert.same({"select"}, leaksof(function()
      lifecycle({1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
    end))
  end)

  it("DoubleSend: a missing return sends twice", function()
    local function doublesend(ch, err)
      if err then ch:send(nil) end
      ch:send(true)
    end
    assert.same({"chan send"}, leaksof(function()
      local ch = g.chan()
      g.go(doublesend, ch, nil)
      ch:recv()
      g.go(doublesend, ch, "error")
      ch:recv()
      local ch1 = g.chan(1)
      g.go(doublesend, ch1, "error")
      ch1:recv()
      settle()
    end))
  end)

  it("EarlyReturn: the parent returns before it receives", function()
    local function earlyreturn(err)
      local ch = g.chan()
      g.go(function() ch:send({}) end)
      if err then return end
      ch:recv()
    end
    assert.same({"chan send"}, leaksof(function()
      g.go(earlyreturn, "error")
    end))
  end)

  it("NCastLeak: the first result is taken, the other senders block",
     function()
    local function ncast(items)
      local ch = g.chan()
      for _ = 1, #items do g.go(function() ch:send({}) end) end
      ch:recv()
    end
    assert.same(all({"chan receive"}, rep("chan send", 4)), leaksof(function()
      g.go(ncast, {})
      g.go(ncast, {1, 2, 3, 4, 5})
    end))
  end)

  it("Timeout: a done context leaves the sender behind", function()
    local function timeout(ctx)
      local ch = g.chan()
      g.go(function() ch:send({}) end)
      g.select { ch:on_recv(), ctx:done():on_recv() }
    end
    assert.same(rep("chan send", 100), leaksof(function()
      local ctx, cancel = g.context.with_cancel(g.context.background())
      cancel()
      for _ = 1, 100 do g.go(timeout, ctx) end
      settle()
    end))
  end)
end)

describe("leaks: Go's goker cases", function()
  before_each(function() g.leaks() end)

  it("Cockroach584: a missing unlock before break", function()
    assert.same({"sync.Mutex.Lock"}, leaksof(function()
      local gossip = { mu = g.sync.mutex(), closed = true }
      local function loop()
        while true do
          gossip.mu:lock()
          if gossip.closed then break end   -- missing unlock
          gossip.mu:unlock()
        end
      end
      g.go(function()
        loop()   -- bootstrap
        loop()   -- manage
      end)
    end))
  end)

  it("Grpc795: GracefulStop locks twice", function()
    assert.same(rep("sync.Mutex.Lock", 100), leaksof(function()
      for _ = 1, 100 do
        g.go(function()
          local s = { mu = g.sync.mutex(), drain = false }
          g.go(function() s.mu:lock(); s.mu:unlock() end)   -- Serve
          g.gosched()
          for _ = 1, 3 do   -- GracefulStop, idempotent it was thought
            s.mu:lock()
            if s.drain then
              s.mu:lock()
              return
            end
            s.drain = true
            s.mu:unlock()
          end
        end)
      end
    end))
  end)

  it("Kubernetes6632: a send under the lock that the closer needs",
     function()
    assert.same(all(rep("chan send", 10), rep("sync.Mutex.Lock", 10)),
                leaksof(function()
      for _ = 1, 10 do
        g.go(function()
          local f = { reset = g.chan(), lock = g.sync.mutex(),
                      closech = g.chan() }
          g.go(function()   -- WriteFrame
            local _ <close> = f.lock:lock()
            if f.reset == nil then return end
            f.reset:send(true)
          end)
          g.go(function()   -- monitor
            f.closech:recv()
            f.lock:lock()
            f.reset:close()
            f.reset = nil
            f.lock:unlock()
          end)
          g.go(function() f.closech:send(true) end)   -- helper
        end)
      end
    end))
  end)

  it("Moby4951: two deletes of one device lock in opposite orders",
     function()
    assert.same({"sync.Mutex.Lock", "sync.Mutex.Lock"}, leaksof(function()
      g.go(function()
        local devices = { mu = g.sync.mutex(),
                          infos = { info1 = { lock = g.sync.mutex() } } }
        local function delete(hash)
          local _ <close> = devices.mu:lock()
          local info = devices.infos[hash]
          local _ <close> = info.lock:lock()
          g.gosched()
          devices.mu:unlock()   -- removeDeviceAndWait
          g.gosched()
          devices.mu:lock()
        end
        g.go(delete, "info1")
        g.go(delete, "info1")
      end)
    end))
  end)

  it("Moby28462: a monitor waiting for the lock that the stopper holds",
     function()
    assert.same(all(rep("chan send", 20), rep("sync.Mutex.Lock", 20)),
                leaksof(function()
      for _ = 1, 20 do
        g.go(function()
          local c = { mu = g.sync.mutex(), stop = g.chan() }
          g.go(function()   -- monitor
            while true do
              local i = g.select { c.stop:on_recv(), default = true }
              if i == 1 then return end
              g.gosched()   -- handleProbeResult
              c.mu:lock()
              c.mu:unlock()
            end
          end)
          g.go(function()   -- StateChanged
            local _ <close> = c.mu:lock()
            c.stop:send(true)   -- CloseMonitorChannel
          end)
        end)
      end
    end))
  end)

  it("Istio16224: an event handler blocked on done under the lock",
     function()
    assert.same(all(rep("chan send", 10), rep("sync.Mutex.Lock", 10)),
                leaksof(function()
      for _ = 1, 10 do
        g.go(function()
          local events, done, lock = g.chan(), g.chan(), g.sync.mutex()
          local function handler()
            local _ <close> = lock:lock()
            done:send(true)
          end
          local stop = g.chan()
          g.go(function()   -- controller.Run
            while true do
              local i, _, ok = g.select { stop:on_recv(), events:on_recv() }
              if i == 1 then return end
              if ok then handler() end
            end
          end)
          events:send(0)   -- controller.Create
          g.gosched()
          lock:lock()   -- blocks: the handler holds it
          lock:unlock()
          done:recv()
          stop:close()
        end)
      end
    end))
  end)

  it("Grpc1424: a watcher whose done channel nobody closes", function()
    assert.same({"chan receive"}, leaksof(function()
      g.go(function()
        local addrch = g.chan()
        local waitc = g.chan(1)
        g.go(function()
          local donech = g.chan()
          g.go(function()   -- lbWatcher
            for _ in addrch:range() do end
          end)
          donech:recv()
          waitc:close()
        end)
        addrch:close()
      end)
    end))
  end)

  it("Syncthing4829: RLock under the Lock of the same RWMutex", function()
    assert.same({"sync.RWMutex.RLock"}, leaksof(function()
      g.go(function()
        local svc = { mu = g.sync.rwmutex() }
        local mapping = { mu = g.sync.rwmutex(), addresses = { test = 0 } }
        local _ <close> = svc.mu:lock()   -- RemoveMapping
        mapping.mu:lock()   -- clearAddresses
        mapping.addresses.test = nil
        mapping.mu:rlock()   -- notify
        mapping.mu:runlock()
        mapping.mu:unlock()
      end)
    end))
  end)

  it("Kubernetes1321: distribute sends under the lock stopWatching needs",
     function()
    assert.same(all(rep("chan send", 50), rep("sync.Mutex.Lock", 50)),
                leaksof(function()
      for _ = 1, 50 do
        g.go(function()
          local m = { lock = g.sync.mutex(), watchers = {} }
          local w = { result = g.chan(), id = 1 }
          m.watchers[w.id] = w   -- Watch
          g.go(function()   -- loop, distribute
            for _ = 1, 100 do
              local _ <close> = m.lock:lock()
              for _, x in pairs(m.watchers) do
                x.result:send(true)
                g.gosched()
              end
            end
          end)
          g.gosched()
          local _ <close> = m.lock:lock()   -- stopWatching
          m.watchers[w.id] = nil
          w.result:close()
        end)
      end
    end))
  end)

  it("Cockroach584's control: the same loop with the unlock does not leak",
     function()
    local finished = false
    assert.same({}, leaksof(function()
      local gossip = { mu = g.sync.mutex(), closed = true }
      g.go(function()
        for _ = 1, 2 do
          while true do
            gossip.mu:lock()
            if gossip.closed then
              gossip.mu:unlock()
              break
            end
            gossip.mu:unlock()
          end
        end
        finished = true
      end)
    end))
    assert.is_true(finished)
  end)
end)

describe("leaks: reports and freeing", function()
  before_each(function() g.leaks() end)

  it("a report gives the id, the wait, where it blocked and where it was "
     .. "spawned, once", function()
    local id, blocked, spawned
    local function scenario()
      local ch = g.chan()
      spawned = debug.getinfo(1, "l").currentline + 1
      id = g.go(function()
        blocked = debug.getinfo(1, "l").currentline + 1
        ch:recv()
      end)
    end
    scenario()
    settle()
    local r = g.leaks()
    assert.are.equal(1, #r)
    assert.same({ id = id, wait = "chan receive",
                  where = "spec/leaks_spec.lua:" .. blocked,
                  created = "spec/leaks_spec.lua:" .. spawned }, r[1])
    assert.same({}, g.leaks())
  end)

  it("a leak no longer counts, nor shows in g.stack(); its <close> "
     .. "variables do not run", function()
    local closed = false
    local id
    local before = g.numgoroutine()
    local function scenario()
      local ch = g.chan()
      id = g.go(function()
        local _ <close> = setmetatable({}, { __close = function()
          closed = true
        end })
        ch:recv()
      end)
    end
    scenario()
    settle()
    assert.are.equal(before + 1, g.numgoroutine())
    assert.truthy(g.stack():find("goroutine " .. id .. " [chan receive]",
                                 1, true))
    assert.are.equal(1, #g.leaks())
    assert.are.equal(before, g.numgoroutine())
    assert.falsy(g.stack():find("goroutine " .. id .. " ", 1, true))
    collectgarbage()
    collectgarbage()
    assert.is_false(closed)
  end)

  it("a goroutine that leaks holding a mutex guard leaves it locked",
     function()
    local t = { got = false }
    local function scenario()
      local ch = g.chan()
      t.mu = g.sync.mutex()
      g.go(function()
        local _ <close> = t.mu:lock()
        ch:recv()
      end)
      settle()
      g.go(function()
        local mu = t.mu
        mu:lock()
        t.got = true
        mu:unlock()
      end)
    end
    scenario()
    settle()
    assert.same({"chan receive"}, reasons(g.leaks()))
    settle()
    assert.is_false(t.got)   -- the waiter on mu is reachable: not a leak
    assert.same({}, g.leaks())
    t.mu = nil   -- now it is: it waits for a guard that stays locked
    assert.same({"sync.Mutex.Lock"}, reasons(g.leaks()))
    assert.is_false(t.got)
  end)

  it("a goroutine parked on a channel that another state holds is not a "
     .. "leak", function()
    local result = g.chan(1)
    local function scenario()
      local ch, gate = g.chan(), g.chan()
      g.go(function() result:send(ch:recv()) end)
      settle()   -- it parks before ch crosses
      g.parallel(function(c, gt)
        gt:recv()
        c:send(42)
      end, ch, gate)
      return gate
    end
    local gate = scenario()
    settle()
    assert.same({}, g.leaks())
    gate:send(true)
    assert.are.equal(42, result:recv())
  end)

  it("a select with a timer case is not a leak", function()
    local result = g.chan(1)
    local function scenario()
      g.go(function()
        local i = g.select { g.chan():on_recv(),
                             g.time.after(0.05):on_recv() }
        result:send(i)
      end)
    end
    scenario()
    settle()
    assert.same({}, g.leaks())
    assert.are.equal(2, result:recv())
  end)

  it("a goroutine woken after it was weakened runs on", function()
    local result = g.chan(1)
    local ch = g.chan()
    g.go(function() result:send(ch:recv() + 1) end)
    settle()
    assert.same({}, g.leaks())   -- weak now, anchored by ch
    ch:send(1)
    collectgarbage()
    collectgarbage()
    assert.are.equal(2, result:recv())
  end)

  it("a weak goroutine woken by the last holder of its channel runs on",
     function()
    local result = g.chan(1)
    local t = {}
    local function scenario()
      local ch = g.chan()
      g.go(function()
        local v = ch:recv()
        g.gosched()
        result:send(v + 1)
      end)
      t.ch = ch
    end
    scenario()
    settle()
    assert.same({}, g.leaks())   -- weak now, anchored by t.ch
    t.ch:send(1)   -- readies it
    t.ch = nil     -- nothing holds the channel any more
    collectgarbage()
    collectgarbage()
    assert.are.equal(2, result:recv())
    assert.same({}, g.leaks())
  end)

  it("a view of a channel keeps its parked goroutines", function()
    local got
    local function scenario()
      local ch = g.chan()
      g.go(function() got = ch:recv() end)
      return ch:sender()
    end
    local s = scenario()
    settle()
    assert.same({}, g.leaks())
    s:send(5)
    settle()
    assert.are.equal(5, got)
  end)

  it("an rlocker and a cond keep the goroutines parked on their lock",
     function()
    local t = { n = 0 }
    local function scenario()
      local rw, mu = g.sync.rwmutex(), g.sync.mutex()
      rw:lock()
      mu:lock()
      g.go(function() rw:rlock(); t.n = t.n + 1; rw:runlock() end)
      g.go(function() mu:lock(); t.n = t.n + 1; mu:unlock() end)
      t.rl, t.cond = rw:rlocker(), g.sync.cond(mu)
    end
    scenario()   -- only the rlocker and the cond hold rw and mu now
    settle()
    assert.same({}, g.leaks())
    g.go(function() t.cond:wait() end)   -- it unlocks mu, as Go's does
    settle()
    assert.are.equal(1, t.n)
    assert.same({}, g.leaks())
    t.rl, t.cond = nil, nil
    assert.same({"sync.Cond.Wait", "sync.RWMutex.RLock"}, reasons(g.leaks()))
  end)

  it("GOROUTINES_DEBUG=leaks prints the leaks not returned, at exit",
     function()
    local out, err, code = h.run_script([[
      local g = require "goroutines"
      local function f()
        local ch = g.chan()
        g.go(function()
          ch:send(1)
        end)
      end
      f()
      g.gosched()
      g.go(function() g.chan():recv() end)
      g.gosched()
      local r = g.leaks()
      print(#r, r[1].id, r[1].wait)
      collectgarbage()
    ]], 60, { GOROUTINES_DEBUG = "leaks" })
    assert.are.equal(0, code, err)
    assert.are.equal("2\t2\tchan send\n", out)
    assert.are.equal("", err)
    local out2, err2, code2, path2 = h.run_script([[
      local g = require "goroutines"
      local function f()
        local ch = g.chan()
        g.go(function()
          ch:send(1)
        end)
      end
      f()
      g.gosched()
      for _ = 1, 3 do collectgarbage() end
    ]], 60, { GOROUTINES_DEBUG = "leaks" })
    assert.are.equal(0, code2, err2)
    assert.are.equal("", out2)
    assert.are.equal(string.format(
      "goroutines: leaked goroutine 2 [chan send] at %s:5, created at %s:4\n",
      path2, path2), err2)
  end)

  it("goroutines left when main ends are abandoned, not leaked", function()
    local _, err, code = h.run_script([[
      local g = require "goroutines"
      local ch = g.chan()
      g.go(function() ch:recv() end)
      g.gosched()
    ]], 60, { GOROUTINES_DEBUG = "leaks" })
    assert.are.equal(0, code, err)
    assert.are.equal("", err)
  end)

  it("a leaked goroutine is not in the deadlock report", function()
    local _, err, code = h.run_script([[
      local g = require "goroutines"
      local function f()
        local ch = g.chan()
        g.go(function() ch:recv() end)
      end
      f()
      g.gosched()
      assert(#g.leaks() == 1)
      g.chan():recv()
    ]])
    assert.are_not.equal(0, code)
    assert.truthy(err:find("all goroutines are asleep - deadlock!", 1, true))
    assert.truthy(err:find("goroutine 1 [chan receive]", 1, true))
    assert.falsy(err:find("goroutine 2 ", 1, true))
  end)
end)
