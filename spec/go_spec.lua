-- SPEC "Goroutines": go, ids, gosched, numgoroutine, arguments, shared
-- upvalues, FIFO scheduling, the callable module.

local g = require "goroutines"
local h = require "spec.helpers"

describe("g.go", function()
  it("returns increasing integer ids, the main chunk being goroutine 1",
     function()
    assert.are.equal(1, g.id())
    local a = g.go(function() end)
    local b = g.go(function() end)
    assert.are.equal("integer", math.type(a))
    assert.are.equal("integer", math.type(b))
    assert.is_true(a > 1)
    assert.is_true(b > a)
    g.gosched()
  end)

  it("runs the goroutine with g.id() equal to the returned id", function()
    local seen
    local id = g.go(function() seen = g.id() end)
    g.gosched()
    assert.are.equal(id, seen)
    assert.are.equal(1, g.id())
  end)

  it("does not run a new goroutine until the spawner blocks or yields",
     function()
    local ran = false
    g.go(function() ran = true end)
    assert.is_false(ran)
    g.gosched()
    assert.is_true(ran)
  end)

  it("passes arguments as they are, nils and identities included", function()
    local t, f, co = {}, function() end, coroutine.create(function() end)
    local got
    g.go(function(...) got = table.pack(...) end, t, nil, f, co, 1.0, 2,
         nil)
    g.gosched()
    assert.are.equal(7, got.n)
    assert.is_true(rawequal(t, got[1]))
    assert.is_nil(got[2])
    assert.is_true(rawequal(f, got[3]))
    assert.is_true(rawequal(co, got[4]))
    assert.are.equal("float", math.type(got[5]))
    assert.are.equal("integer", math.type(got[6]))
    assert.is_nil(got[7])
  end)

  it("shares upvalues and globals with its spawner", function()
    local counter = 0
    _G.__go_spec_global = 0
    local wg = g.sync.waitgroup()
    wg:add(10)
    for _ = 1, 10 do
      g.go(function()
        counter = counter + 1
        _G.__go_spec_global = _G.__go_spec_global + 2
        wg:done()
      end)
    end
    wg:wait()
    assert.are.equal(10, counter)
    assert.are.equal(20, _G.__go_spec_global)
    _G.__go_spec_global = nil
  end)

  it("lets a goroutine spawn goroutines", function()
    local ch = g.chan()
    g.go(function()
      for i = 1, 3 do g.go(function() ch:send(i * 10) end) end
    end)
    local sum = 0
    for _ = 1, 3 do sum = sum + ch:recv() end
    assert.are.equal(60, sum)
  end)

  it("ignores the goroutine function's results", function()
    local ch = g.chan()
    g.go(function() ch:send("x"); return 1, 2, 3 end)
    assert.are.equal("x", ch:recv())
    g.gosched()
  end)
end)

describe("the module table", function()
  it("is callable: g(f, ...) is g.go(f, ...)", function()
    local got
    local id = g(function(a, b) got = { g.id(), a, b } end, "x", "y")
    assert.are.equal("integer", math.type(id))
    g.gosched()
    assert.are.same({ id, "x", "y" }, got)
  end)
end)

describe("scheduling", function()
  it("starts goroutines in spawn order", function()
    local order = {}
    local wg = g.sync.waitgroup()
    wg:add(5)
    for i = 1, 5 do
      g.go(function() order[#order + 1] = i; wg:done() end)
    end
    wg:wait()
    assert.are.same({ 1, 2, 3, 4, 5 }, order)
  end)

  it("runs goroutines that yield with gosched in FIFO order", function()
    local log = {}
    local wg = g.sync.waitgroup()
    wg:add(3)
    for _, name in ipairs { "a", "b", "c" } do
      g.go(function()
        log[#log + 1] = name .. "1"
        g.gosched()
        log[#log + 1] = name .. "2"
        g.gosched()
        log[#log + 1] = name .. "3"
        wg:done()
      end)
    end
    wg:wait()
    assert.are.same({ "a1", "b1", "c1", "a2", "b2", "c2", "a3", "b3", "c3" },
                    log)
  end)

  it("wakes goroutines blocked on a channel in FIFO order", function()
    local ch, order = g.chan(), {}
    local wg = g.sync.waitgroup()
    wg:add(4)
    for i = 1, 4 do
      g.go(function()
        local v = ch:recv()
        order[#order + 1] = { i, v }
        wg:done()
      end)
    end
    g.gosched()
    for v = 1, 4 do ch:send(v * 100) end
    wg:wait()
    assert.are.same({ { 1, 100 }, { 2, 200 }, { 3, 300 }, { 4, 400 } }, order)
  end)

  it("preempts a goroutine that computes without blocking", function()
    local stop = false
    local saw_stop
    local wg = g.sync.waitgroup()
    wg:add(2)
    g.go(function()
      -- Busy loop with a 5 s safety limit: without preemption the other
      -- goroutine cannot run and stop stays false.
      local t0, limit = g.time.now(), 5 * h.TIME_SCALE
      while not stop and g.time.now() - t0 < limit do end
      saw_stop = stop
      wg:done()
    end)
    g.go(function() stop = true; wg:done() end)
    wg:wait()
    assert.is_true(saw_stop)
  end)
end)

describe("g.gosched", function()
  it("returns nothing and is harmless with nothing else to run", function()
    assert.are.equal(0, select("#", g.gosched()))
  end)

  it("in a goroutine lets the other goroutines run", function()
    local log = {}
    local done = g.chan()
    g.go(function()
      log[#log + 1] = "a"
      g.gosched()
      log[#log + 1] = "c"
      done:send(true)
    end)
    g.go(function() log[#log + 1] = "b" end)
    done:recv()
    assert.are.same({ "a", "b", "c" }, log)
  end)
end)

describe("g.numgoroutine", function()
  it("counts live goroutines, main included", function()
    assert.is_true(g.numgoroutine() >= 1)
    local base = g.numgoroutine()
    local release = g.chan()
    local wg = g.sync.waitgroup()
    wg:add(3)
    for _ = 1, 3 do
      g.go(function() release:recv(); wg:done() end)
    end
    assert.are.equal(base + 3, g.numgoroutine())   -- not yet started
    g.gosched()
    assert.are.equal(base + 3, g.numgoroutine())   -- blocked
    release:close()
    wg:wait()
    g.gosched()
    assert.are.equal(base, g.numgoroutine())       -- finished
  end)

  it("no longer counts a goroutine that ended with an error", function()
    local base = g.numgoroutine()
    g.go(function() error("counted", 0) end)
    assert.are.equal(base + 1, g.numgoroutine())
    local err = h.error_of(h.recv_never)
    assert.is_true(h.has(err, "counted"))
    assert.are.equal(base, g.numgoroutine())
  end)
end)

describe("plain coroutines", function()
  it("may block when resumed by main: the scheduler runs in place",
     function()
    local ch = g.chan()
    g.go(function() ch:send("hello") end)
    local co = coroutine.wrap(function()
      local v, ok = ch:recv()
      coroutine.yield(v, ok)
      return "end"
    end)
    local v, ok = co()
    assert.are.equal("hello", v)
    assert.is_true(ok)
    assert.are.equal("end", co())
  end)

  it("may block when resumed by a goroutine", function()
    local ch, out = g.chan(), g.chan()
    g.go(function()
      local co = coroutine.create(function(x)
        local v = ch:recv()
        local y = coroutine.yield(x + v)
        g.time.sleep(0.001)
        return y * 2
      end)
      local _, a = coroutine.resume(co, 1)
      local _, b = coroutine.resume(co, 21)
      out:send({ a, b, coroutine.status(co) })
    end)
    g.go(function() ch:send(10) end)
    assert.are.same({ 11, 42, "dead" }, out:recv())
  end)

  it("may block in a goroutine until main, asleep meanwhile, sends",
     function()
    local ch, out = g.chan(), g.chan(1)
    g.go(function()
      local co = coroutine.wrap(function() return ch:recv() end)
      out:send(co())
    end)
    g.time.sleep(0.01)  -- the goroutine waits in its coroutine meanwhile
    ch:send("hello")
    assert.are.equal("hello", out:recv())
  end)
end)

describe("coroutine.resume and coroutine.wrap, as the module replaces them", function()
  it("return exactly what the coroutine yields or returns", function()
    local co = coroutine.create(function() coroutine.yield() end)
    assert.are.equal(1, select("#", coroutine.resume(co)))
    assert.are.equal(1, select("#", coroutine.resume(co)))
    assert.are.same({ true, 1, nil, 3 },
      { coroutine.resume(coroutine.create(function() return 1, nil, 3 end)) })
    assert.are.equal(0, select("#", coroutine.wrap(function() end)()))
    assert.are.equal(3, select("#", coroutine.wrap(function() return 1, nil, nil end)()))
  end)

  it("report errors as the originals do", function()
    assert.are.same({ false, "boom" },
      { coroutine.resume(coroutine.create(function() error("boom", 0) end)) })
    local ok, err = pcall(coroutine.wrap(function() error("boom", 0) end))
    assert.is_false(ok)
    assert.are.equal("boom", err)
    local _, e1 = pcall(coroutine.resume, 42)
    assert.is_true(h.has(e1, "bad argument #1 to 'resume' (coroutine expected"), e1)
    local _, e2 = pcall(coroutine.wrap, 42)
    assert.is_true(h.has(e2, "bad argument #1 to 'wrap' (function expected"), e2)
  end)
end)

describe("g.go with hostile input", function()
  it("rejects a table whose __call is not a function", function()
    local bad = setmetatable({}, { __call = 1 })
    h.raises({ "bad argument #1", "(function expected, got table)" },
             g.go, bad)
    h.raises({ "bad argument #1", "(function expected, got table)" },
             g.parallel, bad)
    h.raises({ "bad argument #2", "(function expected, got table)" },
             g.time.after_func, 1, bad)
    local once = g.sync.once()
    h.raises({ "bad argument #2", "(function expected, got table)" },
             once.call, once, bad)
    local ran = false
    g.go(setmetatable({}, { __call = function() ran = true end }))
    g.gosched()
    assert.is_true(ran)
  end)

  it("passes thousands of arguments", function()
    local out, err, code = h.run_script [[
      local g = require "goroutines"
      local args = {}
      for i = 1, 5000 do args[i] = i end
      local done = g.chan(1)
      g.go(function(...)
        done:send(select("#", ...) + select(5000, ...))
      end, table.unpack(args))
      print(done:recv())
    ]]
    assert.are.equal("10000\ttrue\n", out, err)
    assert.are.equal(0, code, err)
  end)
end)

describe("preemption", function()
  it("leaves a goroutine's own debug hook in place when it preempts "
     .. "another", function()
    -- A sets a count hook, then spends tens of milliseconds inside one C
    -- call (packing a large table for a shared channel) and parks there:
    -- the monitor hooks A meanwhile. B then computes and is preempted. A's
    -- own hook must be A's again when it runs on.
    local out, err, code = h.run_script [[
      local g = require "goroutines"
      local ch = g.chan()
      g.parallel(function(c)
        require("goroutines").time.sleep(0.4)
        c:recv()
      end, ch)
      local big = {}
      for i = 1, 500000 do big[i] = i end
      local hits, done = 0, g.chan()
      local function count() hits = hits + 1 end
      g.go(function()
        debug.sethook(count, "", 1000)
        local t = os.clock()
        ch:send(big)
        local packed = os.clock() - t
        local h0 = hits
        for _ = 1, 1e6 do end
        done:send({ debug.gethook() == count, hits - h0, packed })
      end)
      g.go(function()
        local t = os.clock()
        while os.clock() - t < 0.05 do end
      end)
      local r = done:recv()
      print(r[1], r[2] > 500)
      io.stderr:write("packing took ", r[3], " s\n")
    ]]
    assert.are.equal("true\ttrue\n", out, err)
    assert.are.equal(0, code, err)
  end)
end)

describe("a goroutine in nested coroutines", function()
  it("blocks inside coroutine.wrap nested 120 deep", function()
    local out, err, code = h.run_script [[
      local g = require "goroutines"
      local ch = g.chan()
      local function nest(n)
        if n == 0 then return ch:recv() end
        return coroutine.wrap(function() return nest(n - 1) end)()
      end
      local done = g.chan(1)
      g.go(function() done:send(nest(120)) end)
      g.time.sleep(0.01)
      ch:send("deep")
      print(done:recv())
    ]]
    assert.are.equal("deep\ttrue\n", out, err)
    assert.are.equal(0, code, err)
  end)
end)

describe("a coroutine that waits in a goroutine", function()
  it("cannot be resumed by user code, and goes on waiting", function()
    local out, err, code = h.run_script [[
      local g = require "goroutines"
      local c, d = g.chan(), g.chan()
      local a, p, s
      g.go(function() a = coroutine.running(); print("got", c:recv()) end)
      g.go(function()
        p = coroutine.create(function() return d:recv() end)
        print("inner", coroutine.resume(p))
      end)
      g.go(function()
        s = coroutine.running()
        g.time.sleep(0.05)
        print("slept")
      end)
      g.gosched()
      print(coroutine.resume(a))
      print(coroutine.resume(a, 1, 2))
      print(coroutine.resume(p))
      print(coroutine.resume(s))
      c:send("v")
      d:send("w")
      g.time.sleep(0.1)
    ]]
    local refused = "false\tcannot resume a coroutine that waits in a "
                    .. "goroutine\n"
    assert.are.equal(refused:rep(4) .. "got\tv\ttrue\ninner\ttrue\tw\ttrue\n"
                     .. "slept\n", out, err)
    assert.are.equal(0, code, err)
  end)
end)

describe("the callable module", function()
  it("reports a bad argument at the caller's line", function()
    local line = debug.getinfo(1, "l").currentline + 1
    local ok, err = pcall(function() g(42) end)
    assert.is_false(ok)
    assert.is_true(h.has(err, "go_spec.lua:" .. line .. ": bad argument #1"),
                   err)
  end)
end)
