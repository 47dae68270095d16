-- SPEC "Goroutines" (g.parallel, g.gomaxprocs, g.numgoroutine) and
-- "Runtime model": parallel goroutines run in worker Lua states on worker
-- threads; they share only runtime objects (channels, sync objects,
-- contexts) with their spawner; channels, select, close, sync and contexts
-- behave across states as within one; errors and deadlocks are reported as
-- for local goroutines; the program's end stops every worker.

local g = require "goroutines"
local h = require "spec.helpers"

-- Busted runs this file with an environment table of its own. A function
-- whose _ENV is not the globals table takes that table along, copied, when
-- it crosses to another state: run the file with the real globals instead,
-- so that the functions given to g.parallel use the worker's.
local describe, it, assert = describe, it, assert
local _ENV = _G

local HEADER = "all goroutines are asleep - deadlock!\n\n"

local recv_within = h.recv_within

-- Asserts that err lists goroutine `id` waiting for `reason` at path:line.
local function lists(err, id, reason, path, line)
  local entry = ("goroutine %d [%s]:\n\t%s:%d"):format(id, reason, path, line)
  assert.is_true(h.has(err, entry),
                 ("%q not found in:\n%s"):format(entry, err))
end

describe("g.parallel", function()
  it("returns increasing integer ids, shared with g.go", function()
    local done = g.chan()
    local a = g.parallel(function(c) c:send(1) end, done)
    local b = g.go(function() end)
    local c = g.parallel(function(c) c:send(1) end, done)
    assert.are.equal("integer", math.type(a))
    assert.are.equal("integer", math.type(c))
    assert.is_true(a > 1)
    assert.is_true(b > a)
    assert.is_true(c > b)
    recv_within(done, 10)
    recv_within(done, 10)
  end)

  it("runs the goroutine with g.id() equal to the returned id", function()
    local ch = g.chan()
    local id = g.parallel(function(c) c:send(g.id()) end, ch)
    assert.are.equal(id, (recv_within(ch, 10)))
    assert.are.equal(1, g.id())
  end)

  it("passes f its arguments, nils included", function()
    local ch = g.chan()
    g.parallel(function(c, ...)
      local args = table.pack(...)
      c:send(args.n)
      for i = 1, args.n do c:send({ args[i] }) end
    end, ch, 1, nil, "x", 2.5, nil)
    assert.are.equal(5, (recv_within(ch, 10)))
    assert.are.same({ 1 }, (recv_within(ch, 10)))
    assert.are.same({}, (recv_within(ch, 10)))
    assert.are.same({ "x" }, (recv_within(ch, 10)))
    assert.are.same({ 2.5 }, (recv_within(ch, 10)))
    assert.are.same({}, (recv_within(ch, 10)))
  end)

  it("runs f in another state: main's globals are not visible there",
     function()
    _G.__parallel_spec_global = "main's"
    local ch = g.chan()
    g.parallel(function(c, passed)
      c:send({ _G.__parallel_spec_global, __parallel_spec_global, passed })
    end, ch, _G.__parallel_spec_global)
    local got = recv_within(ch, 10)
    _G.__parallel_spec_global = nil
    assert.is_nil(got[1])
    assert.is_nil(got[2])
    assert.are.equal("main's", got[3])
  end)

  it("gives each parallel goroutine globals of its own, even on one worker",
     function()
    local out, err, code = h.run_script [[
      local g = require "goroutines"
      g.gomaxprocs(1)   -- both goroutines share the one worker state
      local ch, release = g.chan(), g.chan()
      g.parallel(function(ch, release)
        shared_name = "first"
        ch:send(shared_name)
        release:recv()
        ch:send(tostring(shared_name))
      end, ch, release)
      print("first sees", (ch:recv()))
      g.parallel(function(ch)
        ch:send(tostring(shared_name))
        shared_name = "second"
      end, ch)
      print("second sees", (ch:recv()))
      release:send(true)
      print("first sees", (ch:recv()))
      print("main sees", tostring(shared_name))
    ]]
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("first sees\tfirst\nsecond sees\tnil\n"
                     .. "first sees\tfirst\nmain sees\tnil\n", out)
  end)

  it("binds a copied function's globals to the receiving goroutine's",
     function()
    local function set(v) __parallel_spec_x = v end
    local function get() return __parallel_spec_x end
    local ch = g.chan()
    g.parallel(function(c, setter, getter)
      setter("set there")
      c:send({ __parallel_spec_x, getter() })
    end, ch, set, get)
    assert.are.same({ "set there", "set there" }, (recv_within(ch, 10)))
    assert.is_nil(get())
  end)

  it("sends results back over channels", function()
    local ch = g.chan()
    g.parallel(function(c, n)
      local sum = 0
      for i = 1, n do sum = sum + i end
      c:send(sum)
      c:send("done")
    end, ch, 1000)
    assert.are.equal(500500, (recv_within(ch, 10)))
    assert.are.equal("done", (recv_within(ch, 10)))
  end)

  it("runs 200 goroutines whose values all arrive exactly once", function()
    local ch = g.chan()
    local ids = {}
    for i = 1, 200 do
      ids[g.parallel(function(c, v) c:send(v) end, ch, i)] = true
    end
    local n = 0
    for _ in pairs(ids) do n = n + 1 end
    assert.are.equal(200, n)   -- 200 distinct ids
    local count = {}
    for _ = 1, 200 do
      local v = recv_within(ch, 20)
      count[v] = (count[v] or 0) + 1
    end
    for i = 1, 200 do assert.are.equal(1, count[i], "value " .. i) end
    assert.are.equal("default", g.select { ch:on_recv(), default = true })
  end)

  it("lets a parallel goroutine spawn local and parallel goroutines",
     function()
    local ch = g.chan()
    g.parallel(function(c)
      local n = 0   -- shared with the local goroutines of this state
      local wg = g.sync.waitgroup()
      wg:add(5)
      for i = 1, 5 do g.go(function() n = n + i; wg:done() end) end
      wg:wait()
      c:send(n)
      g.parallel(function(c2) c2:send("nested") end, c)
    end, ch)
    assert.are.equal(15, (recv_within(ch, 10)))
    assert.are.equal("nested", (recv_within(ch, 10)))
  end)

  it("rejects a non-function", function()
    local err = h.raises("bad argument #1 to", g.parallel, 42)
    assert.is_true(h.has(err, "(function expected, got number)"), err)
    err = h.raises("bad argument #1 to", g.parallel)
    assert.is_true(h.has(err, "(function expected, got no value)"), err)
  end)
end)

describe("require in a parallel goroutine", function()
  it("loads standard libraries", function()
    local ch = g.chan()
    g.parallel(function(c)
      c:send(require("string").rep("ab", 3) .. require("math").type(1))
    end, ch)
    assert.are.equal("abababinteger", (recv_within(ch, 10)))
  end)

  it("finds modules on the spawner's package.path", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir '" .. dir .. "'"))
    local f = assert(io.open(dir .. "/parallel_spec_mod.lua", "w"))
    f:write('return { greet = function(w) return "hello " .. w end }\n')
    f:close()
    local out, err, code = h.run_script(([[
      -- Set before the first g.parallel: the workers take this path.
      package.path = %q .. "/?.lua;" .. package.path
      local g = require "goroutines"
      g.gomaxprocs(1)   -- one job: no second worker still starting at exit
      local ch = g.chan()
      g.parallel(function(ch)
        ch:send(require("parallel_spec_mod").greet("worker"))
      end, ch)
      print(ch:recv())
      print(package.loaded.parallel_spec_mod)
    ]]):format(dir))
    os.remove(dir .. "/parallel_spec_mod.lua")
    os.remove(dir)
    assert.are.equal("", err)
    assert.are.equal(0, code)
    -- Loaded in the worker only.
    assert.are.equal("hello worker\ttrue\nnil\n", out)
  end)
end)

describe("g.gomaxprocs", function()
  it("returns a positive integer", function()
    local n = g.gomaxprocs()
    assert.are.equal("integer", math.type(n))
    assert.is_true(n >= 1)
  end)

  it("sets a new value and returns the previous one", function()
    local prev = g.gomaxprocs()
    assert.are.equal(prev, g.gomaxprocs(3))
    assert.are.equal(3, g.gomaxprocs())
    assert.are.equal(3, g.gomaxprocs(1))
    assert.are.equal(1, g.gomaxprocs(prev))
    assert.are.equal(prev, g.gomaxprocs())
    -- Parallel goroutines still run after the changes.
    local ch = g.chan()
    g.parallel(function(c) c:send("ok") end, ch)
    assert.are.equal("ok", (recv_within(ch, 10)))
  end)

  it("rejects what is not an integer from 1 to 1024", function()
    local prev = g.gomaxprocs()
    for _, bad in ipairs { 0, -1, 1025, 1.5, "x", true, {} } do
      local err = h.raises("bad argument #1 to", g.gomaxprocs, bad)
      assert.is_true(h.has(err, "(must be an integer from 1 to 1024)"), err)
    end
    assert.are.equal(prev, g.gomaxprocs())
  end)

  it("starts a worker per unit: two parallel goroutines run at the same time",
     function()
    local prev = g.gomaxprocs(2)
    -- Workers started, then asleep, as after any pause in a program.
    local warm = g.chan()
    g.parallel(function(c) c:send(true) end, warm)
    recv_within(warm, 10)
    g.time.sleep(0.05)
    -- Each goroutine offers its name, then polls for the other's without
    -- ever yielding (a gsub callback cannot yield, so even preemption cannot
    -- switch goroutines): they meet only if two threads run them at once.
    local function meet(mine, theirs, res, name)
      local saw = "nobody"
      string.gsub("x", "x", function()
        g.select { mine:on_send(name), default = function() end }
        local t0 = g.time.now()
        while g.time.now() - t0 < 10 do
          local got = g.select {
            theirs:on_recv(function(v) return v end),
            default = function() end,
          }
          if got then saw = got; break end
        end
      end)
      res:send(name .. " saw " .. saw)
    end
    local ab, ba, res = g.chan(1), g.chan(1), g.chan()
    g.parallel(meet, ab, ba, res, "A")
    g.parallel(meet, ba, ab, res, "B")
    local got = { recv_within(res, 30), (recv_within(res, 30)) }
    table.sort(got)
    g.gomaxprocs(prev)
    assert.are.same({ "A saw B", "B saw A" }, got)
  end)
end)

describe("g.numgoroutine", function()
  it("counts parallel goroutines, queued, blocked and from inside", function()
    -- In a process of its own: goroutines that earlier specs left ending
    -- would change the count meanwhile. The goroutines count from inside
    -- once all five are spawned (a worker may start the first one while
    -- main still spawns the others).
    local out, err, code = h.run_script [[
      local g = require "goroutines"
      local function check(want, got, what)
        if want ~= got then
          error(("%s: %d goroutines, expected %d"):format(what, got, want))
        end
      end
      local base = g.numgoroutine()
      local start, release, seen = g.chan(), g.chan(), g.chan(5)
      local wg = g.sync.waitgroup()
      wg:add(5)
      for _ = 1, 5 do
        g.parallel(function(go, r, s, w)
          go:recv()   -- counts once all five are spawned
          s:send(g.numgoroutine())
          r:recv()
          w:done()
        end, start, release, seen, wg)
      end
      check(base + 5, g.numgoroutine(), "not all started yet")
      start:close()
      for _ = 1, 5 do check(base + 5, (seen:recv()), "from inside") end
      check(base + 5, g.numgoroutine(), "all blocked")
      release:close()
      wg:wait()
      local t0 = g.time.now()
      while g.numgoroutine() ~= base and g.time.since(t0) < 5 do
        g.time.sleep(0.001)
      end
      check(base, g.numgoroutine(), "all ended")
      print("counted", base)
    ]]
    assert.are.equal("counted\t1\n", out, err)
    assert.are.equal(0, code, err)
  end)
end)

describe("an uncaught error in a parallel goroutine", function()
  it("is raised in main as 'goroutine N: msg' with N the id of g.parallel",
     function()
    local id = g.parallel(function() error("parallel boom") end)
    local err = h.raises("goroutine " .. id .. ": ", g.time.sleep, 5)
    assert.is_true(h.has(err, "parallel_spec.lua:"), err)
    assert.is_true(h.has(err, ": parallel boom\nstack traceback:\n"), err)
  end)

  it("interrupts main's current blocking call", function()
    local ch = g.chan()
    local id = g.parallel(function()
      g.time.sleep(0.01)
      error("late parallel", 0)
    end)
    h.raises("goroutine " .. id .. ": late parallel\nstack traceback:\n",
             ch.recv, ch)
    -- The receive left no waiter behind.
    assert.are.equal("default", g.select { ch:on_send(1), default = true })
  end)

  it("is printed at exit with status 1 when main never blocks again",
     function()
    local out, err, code = h.run_script(([[
      local g = require "goroutines"
      g.gomaxprocs(1)   -- one job: no second worker still starting at exit
      local ch = g.chan()
      local id = g.parallel(function(ch)
        ch:send(1)
        g.time.sleep(0.1)   -- main has left its receive by then
        error("at exit")
      end, ch)
      ch:recv()
      local t0 = g.time.now()
      while g.time.now() - t0 < 0.5 * %d do end   -- computes, never blocks
      print("end", id)
    ]]):format(h.TIME_SCALE))
    assert.are.equal(1, code)
    local id = out:match("^end\t(%d+)\n$")
    assert.is_truthy(id, out)
    assert.is_true(h.has(err, "goroutine " .. id .. ": "), err)
    assert.is_true(h.has(err, ": at exit\nstack traceback:\n"), err)
  end)
end)

describe("channels across states", function()
  it("range in main receives all a parallel producer sent, then ends at close",
     function()
    local ch = g.chan(4)
    g.parallel(function(c)
      for i = 1, 100 do c:send(i) end
      c:close()
    end, ch)
    local got = {}
    for v in ch:range() do got[#got + 1] = v end
    local want = {}
    for i = 1, 100 do want[i] = i end
    assert.are.same(want, got)
    assert.are.same({ nil, false }, { ch:recv() })
  end)

  it("range in a parallel goroutine ends when main closes", function()
    local ch, res = g.chan(), g.chan()
    g.parallel(function(c, r)
      local sum = 0
      for v in c:range() do sum = sum + v end
      r:send(sum)
    end, ch, res)
    for i = 1, 50 do ch:send(i) end
    ch:close()
    assert.are.equal(1275, (recv_within(res, 10)))
  end)

  it("close wakes a parallel receiver with nil, false", function()
    local ch, res = g.chan(), g.chan()
    g.parallel(function(c, r)
      local v, ok = c:recv()
      r:send({ v, ok })
    end, ch, res)
    g.time.sleep(0.02)
    ch:close()
    assert.are.same({ nil, false }, (recv_within(res, 10)))
  end)

  it("send on a channel closed by another state raises", function()
    local ch, res = g.chan(), g.chan()
    g.parallel(function(c, r)
      c:close()
      local ok, err = pcall(c.send, c, 1)
      r:send({ ok, err })
    end, ch, res)
    local got = recv_within(res, 10)
    assert.is_false(got[1])
    assert.is_true(h.has(got[2], "send on closed channel"), got[2])
    h.raises("send on closed channel", ch.send, ch, 1)
  end)

  it("select in main takes a value a parallel goroutine sends late",
     function()
    local ch = g.chan()
    g.parallel(function(c) g.time.sleep(0.05); c:send("data") end, ch)
    local t = g.time.timer(10)
    local got = g.select {
      ch:on_recv(function(v) return v end),
      t.c:on_recv(function() return "timeout" end),
    }
    t:stop()
    assert.are.equal("data", got)
  end)

  it("select in main times out while a parallel goroutine holds back",
     function()
    local ch, release = g.chan(), g.chan()
    g.parallel(function(c, r) r:recv(); c:send("data") end, ch, release)
    local got = g.select {
      ch:on_recv(function(v) return v end),
      g.time.after(0.05):on_recv(function() return "timeout" end),
    }
    assert.are.equal("timeout", got)
    release:send(true)
    assert.are.equal("data", (recv_within(ch, 10)))
  end)

  it("select in a parallel goroutine: send case, receive case, timeout",
     function()
    local a, b, res = g.chan(), g.chan(), g.chan()
    g.parallel(function(a, b, r)
      local log = {}
      for _ = 1, 2 do
        log[#log + 1] = g.select {
          a:on_send("to main", function() return "sent" end),
          b:on_recv(function(v) return "got " .. v end),
        }
      end
      log[#log + 1] = g.select {
        b:on_recv(function(v) return "got " .. v end),
        g.time.after(0.02):on_recv(function() return "timeout" end),
      }
      r:send(table.concat(log, ", "))
    end, a, b, res)
    assert.are.equal("to main", (recv_within(a, 10)))
    b:send("x")
    assert.are.equal("sent, got x, timeout", (recv_within(res, 10)))
  end)
end)

describe("sync objects shared with parallel goroutines", function()
  it("waitgroup: main waits for parallel goroutines, and they for main",
     function()
    local wg, gate, out = g.sync.waitgroup(), g.sync.waitgroup(), g.chan(10)
    wg:add(4)
    gate:add(1)
    for i = 1, 4 do
      g.parallel(function(w, gt, o, v)
        gt:wait()
        o:send(v)
        w:done()
      end, wg, gate, out, i)
    end
    g.time.sleep(0.02)
    assert.are.equal(0, out:len())   -- all held by gate
    gate:done()
    wg:wait()
    assert.are.equal(4, out:len())
    local sum = 0
    for _ = 1, 4 do sum = sum + out:recv() end
    assert.are.equal(10, sum)
  end)

  it("mutex: one holder at a time across states, no update lost", function()
    local m = g.sync.mutex()
    local inside = g.chan(1)   -- holds a token while someone holds m
    local box = g.chan(1)      -- the counter
    box:send(0)
    local res = g.chan()
    local function worker(m, inside, box, res, n)
      local overlaps = 0
      for _ = 1, n do
        m:lock()
        if g.select { inside:on_send(true), default = true } == "default" then
          overlaps = overlaps + 1
        end
        local v = box:recv()
        local t0 = g.time.now()
        while g.time.now() - t0 < 0.0002 do end   -- widen the window
        g.gosched()
        box:send(v + 1)
        g.select { inside:on_recv(), default = true }
        m:unlock()
      end
      res:send(overlaps)
    end
    g.parallel(worker, m, inside, box, res, 100)
    g.parallel(worker, m, inside, box, res, 100)
    g.go(worker, m, inside, box, res, 100)
    local overlaps = 0
    for _ = 1, 3 do overlaps = overlaps + recv_within(res, 30) end
    assert.are.equal(0, overlaps)
    assert.are.equal(300, box:recv())
  end)

  it("once: f runs once among main and parallel goroutines", function()
    local o, wg, hits = g.sync.once(), g.sync.waitgroup(), g.chan(10)
    wg:add(4)
    for _ = 1, 4 do
      g.parallel(function(o, w, hits)
        o:call(function() g.time.sleep(0.01); hits:send(g.id()) end)
        w:done()
      end, o, wg, hits)
    end
    o:call(function() hits:send(g.id()) end)
    wg:wait()
    assert.are.equal(1, hits:len())
  end)
end)

describe("contexts shared with parallel goroutines", function()
  it("cancel in main wakes a parallel goroutine waiting on done()",
     function()
    local ctx, cancel = g.context.with_cancel(g.context.background())
    local res = g.chan()
    g.parallel(function(c, r)
      local v, ok = c:done():recv()
      r:send({ v, ok, c:err() })
    end, ctx, res)
    g.time.sleep(0.02)
    cancel()
    assert.are.same({ nil, false, "context canceled" },
                    (recv_within(res, 10)))
  end)

  it("a deadline set in main expires for a parallel goroutine", function()
    local ctx = g.context.with_timeout(g.context.background(), 0.05)
    local res = g.chan()
    g.parallel(function(c, r)
      r:send(tostring(c:err()))
      c:done():recv()
      r:send(c:err())
    end, ctx, res)
    assert.are.equal("nil", (recv_within(res, 10)))
    assert.are.equal("context deadline exceeded", (recv_within(res, 10)))
  end)

  it("a cancel function called in a parallel goroutine cancels in main",
     function()
    local parent, cancel = g.context.with_cancel(g.context.background())
    local child = g.context.with_cancel(parent)
    local res = g.chan()
    g.parallel(function(cf, r) cf(); r:send("cancelled") end, cancel, res)
    assert.are.equal("cancelled", (recv_within(res, 10)))
    recv_within(child:done(), 10)
    assert.are.equal("context canceled", child:err())
    assert.are.equal("context canceled", parent:err())
  end)
end)

describe("a deadlock involving parallel goroutines", function()
  it("is reported with every goroutine of every state listed", function()
    local out, err, code, path = h.run_script(table.concat({
      'local g = require "goroutines"',                            -- 1
      'local a, b = g.chan(), g.chan()',                           -- 2
      'local x = g.parallel(function(a) a:recv() end, a)',         -- 3
      'local y = g.parallel(function(b)',                          -- 4
      '  g.select { b:on_recv(), b:on_send(1) }',                  -- 5
      'end, b)',                                                   -- 6
      'print(x, y)',                                               -- 7
      'a:recv()',                                                  -- 8
      'print("unreachable")',                                      -- 9
    }, "\n"), 30)
    local x, y = out:match("^(%d+)\t(%d+)\n$")
    assert.is_truthy(x, out)
    assert.are.equal(1, code)
    assert.is_true(h.has(err, HEADER), err)
    lists(err, 1, "chan receive", path, 8)
    lists(err, tonumber(x), "chan receive", path, 3)
    lists(err, tonumber(y), "select", path, 5)
  end)

  it("is not reported while a parallel goroutine sleeps before sending",
     function()
    local out, err, code = h.run_script([[
      local g = require "goroutines"
      local ch, mid = g.chan(), g.chan()
      g.parallel(function(mid) g.time.sleep(0.2); mid:send("late") end, mid)
      g.parallel(function(mid, ch) ch:send(mid:recv() .. "!") end, mid, ch)
      g.parallel(function(ch)
        local t0 = os.clock()
        while os.clock() - t0 < 0.2 do end   -- computes, never blocks
        ch:send("computed")
      end, ch)
      local got = { ch:recv(), (ch:recv()) }
      table.sort(got)
      print(got[1], got[2])
    ]], 30)
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("computed\tlate!\n", out)
  end)
end)

describe("the program's end", function()
  it("stops workers running endless loops and exits with status 0",
     function()
    local out, err, code = h.run_script([[
      local g = require "goroutines"
      g.gomaxprocs(2)
      local ch = g.chan()
      g.parallel(function(ch) ch:send(1); while true do end end, ch)
      g.parallel(function(ch)
        ch:send(1)
        pcall(function() while true do end end)
      end, ch)
      ch:recv()
      ch:recv()
      print("bye")
    ]], 30)
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("bye\n", out)
  end)

  it("stops a worker looping inside a C call that cannot yield", function()
    local out, err, code = h.run_script([[
      local g = require "goroutines"
      g.gomaxprocs(1)   -- one job: no second worker still starting at exit
      local ch = g.chan()
      g.parallel(function(ch)
        ch:send(1)
        table.sort({ 3, 2, 1 }, function() while true do end end)
      end, ch)
      ch:recv()
      print("bye")
    ]], 30)
    assert.are.equal(0, code)
    assert.are.equal("bye\n", out)
    assert.are.equal("", err)
  end)

  it("abandons parallel goroutines blocked, sleeping or never started",
     function()
    local out, err, code = h.run_script([[
      local g = require "goroutines"
      g.gomaxprocs(1)
      local ch = g.chan()
      g.parallel(function(ch) ch:send(1); g.chan():recv() end, ch)
      ch:recv()
      g.parallel(function() g.time.sleep(30); print("late") end)
      -- Then the only worker computes where it cannot yield: the goroutines
      -- queued after this one cannot start.
      g.parallel(function(ch)
        ch:send(2)
        string.gsub("x", "x", function() while true do end end)
      end, ch)
      ch:recv()
      for _ = 1, 50 do
        g.parallel(function() print("never") end)
      end
      print("bye")
    ]], 30)
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("bye\n", out)
  end)
end)

describe("M:N scheduling", function()
  it("starts a queued parallel goroutine while every worker computes",
     function()
    -- Go preempts goroutines that never block, so a third one gets a
    -- thread with GOMAXPROCS=2; a queued parallel goroutine must not wait
    -- forever behind two that compute.
    local out, err, code = h.run_script([[
      local g = require "goroutines"
      g.gomaxprocs(2)
      local ch = g.chan(3)   -- the sends do not block
      for i = 1, 3 do
        g.parallel(function(ch, i)
          ch:send(i)
          local t0 = g.time.now()
          while g.time.now() - t0 < 20 do end
        end, ch, i)
      end
      local sum = 0
      for _ = 1, 3 do sum = sum + ch:recv() end
      print(sum)
    ]], 10)
    assert.are.equal(0, code)
    assert.are.equal("6\n", out)
    assert.are.equal("", err)
  end)
end)

-- Runs src like h.run_script, with the environment variables of env (a
-- table name -> value) set for the child: the runtime's test hooks.
local function run_with_env(env, src, limit)
  return h.run_script(src, limit, env)
end

describe("a worker that cannot start", function()
  it("is replaced when its state cannot be made", function()
    local out, err, code = run_with_env({GOROUTINES_TEST_WORKERFAIL = "2"}, [[
      local g = require "goroutines"
      g.gomaxprocs(1)
      local ch = g.chan()
      g.parallel(function(c) c:send("ran") end, ch)
      print(ch:recv())
    ]], 20)
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("ran\ttrue\n", out)
  end)

  it("fails its jobs in main when none can start, never hangs", function()
    local out, err, code = run_with_env({GOROUTINES_TEST_WORKERFAIL = "99"},
                                        [[
      local g = require "goroutines"
      g.gomaxprocs(2)
      local ch = g.chan()
      local id = g.parallel(function(c) c:send("ran") end, ch)
      local ok, e = pcall(ch.recv, ch)
      print(ok, e == ("goroutine " .. id .. ": goroutines: cannot start a "
                      .. "worker thread's state: not enough memory") or e)
      print(g.numgoroutine())
    ]], 20)
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("false\ttrue\n1\n", out)
  end)

  it("fails its jobs in main when the worker's require fails", function()
    local out, err, code = h.run_script([[
      local g = require "goroutines"
      package.path, package.cpath = "", ""   -- what the workers get
      local ch = g.chan()
      local id = g.parallel(function(c) c:send("ran") end, ch)
      local ok, e = pcall(ch.recv, ch)
      print(ok, e)
    ]], 20)
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.is_truthy(out:find("^false\tgoroutine %d+: goroutines: cannot "
      .. "start a worker thread's state: module 'goroutines' not found"), out)
  end)
end)

describe("g.parallel that cannot start a worker thread", function()
  it("raises, and its goroutine never runs later", function()
    local out, err, code = run_with_env({GOROUTINES_TEST_THREADFAIL = "1"}, [[
      local g = require "goroutines"
      g.gomaxprocs(1)
      local ch = g.chan(10)
      print(pcall(g.parallel, function(c) c:send("first") end, ch))
      print(g.numgoroutine())
      g.parallel(function(c) c:send("second") end, ch)
      print(ch:recv())
      g.time.sleep(0.2)
      print(#ch, g.numgoroutine())
    ]], 20)
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("false\tgoroutines: cannot start a worker thread\n1\n"
                     .. "second\ttrue\n0\t1\n", out)
  end)
end)

describe("a parallel goroutine whose error object's __tostring raises", function()
  it("is reported in main, and its worker goes on", function()
    local out, err, code = h.run_script([[
      local g = require "goroutines"
      g.gomaxprocs(1)
      g.parallel(function()
        error(setmetatable({}, {__tostring = function() error("inner") end}))
      end)
      local ok, e = pcall(function() g.chan():recv() end)
      print(ok, (tostring(e):match("^goroutine %d+: ")))
      local ch = g.chan()
      g.parallel(function(c) c:send("worker alive") end, ch)
      print(ch:recv())
    ]], 20)
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.is_truthy(out:find("^false\tgoroutine %d+: \nworker alive\ttrue\n$"), out)
  end)
end)
