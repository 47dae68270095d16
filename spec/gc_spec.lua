-- SPEC "Runtime model", garbage collection: finished goroutines are
-- collected, blocked goroutines stay anchored, unreachable channels are
-- collected (g._stats().chans counts the live C channel objects).

local g = require "goroutines"
local h = require "spec.helpers"

local function weak()
  return setmetatable({}, { __mode = "v" })
end

describe("a goroutine", function()
  it("that finished has its locals collected", function()
    local w = weak()
    local ran = false
    g.go(function()
      local t = {}
      w[1] = t
      ran = true
    end)
    g.gosched()
    assert.is_true(ran)
    h.collect()
    assert.is_nil(w[1])
  end)

  it("that finished has its function and arguments collected", function()
    local w = weak()
    do
      local f = function() end
      local arg = {}
      w.f, w.arg = f, arg
      g.go(f, arg)
    end
    g.gosched()
    h.collect()
    assert.is_nil(w.f)
    assert.is_nil(w.arg)
  end)

  it("that ended with an error is collected once the error is seen",
     function()
    local w = weak()
    g.go(function()
      local t = {}
      w[1] = t
      error("gc after error", 0)
    end)
    h.raises("gc after error", h.recv_never)
    h.collect()
    assert.is_nil(w[1])
  end)

  it("that is blocked is not collected, and resumes after a collection",
     function()
    local w = weak()
    local ch, out = g.chan(), g.chan()
    do
      local t = { "kept" }
      w[1] = t
      g.go(function(x)
        local v = ch:recv()
        out:send(x[1] .. " " .. v)
      end, t)
    end
    g.gosched()
    h.collect()
    assert.are.same({ "kept" }, w[1])
    ch:send("alive")
    assert.are.equal("kept alive", out:recv())
    g.gosched()
    h.collect()
    assert.is_nil(w[1])
  end)

  it("that is blocked on an otherwise unreachable channel stays alive",
     function()
    local w = weak()
    local out = g.chan()
    local send
    do
      local ch = g.chan()
      w[1] = ch
      g.go(function() out:send(ch:recv()) end)
      local s = ch:sender()
      send = function(v) s:send(v) end
    end
    g.gosched()
    h.collect()
    send("still there")
    assert.are.equal("still there", out:recv())
  end)

  it("count goes back down in g._stats() when goroutines finish", function()
    g.gosched()
    h.collect()
    local before = g._stats().goroutines
    local wg = g.sync.waitgroup()
    wg:add(10)
    for _ = 1, 10 do g.go(function() wg:done() end) end
    assert.are.equal(before + 10, g._stats().goroutines)
    wg:wait()
    g.gosched()
    h.collect()
    assert.are.equal(before, g._stats().goroutines)
  end)
end)

describe("a channel", function()
  it("that is unreachable is collected", function()
    h.collect()
    local before = g._stats().chans
    local w = weak()
    do
      local ch = g.chan(2)
      w[1] = ch
      ch:send({})
    end
    assert.are.equal(before + 1, g._stats().chans)
    h.collect()
    assert.is_nil(w[1])
    assert.are.equal(before, g._stats().chans)
  end)

  it("is collected with the values in its buffer", function()
    local w = weak()
    do
      local ch = g.chan(1)
      local v = {}
      w[1] = v
      ch:send(v)
    end
    h.collect()
    assert.is_nil(w[1])
  end)

  it("stays alive through a view, and is collected with it", function()
    h.collect()
    local before = g._stats().chans
    local r
    do
      local ch = g.chan(1)
      r = ch:receiver()
      ch:send("through the view")
    end
    h.collect()
    assert.are.equal("through the view", r:recv())
    assert.is_true(g._stats().chans >= before + 1)
    r = nil  -- luacheck: ignore
    h.collect()
    assert.are.equal(before, g._stats().chans)
  end)

  it("that was closed, or used by finished goroutines, is collected",
     function()
    h.collect()
    local before = g._stats().chans
    do
      local a, b = g.chan(), g.chan(3)
      g.go(function() a:send(1); b:send(2); b:close() end)
      a:recv()
      for _ in b:range() do end
      a:close()
    end
    g.gosched()
    h.collect()
    assert.are.equal(before, g._stats().chans)
  end)

  it("many unreachable channels are all collected", function()
    h.collect()
    local before = g._stats().chans
    for i = 1, 200 do
      local ch = g.chan(1)
      ch:send(i)
    end
    h.collect()
    assert.are.equal(before, g._stats().chans)
  end)

  it("of a fired time.after is collected", function()
    h.collect()
    local before = g._stats().chans
    do
      local c = g.time.after(0.001)
      c:recv()
    end
    h.collect()
    assert.are.equal(before, g._stats().chans)
  end)
end)

describe("a timer nobody references", function()
  -- Go 1.23: a timer whose channel is unreachable is collected, pending
  -- or not. Each timer here has a channel of its own, so the count of
  -- live channels shows whether its timer still holds it.
  it("made by time.after or time.tick is collected with its channel",
     function()
    h.collect()
    local before = g._stats().chans
    for _ = 1, 500 do
      g.time.after(3600)
      g.time.tick(3600)
    end
    h.collect()
    assert.are.equal(before, g._stats().chans)
  end)

  it("made by time.timer or time.ticker is collected with its handle",
     function()
    h.collect()
    local before = g._stats().chans
    for _ = 1, 500 do
      g.time.timer(3600)
      g.time.ticker(3600)
    end
    h.collect()
    assert.are.equal(before, g._stats().chans)
  end)

  it("is collected in a select loop with a time.after case", function()
    h.collect()
    local before = g._stats().chans
    local ch = g.chan(1)
    for i = 1, 20000 do
      ch:send(i)
      g.select { ch:on_recv(), g.time.after(3600):on_recv() }
    end
    h.collect()
    assert.are.equal(before + 1, g._stats().chans)
  end)

  it("but whose channel is held keeps firing", function()
    local c = g.time.timer(0.03).c
    local tc = g.time.ticker(0.01).c
    h.collect()
    assert.are.equal("number", type(h.recv_within(c, 2)))
    assert.are.equal("number", type(h.recv_within(tc, 2)))
    assert.are.equal("number", type(h.recv_within(tc, 2)))
  end)

  it("does not hide a deadlock", function()
    local _, err, code = h.run_script([[
      local g = require "goroutines"
      local _ = g.time.after(3600); _ = nil
      local t = g.time.timer(3600); t = nil
      collectgarbage()
      g.chan():recv()
    ]], 20)
    assert.are.equal(1, code)
    assert.is_true(h.has(err, "all goroutines are asleep - deadlock!"), err)
  end)
end)
