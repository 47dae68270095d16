-- SPEC "Errors": uncaught goroutine errors (raised in main, or printed at
-- exit with status 1), blocking where a goroutine cannot yield, bad
-- arguments.

local g = require "goroutines"
local h = require "spec.helpers"

local CANNOT_BLOCK = ": cannot block here, inside a C call that cannot "
  .. "yield (such as a table.sort comparator or a gsub callback)"

describe("an uncaught error in a goroutine", function()
  it("is raised in main at its next blocking call, with 'goroutine N:' "
     .. "and a traceback", function()
    local function explode() error("boom") end
    local id = g.go(function() explode() end)
    local err = h.raises("goroutine " .. id .. ": ", h.recv_never)
    assert.is_true(h.has(err, "errors_spec.lua:"), err)
    assert.is_true(h.has(err, ": boom\nstack traceback:\n"), err)
    -- The traceback is the goroutine's: it goes through explode.
    local tb = err:sub((err:find("stack traceback:", 1, true)))
    assert.is_true(h.has(tb, "'explode'"), err)
  end)

  it("keeps a message without position as it is", function()
    local id = g.go(function() error("plain", 0) end)
    h.raises("goroutine " .. id .. ": plain\nstack traceback:\n",
             h.recv_never)
  end)

  it("interrupts main's current blocking call", function()
    local ch = g.chan()
    local id = g.go(function() g.time.sleep(0.01); error("late", 0) end)
    local elapsed = h.timed(h.raises, "goroutine " .. id .. ": late",
                            ch.recv, ch)
    assert.is_true(elapsed < 5)
    -- Main's receive left no waiter behind on ch.
    assert.are.equal("default", g.select { ch:on_send(1), default = true })
    g.go(function() ch:send("after") end)
    assert.are.equal("after", ch:recv())
  end)

  it("is raised once; a later blocking call goes on normally", function()
    local id = g.go(function() error("once", 0) end)
    h.raises("goroutine " .. id .. ": once", h.recv_never)
    local ch = g.chan(1)
    g.go(function() ch:send("fine") end)
    assert.are.equal("fine", ch:recv())
  end)

  it("is never lost: two failing goroutines are both reported", function()
    local a = g.go(function() error("first", 0) end)
    local b = g.go(function() error("second", 0) end)
    local all = {}
    for _ = 1, 6 do
      local ok, err = pcall(g.time.sleep, 0.005)
      if not ok then all[#all + 1] = err end
    end
    all = table.concat(all, "\n")
    assert.is_true(h.has(all, "goroutine " .. a .. ": first"), all)
    assert.is_true(h.has(all, "goroutine " .. b .. ": second"), all)
  end)

  it("does not reach main when the goroutine catches it", function()
    local caught
    g.go(function()
      local ok, err = pcall(error, "handled", 0)
      caught = not ok and err
    end)
    g.time.sleep(0.005)
    assert.are.equal("handled", caught)
  end)

  it("does not stop the other goroutines", function()
    local ch = g.chan()
    g.go(function() error("one fails", 0) end)
    g.go(function() for i = 1, 3 do ch:send(i) end end)
    local got = {}
    for _ = 1, 3 do
      local ok, v = pcall(ch.recv, ch)
      if ok then
        got[#got + 1] = v
      else
        assert.is_true(h.has(v, "one fails"), v)
        got[#got + 1] = ch:recv()
      end
    end
    assert.are.same({ 1, 2, 3 }, got)
  end)

  it("ends the program with status 1 when main does not catch it",
     function()
    local out, err, code = h.run_script [[
      local g = require "goroutines"
      print("before")
      g.go(function() error("fatal in goroutine", 0) end)
      g.chan():recv()
      print("unreachable")
    ]]
    assert.are.equal("before\n", out)
    assert.are.equal(1, code)
    assert.is_true(h.has(err, "goroutine 2: fatal in goroutine\n"
                              .. "stack traceback:\n"), err)
  end)

  it("is printed at exit with status 1 when main ends first", function()
    -- The goroutine fails right after handing main its value: main may see
    -- the error at that receive, or end and have it printed at exit.
    local out, err, code = h.run_script [[
      local g = require "goroutines"
      local ch = g.chan()
      g.go(function() ch:send("v"); error("after send", 0) end)
      io.write(ch:recv(), "\n")
    ]]
    assert.is_true(out == "" or out == "v\n", out)
    assert.are.equal(1, code)
    assert.is_true(h.has(err, "goroutine 2: after send\nstack traceback:\n"),
                   err)
  end)

  it("pending at exit is printed, with status 1", function()
    -- Main catches (or not) the first error; the second, if its goroutine
    -- ran, may still be pending when main ends.  Every error of a goroutine
    -- that ran is reported exactly once: caught by main or on stderr.
    local out, err, code = h.run_script [[
      local g = require "goroutines"
      local ch = g.chan()
      g.go(function() ch:send(1); error("one", 0) end)
      g.go(function() print("three ran"); error("two", 0) end)
      local ok, e = pcall(ch.recv, ch)
      print("caught", ok and "nothing" or e:match("^goroutine %d+: %a+"))
    ]]
    local function count(s, sub)
      local n, i = 0, 1
      while true do
        i = string.find(s, sub, i, true)
        if not i then return n end
        n, i = n + 1, i + 1
      end
    end
    local seen = out .. err
    assert.are.equal(1, count(seen, "goroutine 2: one"), seen)
    if h.has(out, "three ran") then
      assert.are.equal(1, count(seen, "goroutine 3: two"), seen)
    end
    if h.has(err, "goroutine ") then
      assert.are.equal(1, code, seen)
    else
      assert.are.equal(0, code, seen)
    end
  end)
end)

describe("blocking where the goroutine cannot yield", function()
  -- Runs f in a goroutine and returns the error it raised (or nil).
  local function in_goroutine(f)
    local done = g.chan()
    g.go(function()
      local ok, err = pcall(f)
      done:send(not ok and err or false)
    end)
    return done:recv()
  end

  it("raises in a table.sort comparator (chan receive)", function()
    local ch = g.chan()
    local err = in_goroutine(function()
      table.sort({ 3, 1, 2 }, function(a, b) ch:recv(); return a < b end)
    end)
    assert.is_true(h.has(err, "chan receive" .. CANNOT_BLOCK), err)
  end)

  it("leaves no waiter behind: the channel works afterwards", function()
    local ch = g.chan()
    in_goroutine(function()
      table.sort({ 3, 1, 2 }, function(a, b) ch:recv(); return a < b end)
    end)
    -- A stranded receiver would take this value.
    assert.are.equal("default", g.select { ch:on_send("lost?"), default = true })
    local got
    local done = g.chan()
    g.go(function() got = ch:recv(); done:send(true) end)
    ch:send("v")
    done:recv()
    assert.are.equal("v", got)
  end)

  it("raises in an xpcall message handler, and xpcall returns that error",
     function()
    local ch = g.chan()
    local err = in_goroutine(function()
      local ok, e = xpcall(function() error("first", 0) end,
                           function(e) ch:send(e); return e end)
      assert(not ok)
      error(e, 0)
    end)
    assert.is_true(h.has(err, "chan send" .. CANNOT_BLOCK), err)
    -- Nothing was sent, and the channel works on.
    assert.are.equal("default", g.select { ch:on_recv(), default = true })
  end)

  it("raises in a gsub callback (chan send)", function()
    local ch = g.chan()
    local err = in_goroutine(function()
      string.gsub("abc", "%w", function(c) ch:send(c) end)
    end)
    assert.is_true(h.has(err, "chan send" .. CANNOT_BLOCK), err)
    assert.are.equal("default", g.select { ch:on_recv(), default = true })
  end)

  it("raises for select and sleep in a comparator", function()
    local a, b = g.chan(), g.chan()
    local err = in_goroutine(function()
      table.sort({ 2, 1 }, function(x, y)
        g.select { a:on_recv(), b:on_recv() }
        return x < y
      end)
    end)
    assert.is_true(h.has(err, "select" .. CANNOT_BLOCK), err)
    err = in_goroutine(function()
      table.sort({ 2, 1 }, function(x, y) g.time.sleep(0.01); return x < y end)
    end)
    assert.is_true(h.has(err, "sleep" .. CANNOT_BLOCK), err)
    assert.are.equal("default", g.select { a:on_send(1), b:on_send(2),
                                           default = true })
  end)

  it("raises in a metamethod called from C (__tostring)", function()
    local ch = g.chan()
    local obj = setmetatable({}, { __tostring = function()
      return ch:recv()
    end })
    local err = in_goroutine(function() return tostring(obj) end)
    assert.is_true(h.has(err, "chan receive" .. CANNOT_BLOCK), err)
  end)

  it("raises for a waitgroup wait and a mutex lock", function()
    local wg, m = g.sync.waitgroup(), g.sync.mutex()
    wg:add(1)
    m:lock()
    local err = in_goroutine(function()
      table.sort({ 2, 1 }, function(x, y) wg:wait(); return x < y end)
    end)
    assert.is_true(h.has(err, "sync.WaitGroup.Wait" .. CANNOT_BLOCK), err)
    err = in_goroutine(function()
      table.sort({ 2, 1 }, function(x, y) m:lock(); return x < y end)
    end)
    assert.is_true(h.has(err, "sync.Mutex.Lock" .. CANNOT_BLOCK), err)
    -- Neither left a waiter: the mutex goes to the next locker.
    m:unlock()
    m:lock()
    m:unlock()
    wg:done()
    wg:wait()
  end)

  it("lets non-blocking operations work there", function()
    local ch, out = g.chan(3), g.chan(1)
    ch:send(10)
    ch:send(20)
    local got = {}
    local err = in_goroutine(function()
      local t = { 3, 1, 2 }
      table.sort(t, function(a, b)
        local _, v = g.select { ch:on_recv(), default = true }
        got[#got + 1] = v
        return a < b
      end)
      string.gsub("x", "x", function() out:send("sent in gsub") end)
      assert(t[1] == 1 and t[2] == 2 and t[3] == 3)
    end)
    assert.is_false(err)
    assert.are.same({ 10, 20 }, { got[1], got[2] })
    assert.are.equal("sent in gsub", out:recv())
  end)

  it("does not prevent the goroutine from blocking afterwards", function()
    local ch = g.chan()
    local done = g.chan()
    g.go(function()
      pcall(table.sort, { 2, 1 }, function() ch:recv(); return false end)
      done:send(ch:recv())
    end)
    g.gosched()
    ch:send("after the error")
    assert.are.equal("after the error", done:recv())
  end)
end)

describe("bad arguments", function()
  it("go without a function", function()
    h.raises({ "bad argument #1", "(function expected, got nil)" }, g.go, nil)
    h.raises({ "bad argument #1", "(function expected, got number)" }, g.go, 1)
    h.raises("function expected, got nil", function() return g(nil) end)
  end)

  it("chan with a bad capacity", function()
    local msg = "(capacity must be a non-negative integer)"
    h.raises({ "bad argument #1", msg }, g.chan, -1)
    h.raises({ "bad argument #1", msg }, g.chan, 1.5)
  end)

  it("select without a table, or with an entry that is not a case",
     function()
    h.raises({ "bad argument #1", "table expected, got number" }, g.select, 1)
    local ch = g.chan(1)
    h.raises({ "bad argument #1", "(case 2 is not a select case)" },
             g.select, { ch:on_recv(), 42 })
    h.raises({ "bad argument #1", "(case 1 is not a select case)" },
             g.select, { {}, default = true })
    -- userdata with another metatable: a channel, a file
    h.raises({ "bad argument #1", "(case 1 is not a select case)" },
             g.select, { ch, default = true })
    h.raises({ "bad argument #1", "(case 2 is not a select case)" },
             g.select, { ch:on_recv(), io.stdout })
  end)

  it("a channel method on something else", function()
    local ch = g.chan()
    h.raises({ "bad argument #1", "goroutines.chan expected" }, ch.send, {}, 1)
    h.raises({ "bad argument #1", "goroutines.chan expected" }, ch.recv, 42)
    h.raises({ "bad argument #1", "goroutines.chan expected" },
             ch.on_recv, io.stdout)
    h.raises({ "bad argument #1", "goroutines.chan expected" },
             ch.on_send, ch:on_recv(), 1)
  end)

  it("time functions without a number", function()
    h.raises({ "bad argument #1", "number expected, got string" },
             g.time.sleep, "x")
    h.raises({ "bad argument #1", "number expected, got nil" },
             g.time.after, nil)
    h.raises({ "bad argument #1", "number expected, got nil" },
             g.time.timer, nil)
  end)

  it("after_func without a function", function()
    h.raises({ "bad argument #2", "function expected" },
             g.time.after_func, 0.01, nil)
  end)

  it("waitgroup add without an integer", function()
    local wg = g.sync.waitgroup()
    h.raises({ "bad argument #1", "number expected, got string" },
             function() wg:add("x") end)
  end)
end)

describe("a goroutine that raises", function()
  it("runs its to-be-closed variables as itself, and they may block "
     .. "(Go's defer)", function()
    local out, err, code = h.run_script [[
      local g = require "goroutines"
      local results = g.chan()
      local id = g.go(function()
        local _ <close> = setmetatable({}, { __close = function(_, e)
          results:send(("%s in %d"):format(e and "failed" or "ok", g.id()))
        end })
        error("boom", 0)
      end)
      print("sleep", pcall(g.time.sleep, 0.02))  -- the close waits meanwhile
      print("got", results:recv())
      local ok, e = pcall(g.time.sleep, 0.01)
      print("then", ok, e:match("^goroutine %d+: boom") == "goroutine "
            .. id .. ": boom")
    ]]
    assert.are.equal("sleep\ttrue\ngot\tfailed in 2\ttrue\nthen\tfalse\ttrue\n",
                     out, err)
    assert.are.equal(0, code, err)
  end)

  it("reports an error object whose __tostring raises as its type",
     function()
    local before = g.numgoroutine()
    local id = g.go(function()
      error(setmetatable({}, { __tostring = function() error("inner") end }))
    end)
    local e = h.raises("goroutine " .. id
                       .. ": (error object is a table value)", h.recv_never)
    assert.is_false(h.has(e, "inner"), e)
    assert.are.equal(before, g.numgoroutine())
    -- Main's scheduler is intact: the next wait works as usual.
    local ch = g.chan()
    g.go(function() ch:send("still fine") end)
    assert.are.equal("still fine", ch:recv())
  end)

  it("reports an error object with a __tostring that blocks as its type",
     function()
    local never = g.chan()
    local id = g.go(function()
      error(setmetatable({}, { __tostring = function()
        never:recv()
        return "unreachable"
      end }))
    end)
    h.raises("goroutine " .. id .. ": (error object is a table value)",
             h.recv_never)
  end)

  it("reports an error object's __tostring text", function()
    local id = g.go(function()
      error(setmetatable({}, { __tostring = function() return "custom" end }))
    end)
    h.raises("goroutine " .. id .. ": custom\nstack traceback:",
             h.recv_never)
  end)

  it("in a worker, with a __tostring that raises, leaves the worker "
     .. "running", function()
    local out, err, code = h.run_script [[
      local g = require "goroutines"
      g.gomaxprocs(1)
      g.parallel(function()
        error(setmetatable({}, { __tostring = function() error("inner") end }))
      end)
      local ok, e = pcall(g.time.sleep, 0.5)
      print(ok, (e:gsub("\n.*", "")))
      local ch = g.chan()
      g.parallel(function(c) c:send("worker alive") end, ch)
      print(ch:recv())
    ]]
    assert.is_true(h.has(out, "false\tgoroutine 2: (error object is a "
                         .. "table value)\n"), out .. err)
    assert.is_true(h.has(out, "worker alive\ttrue\n"), out .. err)
    assert.are.equal(0, code, err)
  end)
end)

describe("a finalizer that blocks", function()
  -- Under GOROUTINES_GCSTRESS the scheduler collects after each run of a
  -- goroutine, on main's thread, while main waits in place: the finalizers
  -- run there, inside the scheduler.
  local script = [[
    local g = require "goroutines"
    local b, a = g.chan(), g.chan()
    local seen = {}
    local mt = { __gc = function()
      local ok, e = pcall(b.recv, b)
      seen[#seen + 1] = ok and "received" or e
    end }
    g.go(function()
      for _ = 1, 3 do
        for _ = 1, 50 do setmetatable({}, mt) end
        g.gosched()
      end
      a:send("done")
    end)
    print(a:recv())
    collectgarbage()
    local bad = 0
    for _, e in ipairs(seen) do
      if not e:find("cannot block here", 1, true) then
        bad = bad + 1
        print(e)
      end
    end
    print(#seen > 0, bad)
  ]]

  it("gets 'cannot block here' when the scheduler runs it", function()
    local out, err, code = h.run_script(script, 60,
                                        { GOROUTINES_GCSTRESS = "1" })
    assert.are.equal("done\ttrue\ntrue\t0\n", out, err)
    assert.are.equal(0, code, err)
  end)

  it("gets 'cannot block here' when main's own code runs it", function()
    local out, err, code = h.run_script(script)
    assert.are.equal("done\ttrue\ntrue\t0\n", out, err)
    assert.are.equal(0, code, err)
  end)
end)
