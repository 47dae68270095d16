-- SPEC "select": handlers, returns without handlers, default, disabled
-- (false) cases, blocking select, closed channels, and Go's select tests
-- (self-select, duplicate channel, fairness, non-blocking race).

local g = require "goroutines"
local h = require "spec.helpers"

describe("g.select with handlers", function()
  it("runs the ready receive case's handler with v, ok and returns its "
     .. "results", function()
    local a, b = g.chan(1), g.chan(1)
    b:send("B")
    local r = table.pack(g.select {
      a:on_recv(function() return "a" end),
      b:on_recv(function(v, ok) return "b", v, ok end),
    })
    assert.are.same({ n = 3, "b", "B", true }, r)
    assert.are.equal(0, #b)
  end)

  it("runs a send case's handler with no arguments", function()
    local ch = g.chan(1)
    local nargs
    local r = table.pack(g.select {
      ch:on_send("v", function(...) nargs = select("#", ...); return "sent" end),
    })
    assert.are.same({ n = 1, "sent" }, r)
    assert.are.equal(0, nargs)
    assert.are.equal("v", ch:recv())
  end)

  it("can send nil and false", function()
    local ch = g.chan(2)
    g.select { ch:on_send(nil, function() end) }
    g.select { ch:on_send(false) }
    assert.are.same({ n = 2, nil, true }, table.pack(ch:recv()))
    assert.are.same({ n = 2, false, true }, table.pack(ch:recv()))
  end)

  it("gives a receive handler nil, false on a closed channel", function()
    local ch = g.chan()
    ch:close()
    local r = table.pack(g.select {
      ch:on_recv(function(...) return select("#", ...), ... end),
    })
    assert.are.same({ n = 3, 2, nil, false }, r)
  end)

  it("returns what the handler returns, nothing included", function()
    local ch = g.chan(1)
    ch:send(1)
    assert.are.equal(0, select("#", g.select { ch:on_recv(function() end) }))
  end)

  it("lets a handler raise: the error leaves g.select", function()
    local ch = g.chan(1)
    ch:send(1)
    h.raises("handler failed", g.select, {
      ch:on_recv(function() error("handler failed") end),
    })
    assert.are.equal(0, #ch)  -- the case was taken before the handler ran
  end)

  it("lets a handler block", function()
    local a, b = g.chan(1), g.chan()
    a:send(5)
    g.go(function() b:send(b:recv() * 2) end)
    local r = g.select {
      a:on_recv(function(v) b:send(v); return b:recv() end),
    }
    assert.are.equal(10, r)
  end)
end)

describe("g.select without handlers", function()
  it("returns the index, value and ok of a receive case", function()
    local a, b = g.chan(1), g.chan(1)
    b:send("x")
    assert.are.same({ n = 3, 2, "x", true },
                    table.pack(g.select { a:on_recv(), b:on_recv() }))
  end)

  it("returns the index, nil and false of a closed channel's receive",
     function()
    local a, b = g.chan(1), g.chan()
    b:close()
    assert.are.same({ n = 3, 2, nil, false },
                    table.pack(g.select { a:on_recv(), b:on_recv() }))
  end)

  it("returns the index of a send case", function()
    local a, b = g.chan(), g.chan(1)
    local i = g.select { a:on_send(1), b:on_send(2) }
    assert.are.equal(2, i)
    assert.are.equal(2, b:recv())
  end)

  it("returns \"default\" for default = true", function()
    local ch = g.chan()
    assert.are.equal("default", g.select { ch:on_recv(), default = true })
  end)

  it("mixes cases with and without handlers", function()
    local a, b = g.chan(1), g.chan(1)
    a:send("A")
    assert.are.equal("handled A", g.select {
      a:on_recv(function(v) return "handled " .. v end), b:on_recv(),
    })
    b:send("B")
    assert.are.same({ n = 3, 2, "B", true }, table.pack(g.select {
      a:on_recv(function(v) return "handled " .. v end), b:on_recv(),
    }))
  end)
end)

describe("default", function()
  it("runs when no case is ready and returns its results", function()
    local a, b = g.chan(), g.chan(1)
    b:send(1)  -- b is full: a send on it is not ready
    local r = table.pack(g.select {
      a:on_recv(function() return "recv" end),
      b:on_send(2, function() return "send" end),
      default = function(...) return "default", select("#", ...) end,
    })
    assert.are.same({ n = 2, "default", 0 }, r)
    assert.are.equal(1, #b)
  end)

  it("is never chosen while a case is ready", function()
    local ch = g.chan(1)
    for _ = 1, 100 do
      ch:send(1)
      assert.are.equal(1, g.select { ch:on_recv(), default = true })
    end
  end)

  it("alone runs at once", function()
    assert.are.equal("only", g.select { default = function() return "only" end })
  end)

  it("is chosen for an unbuffered send with no receiver, not when one waits",
     function()
    local ch, got = g.chan(), nil
    assert.are.equal("default", g.select { ch:on_send(1), default = true })
    g.go(function() got = ch:recv() end)
    g.gosched()
    assert.are.equal(1, g.select { ch:on_send(2), default = true })
    g.gosched()
    assert.are.equal(2, got)
  end)

  it("does not start goroutines: select with default does not block",
     function()
    local ran = false
    g.go(function() ran = true end)
    assert.are.equal("default", g.select { g.chan():on_recv(), default = true })
    assert.is_false(ran)
    g.gosched()
    assert.is_true(ran)
  end)
end)

describe("false cases", function()
  it("are disabled and keep the other cases' indexes", function()
    local ch = g.chan(1)
    ch:send("v")
    assert.are.same({ n = 3, 3, "v", true },
                    table.pack(g.select { false, false, ch:on_recv() }))
  end)

  it("with only false cases and a default, default runs", function()
    assert.are.equal("default", g.select { false, false, default = true })
  end)

  it("turn a case off as a nil channel does in Go", function()
    local a, b = g.chan(1), g.chan(1)
    a:send(1)
    b:send(2)
    local got = {}
    local a_open, b_open = true, true
    a:close()
    b:close()
    while a_open or b_open do
      local i, v, ok = g.select {
        a_open and a:on_recv() or false,
        b_open and b:on_recv() or false,
      }
      if ok then
        got[#got + 1] = v
      elseif i == 1 then
        a_open = false
      else
        b_open = false
      end
    end
    table.sort(got)
    assert.are.same({ 1, 2 }, got)
  end)
end)

describe("a blocking select", function()
  it("waits for a sender on any of its channels", function()
    local a, b = g.chan(), g.chan()
    g.go(function() g.time.sleep(0.01); b:send("late") end)
    assert.are.same({ n = 3, 2, "late", true },
                    table.pack(g.select { a:on_recv(), b:on_recv() }))
  end)

  it("waits for a receiver of its send case", function()
    local a, b = g.chan(), g.chan()
    local got
    g.go(function() got = a:recv() end)
    assert.are.equal(1, g.select { a:on_send("to a"), b:on_recv() })
    g.gosched()
    assert.are.equal("to a", got)
  end)

  it("is woken by close with nil, false", function()
    local a, b = g.chan(), g.chan()
    g.go(function() a:close() end)
    assert.are.same({ n = 3, 1, nil, false },
                    table.pack(g.select { a:on_recv(), b:on_recv() }))
  end)

  it("in a send case on a channel closed while waiting raises "
     .. "'send on closed channel'", function()
    local a, b = g.chan(), g.chan()
    g.go(function() a:close() end)
    h.raises("send on closed channel", g.select, { a:on_send(1), b:on_recv() })
  end)

  it("is woken exactly once when several of its channels become ready",
     function()
    local a, b = g.chan(), g.chan()
    local results = {}
    local done = g.chan()
    g.go(function()
      results[#results + 1] = table.pack(g.select { a:on_recv(), b:on_recv() })
      done:send(true)
    end)
    g.gosched()
    a:send("first")  -- hands the value to the waiting select
    -- The select is done: it must not still be waiting on b.
    assert.are.equal("default", g.select { b:on_send("second"), default = true })
    done:recv()
    assert.are.same({ table.pack(1, "first", true) }, results)
  end)

  it("is woken once when all its channels are closed", function()
    local a, b, other = g.chan(), g.chan(), g.chan()
    local n, r, v = 0, nil, nil
    g.go(function()
      r = table.pack(g.select { a:on_recv(), b:on_recv() })
      n = n + 1
      v = other:recv()  -- a second wake-up would end this wait early
    end)
    g.gosched()
    a:close()
    b:close()
    for _ = 1, 3 do g.gosched() end
    assert.are.equal(1, n)
    assert.are.same({ n = 3, 1, nil, false }, r)
    assert.is_nil(v)
    other:send("x")
    g.gosched()
    assert.are.equal("x", v)
  end)

  it("leaves no waiter behind on the cases that lost", function()
    local a, b = g.chan(), g.chan()
    local done = g.chan()
    for _ = 1, 3 do
      g.go(function()
        g.select { a:on_recv(), b:on_recv() }
        done:send(true)
      end)
    end
    g.gosched()
    for _ = 1, 3 do a:send(1) end
    for _ = 1, 3 do done:recv() end
    -- Nobody is receiving from b any more.
    assert.are.equal("default", g.select { b:on_send(1), default = true })
  end)
end)

describe("a select on a closed channel", function()
  it("is always ready to receive, before default", function()
    local ch = g.chan()
    ch:close()
    for _ = 1, 10 do
      assert.are.same({ n = 3, 1, nil, false },
                      table.pack(g.select { ch:on_recv(), default = true }))
    end
  end)

  it("raises 'send on closed channel' for a send case", function()
    local ch = g.chan(1)
    ch:close()
    h.raises("send on closed channel", g.select,
             { ch:on_send(1), default = true })
  end)
end)

describe("direction", function()
  it("on_recv on a send-only view raises", function()
    local s = g.chan(1):sender()
    h.raises("receive from send-only channel",
             function() return g.select { s:on_recv(), default = true } end)
  end)

  it("on_send on a receive-only view raises", function()
    local r = g.chan(1):receiver()
    h.raises("send to receive-only channel",
             function() return g.select { r:on_send(1), default = true } end)
  end)

  it("views make cases in the allowed direction", function()
    local ch = g.chan(1)
    assert.are.equal(1, g.select { ch:sender():on_send("x") })
    assert.are.same({ n = 3, 1, "x", true },
                    table.pack(g.select { ch:receiver():on_recv() }))
  end)
end)

-- Mirrors of Go's runtime/chan_test.go.
describe("Go's select tests", function()
  -- TestSelfSelect: send and receive cases on the same channel in one
  -- select neither crash nor deadlock, and (unbuffered) a goroutine never
  -- receives its own value.
  for _, cap in ipairs { 0, 10 } do
    it("self-select, capacity " .. cap, function()
      local c = g.chan(cap)
      local wg = g.sync.waitgroup()
      local self_receives = 0
      wg:add(2)
      for p = 0, 1 do
        g.go(function()
          for i = 0, 499 do
            local v
            if p == 0 or i % 2 == 0 then
              g.select {
                c:on_send(p),
                c:on_recv(function(x) v = x end),
              }
            else
              g.select {
                c:on_recv(function(x) v = x end),
                c:on_send(p),
              }
            end
            if cap == 0 and v == p then self_receives = self_receives + 1 end
          end
          wg:done()
        end)
      end
      wg:wait()
      assert.are.equal(0, self_receives)
    end)
  end

  -- TestSelectDuplicateChannel: a goroutine queued on the same channel
  -- twice dequeues itself cleanly.
  it("duplicate channel in one select", function()
    local c, d, e = g.chan(), g.chan(), g.chan()
    local b_got
    g.go(function()  -- A
      g.select { c:on_recv(), c:on_recv(), d:on_recv() }
      e:send(9)
    end)
    g.gosched()  -- A is queued first on c
    g.go(function() b_got = c:recv() end)  -- B
    g.gosched()  -- B is queued on c after A
    d:send(7)    -- wakes A, which dequeues itself from c
    assert.are.equal(9, e:recv())
    c:send(8)    -- must wake B, not A again
    g.gosched()
    assert.are.equal(8, b_got)
  end)

  it("duplicate ready channel: one case taken, one value consumed",
     function()
    local c = g.chan(1)
    c:send("only")
    local i, v = g.select { c:on_recv(), c:on_recv() }
    assert.is_true(i == 1 or i == 2)
    assert.are.equal("only", v)
    assert.are.equal("default", g.select { c:on_recv(), c:on_recv(),
                                           default = true })
  end)

  -- Fairness: 4 ready cases over 4000 selects.  Each count is
  -- Binomial(4000, 1/4): mean 1000, sd 27.4; the band is +-150 (5.5 sd).
  it("fairness: each of 4 ready cases is chosen about equally often",
     function()
    local chans = {}
    for i = 1, 4 do chans[i] = g.chan(1); chans[i]:send(i) end
    local counts, repeats, last = { 0, 0, 0, 0 }, 0, nil
    for _ = 1, 4000 do
      local i, v = g.select {
        chans[1]:on_recv(), chans[2]:on_recv(),
        chans[3]:on_recv(), chans[4]:on_recv(),
      }
      assert.are.equal(i, v)
      counts[i] = counts[i] + 1
      if i == last then repeats = repeats + 1 end
      last = i
      chans[i]:send(i)
    end
    for i = 1, 4 do
      assert.is_true(counts[i] > 850 and counts[i] < 1150,
                     "case " .. i .. " chosen " .. counts[i] .. " times")
    end
    -- Independent choices repeat the previous one 1/4 of the time too
    -- (a round-robin would never repeat).
    assert.is_true(repeats > 850 and repeats < 1150,
                   "same case twice in a row " .. repeats .. " times")
  end)

  -- TestSelectFairness, with 2000 trials: cases 1 and 2 never ready, 3 and
  -- 4 always ready; 10 sigma band as in Go.
  it("fairness: Go's TestSelectFairness", function()
    local trials = 2000
    local c1, c2 = g.chan(trials + 1), g.chan(trials + 1)
    for _ = 1, trials + 1 do c1:send(1); c2:send(2) end
    local c3, c4 = g.chan(), g.chan()
    local out, done = g.chan(), g.chan()
    local wg = g.sync.waitgroup()
    wg:add(1)
    g.go(function()
      while true do
        local _, b = g.select {
          c3:on_recv(), c4:on_recv(), c1:on_recv(), c2:on_recv(),
        }
        local stop = g.select {
          out:on_send(b, function() return false end),
          done:on_recv(function() return true end),
        }
        if stop then break end
      end
      wg:done()
    end)
    local cnt1, cnt2 = 0, 0
    for _ = 1, trials do
      local b = out:recv()
      if b == 1 then cnt1 = cnt1 + 1
      elseif b == 2 then cnt2 = cnt2 + 1
      else error("unexpected value " .. tostring(b)) end
    end
    done:close()
    wg:wait()
    local mean, sd = trials * 0.5, math.sqrt(trials * 0.25)
    assert.is_true(math.abs(cnt1 - mean) <= 10 * sd,
                   ("unfair select: %d, %d"):format(cnt1, cnt2))
  end)

  -- TestNonblockSelectRace: one of c1, c2 always holds a value, so the
  -- goroutine's non-blocking select never takes default.
  it("non-blocking race", function()
    local done = g.chan(1)
    local failures = 0
    for _ = 1, 300 do
      local c1, c2 = g.chan(1), g.chan(1)
      c1:send(1)
      g.go(function()
        local r = g.select { c1:on_recv(), c2:on_recv(), default = true }
        done:send(r ~= "default")
      end)
      c2:send(1)
      g.select { c1:on_recv(), default = true }
      if not done:recv() then failures = failures + 1 end
    end
    assert.are.equal(0, failures)
  end)

  -- TestNonblockSelectRace2: the same with a closed channel.
  it("non-blocking race with close", function()
    local done = g.chan(1)
    local failures = 0
    for _ = 1, 300 do
      local c1, c2 = g.chan(1), g.chan()
      c1:send(1)
      g.go(function()
        local r = g.select { c1:on_recv(), c2:on_recv(), default = true }
        done:send(r ~= "default")
      end)
      c2:close()
      g.select { c1:on_recv(), default = true }
      if not done:recv() then failures = failures + 1 end
    end
    assert.are.equal(0, failures)
  end)
end)

describe("values captured by a select", function()
  it("keep a scalar's type and value, sent at once or after a wait",
     function()
    local values = { 1, 1.0, -0.0, 1 / 0, math.mininteger, 2 ^ 53, true,
                     false }
    local ch = g.chan(1)
    local function show(v)
      return math.type(v) and (math.type(v) .. " " .. string.format("%q", v))
             or tostring(v)
    end
    for _, v in ipairs(values) do
      assert.are.equal(1, g.select { ch:on_send(v) })       -- buffered
      assert.are.equal(show(v), show(ch:recv()))
    end
    local case = ch:on_send(0 / 0)
    assert.are.equal(1, g.select { case })
    local nan = ch:recv()
    assert.is_true(nan ~= nan)
    assert.are.equal(1, g.select { case })   -- the same case, sent again
    assert.is_true(ch:recv() ~= nan)
    local un, done, got = g.chan(), g.chan(), {}
    g.go(function()
      for i = 1, #values do
        g.gosched()   -- the select waits first
        got[i] = show(un:recv())
      end
      done:send(true)
    end)
    for _, v in ipairs(values) do
      g.select { un:on_send(v), g.chan():on_recv() }
    end
    done:recv()
    local want = {}
    for i, v in ipairs(values) do want[i] = show(v) end
    assert.are.same(want, got)
  end)

  -- Case 2's value is the handle of c: packing it shares c, whose case 1
  -- value was captured first, as a plain value of this state.
  local stale = [[
    local g = require "goroutines"
    local c2, res = g.chan(), g.chan()
    g.parallel(function(c2, res)
      g.go(function()
        for _ = 1, 20 do g.time.sleep(0.005) collectgarbage() end
      end)
      g.time.sleep(0.05)              -- case 2 is not ready at first
      local c = c2:recv()
      local v = c:recv()
      g.time.sleep(0.05)
      res:send(type(v) .. " " .. tostring(type(v) == "table" and v.tag))
    end, c2, res)
    local c = g.chan(1)
    print(g.select { c:on_send({ tag = "hello" }), c2:on_send(c) })
    c2:send(c)
    print(res:recv())
  ]]

  it("are copied when another case of the select shares their channel",
     function()
    local out, err, code = h.run_script(stale, 30)
    assert.are.equal(0, code, err)
    assert.are.equal("1\ntable hello\ttrue\n", out)
  end)

  -- Case 3 shares c2 (its value's channel), so case 2's value (c's
  -- handle) must be packed, which shares c, so case 1's value must be
  -- packed too. The select is repeated until both case 1 and case 2 have
  -- been taken, and a worker receives what they sent.
  it("are copied however long the chain of shared handles", function()
    local out, err, code = h.run_script([[
      local g = require "goroutines"
      local c3, pipe, res = g.chan(1000), g.chan(), g.chan()
      g.parallel(function(pipe, res)
        for ch in pipe:range() do
          local v = ch:recv()
          if type(v) == "userdata" then v = v:cap() end
          res:send(type(v) == "table" and v.tag or v)
        end
      end, pipe, res, c3)   -- c3 is shared
      local got = {}
      for _ = 1, 300 do
        local c, c2 = g.chan(5), g.chan(1)
        local i = g.select { c:on_send({ tag = "deep" }), c2:on_send(c),
                             c3:on_send(c2) }
        if i < 3 and not got[i] then
          pipe:send(i == 1 and c or c2)
          got[i] = res:recv()
        end
      end
      pipe:close()
      print(got[1], got[2])
    ]], 30)
    assert.are.equal(0, code, err)
    assert.are.equal("deep\t5\n", out)
  end)

  it("are released when a later value cannot cross", function()
    local shared = g.chan(1)
    g.parallel(function() end, shared)
    local weak = setmetatable({}, { __mode = "v" })
    h.collect()
    local chans0 = g._stats().chans
    do
      local t = {}
      weak[1] = t
      h.raises("a coroutine cannot be copied", g.select, {
        g.chan(1):on_send(t),                 -- anchored in the registry
        shared:on_send({ g.chan() }),         -- packed, holds a channel
        shared:on_send(coroutine.create(print)),
      })
    end
    h.collect()
    assert.is_nil(weak[1], "the anchored value was leaked")
    assert.are.equal(chans0, g._stats().chans, "the packed value leaked")
    assert.are.equal(0, #shared)
  end)
end)

describe("a blocked select", function()
  -- Go's TestPseudoRandomSend: the receiver comes after the select has
  -- blocked, so the order of its waiters decides. Binomial(100, 1/2):
  -- sd 5, the band is 8 sd.
  it("enqueues its cases in random order (Go's TestPseudoRandomSend)",
     function()
    local c, done = g.chan(), g.chan()
    local seen = { [0] = 0, [1] = 0 }
    g.go(function()
      for _ = 1, 100 do
        g.gosched()   -- let the select block first
        local v = c:recv()
        seen[v] = seen[v] + 1
      end
      done:send(true)
    end)
    for _ = 1, 100 do g.select { c:on_send(1), c:on_send(0) } end
    done:recv()
    assert.is_true(seen[0] >= 10 and seen[1] >= 10,
                   ("sent 0 %d times, 1 %d times"):format(seen[0], seen[1]))
  end)

  it("keeps its cases when the list changes while it waits", function()
    local out, err, code = h.run_script([[
      local g = require "goroutines"
      local a = g.chan()
      local list = { a:on_recv(function(v) return "handled " .. v end) }
      g.go(function()
        list[1] = 42
        list[2] = "junk"
        a:send("x")
      end)
      print(g.select(list))
    ]], 30)
    assert.are.equal(0, code, err)
    assert.are.equal("handled x\n", out)
  end)
end)

describe("case objects", function()
  it("ch:on_recv() without a handler gives the same case every time",
     function()
    local ch = g.chan(1)
    local c1, c2 = ch:on_recv(), ch:on_recv()
    assert.is_true(rawequal(c1, c2))
    local view = ch:receiver()
    assert.is_false(rawequal(view:on_recv(), c1))
    assert.is_true(rawequal(view:on_recv(), view:on_recv()))
    ch:send("a")
    assert.are.same({ 2, "a", true, n = 3 },
                    table.pack(g.select { false, view:on_recv() }))
  end)

  it("with a handler, and send cases, are new at every call", function()
    local ch = g.chan(1)
    local function f() end
    assert.is_false(rawequal(ch:on_recv(f), ch:on_recv(f)))
    assert.is_false(rawequal(ch:on_send(1), ch:on_send(1)))
  end)

  it("may be kept and used in many selects, with their values", function()
    local a, b = g.chan(1), g.chan(1)
    local cases = { a:on_send("x"), a:on_recv(), b:on_recv() }
    local got = {}
    for _ = 1, 6 do
      local i, v = g.select(cases)
      got[#got + 1] = i == 1 and "sent" or v
    end
    assert.are.same({ "sent", "x", "sent", "x", "sent", "x" }, got)
  end)
end)

describe("many selects parked at once in one state", function()
  -- More waiters than a state keeps for reuse (300 against 256), in
  -- blocks of every size (up to 24 cases: past the cases handled on the C
  -- stack), in three rounds, so that blocks are reused by selects of
  -- other sizes.
  it("each get the value sent to one of their channels", function()
    local n, rounds = 24, 3
    local chans, results = {}, g.chan(n)
    for i = 1, n do
      chans[i] = {}
      for j = 1, i do chans[i][j] = g.chan() end
      g.go(function()
        for r = 1, rounds do
          local list = {}
          for j = 1, i do list[j] = chans[i][j]:on_recv() end
          local k, v, ok = g.select(list)
          results:send(("%d:%d:%s:%s:%s"):format(i, r, k, v, ok))
        end
      end)
    end
    for r = 1, rounds do
      g.gosched()   -- every select parks
      for i = 1, n do
        local j = (i + r) % i + 1
        chans[i][j]:send(("v%d.%d"):format(i, j))
      end
      local got, want = {}, {}
      for i = 1, n do
        got[#got + 1] = results:recv()
        local j = (i + r) % i + 1
        want[i] = ("%d:%d:%d:v%d.%d:true"):format(i, r, j, i, j)
      end
      table.sort(got)
      table.sort(want)
      assert.are.same(want, got)
    end
  end)
end)

describe("hostile case lists", function()
  it("reject a handler whose __call is not a function", function()
    local ch = g.chan(1)
    local bad = setmetatable({}, { __call = 1 })
    h.raises("function expected", ch.on_recv, ch, bad)
    h.raises("function expected", ch.on_send, ch, 1, bad)
  end)

  it("accept callable tables as handlers and as default", function()
    local ch = g.chan(1)
    local function callable(r) return setmetatable({}, { __call = r }) end
    ch:send("v")
    assert.are.equal("called v", g.select {
      ch:on_recv(callable(function(_, v) return "called " .. v end)),
    })
    assert.are.equal("default", g.select {
      ch:on_recv(),
      default = callable(function() return "default" end),
    })
    h.raises("default must be a function or true", g.select,
             { default = setmetatable({}, { __call = 1 }) })
  end)

  it("read default once, through the list's metatable", function()
    local calls = 0
    local list = setmetatable({ g.chan():on_recv() }, {
      __index = function(_, k)
        if k == "default" then
          calls = calls + 1
          return function() return "d" end
        end
      end,
    })
    assert.are.equal("d", g.select(list))
    assert.are.equal(1, calls)
  end)

  it("with more than 65536 entries are refused", function()
    local list = {}
    for i = 1, 65537 do list[i] = false end
    h.raises("more than 65536 cases", g.select, list)
  end)

  it("with many distinct channels are locked in linear-log time",
     function()
    local chans, list = {}, {}
    local n = 60000
    for i = 1, n do chans[i] = g.chan() end
    for i = 1, n do list[i] = chans[n + 1 - i]:on_recv() end
    list.default = true
    local t = h.timed(g.select, list)
    assert.is_true(t < 1 * h.TIME_SCALE, "select took " .. t .. " s")
  end)
end)
