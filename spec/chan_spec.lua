-- SPEC "Channels": unbuffered and buffered channels, recv's v, ok, close
-- rules, range, len/#/cap, direction-restricted views.

local g = require "goroutines"
local h = require "spec.helpers"

describe("an unbuffered channel", function()
  it("has capacity 0 and length 0", function()
    local ch = g.chan()
    assert.are.equal(0, ch:cap())
    assert.are.equal(0, ch:len())
    assert.are.equal(0, #ch)
    assert.are.equal(0, g.chan(0):cap())
  end)

  it("passes a value from a goroutine to main with ok = true", function()
    local ch = g.chan()
    g.go(function() ch:send(42) end)
    local v, ok = ch:recv()
    assert.are.equal(42, v)
    assert.is_true(ok)
  end)

  it("passes a value from main to a goroutine", function()
    local ch, got = g.chan(), nil
    local done = g.chan()
    g.go(function() got = ch:recv(); done:send(true) end)
    ch:send("hi")
    done:recv()
    assert.are.equal("hi", got)
  end)

  it("blocks the sender until a receiver takes the value", function()
    local ch, log = g.chan(), {}
    g.go(function()
      log[#log + 1] = "before send"
      ch:send(1)
      log[#log + 1] = "after send"
    end)
    g.gosched()
    assert.are.same({ "before send" }, log)
    assert.are.equal(0, #ch)
    assert.are.equal(1, ch:recv())
    g.gosched()
    assert.are.same({ "before send", "after send" }, log)
  end)

  it("blocks the receiver until a sender comes", function()
    local ch, log = g.chan(), {}
    g.go(function()
      log[#log + 1] = "recv " .. ch:recv()
    end)
    g.gosched()
    assert.are.same({}, log)
    ch:send("x")
    g.gosched()
    assert.are.same({ "recv x" }, log)
  end)

  it("ping-pongs between two goroutines", function()
    local ping, pong = g.chan(), g.chan()
    g.go(function()
      for v in ping:range() do pong:send(v + 1) end
      pong:close()
    end)
    local n = 0
    for _ = 1, 200 do
      ping:send(n)
      n = pong:recv()
    end
    ping:close()
    assert.are.equal(200, n)
    assert.are.same({ nil, false }, { pong:recv() })
  end)

  it("passes tables by reference within one state", function()
    local ch, t = g.chan(), { 1, 2 }
    g.go(function() ch:send(t) end)
    local got = ch:recv()
    assert.is_true(rawequal(t, got))
  end)

  it("carries channels", function()
    local chch, inner = g.chan(), g.chan(1)
    g.go(function() local c = chch:recv(); c:send("through") end)
    chch:send(inner)
    assert.are.equal("through", inner:recv())
  end)
end)

describe("a buffered channel", function()
  it("accepts cap values without a receiver and keeps FIFO order",
     function()
    local ch = g.chan(3)
    assert.are.equal(3, ch:cap())
    ch:send("a")
    ch:send("b")
    ch:send("c")
    assert.are.equal(3, ch:len())
    assert.are.equal(3, #ch)
    assert.are.same({ "a", true }, { ch:recv() })
    assert.are.equal(2, #ch)
    assert.are.same({ "b", true }, { ch:recv() })
    assert.are.same({ "c", true }, { ch:recv() })
    assert.are.equal(0, #ch)
    assert.are.equal(3, ch:cap())
  end)

  it("blocks the sender while the buffer is full", function()
    local ch, sent = g.chan(2), 0
    local done = g.chan()
    g.go(function()
      for i = 1, 5 do ch:send(i); sent = i end
      done:send(true)
    end)
    g.gosched()
    assert.are.equal(2, sent)
    assert.are.equal(2, #ch)
    local got = {}
    for _ = 1, 5 do got[#got + 1] = ch:recv() end
    done:recv()
    assert.are.same({ 1, 2, 3, 4, 5 }, got)
    assert.are.equal(5, sent)
    assert.are.equal(0, #ch)
  end)

  it("blocks the receiver while the buffer is empty", function()
    local ch, got = g.chan(4), nil
    g.go(function() got = ch:recv() end)
    g.gosched()
    assert.is_nil(got)
    ch:send(7)
    g.gosched()
    assert.are.equal(7, got)
  end)
end)

describe("nil and false values", function()
  it("pass through an unbuffered channel with ok = true", function()
    local ch = g.chan()
    g.go(function() ch:send(nil); ch:send(false) end)
    local v, ok = ch:recv()
    assert.is_nil(v)
    assert.is_true(ok)
    v, ok = ch:recv()
    assert.is_false(v)
    assert.is_true(ok)
  end)

  it("pass through a buffered channel and count in its length", function()
    local ch = g.chan(3)
    ch:send(nil)
    ch:send(false)
    ch:send(nil)
    assert.are.equal(3, #ch)
    assert.are.same({ n = 2, nil, true }, table.pack(ch:recv()))
    assert.are.same({ n = 2, false, true }, table.pack(ch:recv()))
    assert.are.same({ n = 2, nil, true }, table.pack(ch:recv()))
    assert.are.equal(0, #ch)
  end)
end)

describe("close", function()
  it("makes recv return nil, false at once, every time", function()
    local ch = g.chan()
    ch:close()
    for _ = 1, 3 do
      local t = table.pack(ch:recv())
      assert.are.same({ n = 2, nil, false }, t)
    end
  end)

  it("lets receivers drain buffered values first, then nil, false",
     function()
    local ch = g.chan(3)
    ch:send(1)
    ch:send(nil)
    ch:close()
    assert.are.equal(2, #ch)
    assert.are.same({ n = 2, 1, true }, table.pack(ch:recv()))
    assert.are.same({ n = 2, nil, true }, table.pack(ch:recv()))
    assert.are.same({ n = 2, nil, false }, table.pack(ch:recv()))
    assert.are.same({ n = 2, nil, false }, table.pack(ch:recv()))
    assert.are.equal(0, #ch)
    assert.are.equal(3, ch:cap())
  end)

  it("makes send raise 'send on closed channel'", function()
    local ch = g.chan(5)
    ch:close()
    h.raises("send on closed channel", ch.send, ch, 1)
    assert.are.equal(0, #ch)
  end)

  it("of a closed channel raises 'close of closed channel'", function()
    local ch = g.chan()
    ch:close()
    h.raises("close of closed channel", ch.close, ch)
  end)

  it("wakes every blocked receiver with nil, false", function()
    local ch = g.chan()
    local results = {}
    local wg = g.sync.waitgroup()
    wg:add(3)
    for i = 1, 3 do
      g.go(function()
        local v, ok = ch:recv()
        results[i] = { v == nil, ok }
        wg:done()
      end)
    end
    g.gosched()
    assert.are.same({}, results)
    ch:close()
    wg:wait()
    assert.are.same({ { true, false }, { true, false }, { true, false } },
                    results)
  end)

  it("makes every blocked sender raise 'send on closed channel'",
     function()
    local ch = g.chan()
    local errs = {}
    local wg = g.sync.waitgroup()
    wg:add(3)
    for i = 1, 3 do
      g.go(function()
        local ok, err = pcall(ch.send, ch, i)
        errs[i] = ok and "sent" or err
        wg:done()
      end)
    end
    g.gosched()
    ch:close()
    wg:wait()
    for i = 1, 3 do
      assert.is_true(h.has(errs[i], "send on closed channel"), errs[i])
    end
    assert.are.same({ n = 2, nil, false }, table.pack(ch:recv()))
  end)

  it("of a buffered channel with a blocked sender: values drain, sender "
     .. "raises", function()
    local ch = g.chan(1)
    ch:send("kept")
    local err
    local done = g.chan()
    g.go(function()
      local ok
      ok, err = pcall(ch.send, ch, "lost")
      done:send(ok)
    end)
    g.gosched()
    ch:close()
    assert.is_false(done:recv())
    assert.is_true(h.has(err, "send on closed channel"))
    assert.are.same({ n = 2, "kept", true }, table.pack(ch:recv()))
    assert.are.same({ n = 2, nil, false }, table.pack(ch:recv()))
  end)
end)

describe("range", function()
  it("receives every value until the channel is closed", function()
    local ch = g.chan()
    g.go(function()
      for i = 1, 5 do ch:send(i) end
      ch:close()
    end)
    local got = {}
    for v in ch:range() do got[#got + 1] = v end
    assert.are.same({ 1, 2, 3, 4, 5 }, got)
  end)

  it("drains a closed buffered channel and ends", function()
    local ch = g.chan(3)
    ch:send("a")
    ch:send(false)
    ch:close()
    local got = {}
    for v in ch:range() do got[#got + 1] = v end
    assert.are.same({ "a", false }, got)
  end)

  it("ends at once on a closed empty channel", function()
    local ch = g.chan()
    ch:close()
    local n = 0
    for _ in ch:range() do n = n + 1 end
    assert.are.equal(0, n)
  end)

  it("can be left with break and resumed with another range", function()
    local ch = g.chan(4)
    for i = 1, 4 do ch:send(i) end
    ch:close()
    for v in ch:range() do if v == 2 then break end end
    local rest = {}
    for v in ch:range() do rest[#rest + 1] = v end
    assert.are.same({ 3, 4 }, rest)
  end)

  it("raises on a nil received while the channel is open", function()
    local ch = g.chan(2)
    ch:send(1)
    ch:send(nil)
    local got = {}
    h.raises("range: received nil (use ch:recv() on channels that carry nil)",
             function() for v in ch:range() do got[#got + 1] = v end end)
    assert.are.same({ 1 }, got)
  end)

  it("works in goroutines: several ranges share the values", function()
    local ch, out = g.chan(), g.chan()
    for _ = 1, 3 do
      g.go(function()
        local sum = 0
        for v in ch:range() do sum = sum + v end
        out:send(sum)
      end)
    end
    for i = 1, 30 do ch:send(i) end
    ch:close()
    local total = out:recv() + out:recv() + out:recv()
    assert.are.equal(465, total)
  end)
end)

describe("views", function()
  it("share the channel: values, length, capacity", function()
    local ch = g.chan(2)
    local s, r = ch:sender(), ch:receiver()
    s:send("v")
    assert.are.equal(1, ch:len())
    assert.are.equal(1, #r)
    assert.are.equal(1, s:len())
    assert.are.equal(2, r:cap())
    assert.are.equal(2, s:cap())
    assert.are.same({ "v", true }, { r:recv() })
    ch:send("w")
    assert.are.same({ "w", true }, { r:recv() })
  end)

  it("print like channels", function()
    local ch = g.chan()
    assert.are.equal(1, (tostring(ch):find("goroutines.chan: ", 1, true)))
    assert.are.equal(1, (tostring(ch:sender())
                           :find("goroutines.chan: ", 1, true)))
    assert.are.equal(1, (tostring(ch:receiver())
                           :find("goroutines.chan: ", 1, true)))
  end)

  it("a receive-only view cannot send or close", function()
    local ch = g.chan(1)
    local r = ch:receiver()
    h.raises("send to receive-only channel", r.send, r, 1)
    h.raises("close of receive-only channel", r.close, r)
    assert.are.equal(0, #ch)
    ch:send(1)  -- still open
    assert.are.equal(1, r:recv())
  end)

  it("a send-only view cannot receive, nor range", function()
    local ch = g.chan(1)
    local s = ch:sender()
    ch:send("stay")
    h.raises("receive from send-only channel", s.recv, s)
    h.raises("receive from send-only channel",
             function() for _ in s:range() do end end)
    assert.are.equal(1, #ch)
    assert.are.equal("stay", ch:recv())
  end)

  it("a send-only view may close the channel", function()
    local ch = g.chan()
    ch:sender():close()
    assert.are.same({ n = 2, nil, false }, table.pack(ch:recv()))
    h.raises("close of closed channel", ch.close, ch)
  end)

  it("closing through the channel is seen through the views", function()
    local ch = g.chan()
    local s, r = ch:sender(), ch:receiver()
    ch:close()
    h.raises("send on closed channel", s.send, s, 1)
    assert.are.same({ n = 2, nil, false }, table.pack(r:recv()))
  end)

  it("block and wake like the channel", function()
    local ch = g.chan()
    local s, r = ch:sender(), ch:receiver()
    g.go(function() for i = 1, 3 do s:send(i) end; s:close() end)
    local got = {}
    for v in r:range() do got[#got + 1] = v end
    assert.are.same({ 1, 2, 3 }, got)
  end)
end)

describe("a handle finalized by hand", function()
  local FINAL = "attempt to use a finalized goroutines.chan"

  -- Each method, called from this file, raises with the caller's position.
  it("raises a clear error from every method", function()
    local ch = g.chan(1)
    getmetatable(ch).__gc(ch)
    getmetatable(ch).__gc(ch)   -- idempotent
    local calls = {
      send = function() ch:send(1) end,
      recv = function() ch:recv() end,
      close = function() ch:close() end,
      range = function() for _ in ch:range() do end end,
      len = function() return ch:len() end,
      ["#"] = function() return #ch end,
      cap = function() return ch:cap() end,
      sender = function() return ch:sender() end,
      receiver = function() return ch:receiver() end,
      on_recv = function() return ch:on_recv() end,
      on_send = function() return ch:on_send(1) end,
    }
    for name, f in pairs(calls) do
      local err = h.error_of(f)
      assert.is_truthy(h.has(err, FINAL), name .. ": " .. tostring(err))
      assert.is_truthy(h.has(err, "chan_spec.lua:"),
                       name .. " without position: " .. err)
    end
  end)

  it("prints as finalized and equals no other handle", function()
    local a, b = g.chan(), g.chan()
    local av = a:sender()
    getmetatable(a).__gc(a)
    getmetatable(b).__gc(b)
    assert.are.equal("goroutines.chan (finalized)", tostring(a))
    assert.is_false(a == b)
    assert.is_false(a == av)
    assert.is_true(a == a)
    assert.are.equal(1, (tostring(av):find("goroutines.chan: ", 1, true)))
  end)

  it("makes select cases made before raise, without touching the channel",
     function()
    local out, err, code = h.run_script([[
      local g = require "goroutines"
      local ch = g.chan(1)
      local r, s = ch:on_recv(), ch:on_send({})
      getmetatable(ch).__gc(ch)
      collectgarbage()
      print(pcall(g.select, { r, default = true }))
      print(pcall(g.select, { false, s, default = true }))
    ]], 30)
    assert.are.equal(0, code, err)
    local want = "false\tattempt to use a finalized goroutines.chan\n"
    assert.are.equal(want .. want, out)
  end)

  it("__gc and __tostring reject what is not a channel", function()
    local out, err, code = h.run_script([[
      local g = require "goroutines"
      local mt = getmetatable(g.chan())
      for _, v in ipairs { "nil", "{}", "io.stdout", "g.chan():on_recv()",
                           "g.sync.mutex()" } do
        local x = load("local g = ... return " .. v)(g)
        print(select(2, pcall(mt.__gc, x)))
        print(select(2, pcall(mt.__tostring, x)))
      end
    ]], 30)
    assert.are.equal(0, code, err)
    local lines = {}
    for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.are.equal(10, #lines, out)
    for _, l in ipairs(lines) do
      assert.is_truthy(l:find("^bad argument #1 to '%?' %(goroutines.chan "
                              .. "expected, got "), l)
    end
  end)
end)

describe("values packed in a buffer", function()
  it("are all received after another state closes the channel", function()
    local ch, ready = g.chan(4), g.chan()
    g.parallel(function(ch, ready)
      for i = 1, 4 do ch:send({ i, name = "v" .. i }) end
      ch:close()
      ready:send(true)
    end, ch, ready)
    assert.is_true((h.recv_within(ready, 10)))
    local got = {}
    for v in ch:range() do got[#got + 1] = v.name .. "=" .. v[1] end
    assert.are.same({ "v1=1", "v2=2", "v3=3", "v4=4" }, got)
    assert.are.same({ n = 2, nil, false }, table.pack(ch:recv()))
  end)
end)
