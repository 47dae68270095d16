-- SPEC "Goroutines", program lifecycle: when the main chunk ends, the
-- program ends; goroutines still alive (blocked, sleeping, runnable, never
-- started) are abandoned, and closing the state is clean.

local g = require "goroutines"
local h = require "spec.helpers"

describe("when the main chunk ends", function()
  it("blocked goroutines are abandoned: exit status 0", function()
    local out, err, code = h.run_script [[
      local g = require "goroutines"
      local ch = g.chan()
      g.go(function() ch:recv(); print("never received") end)
      g.go(function() g.chan():send(2) end)
      g.go(function() g.select { g.chan():on_recv() } end)
      local m = g.sync.mutex()
      m:lock()
      g.go(function() m:lock() end)
      g.gosched()
      print("main done", g.numgoroutine())
    ]]
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("main done\t5\n", out)
  end)

  it("sleeping goroutines are abandoned at once", function()
    local t0 = g.time.now()
    local out, err, code = h.run_script [[
      local g = require "goroutines"
      g.go(function() g.time.sleep(30); print("late") end)
      g.go(function()
        while true do g.time.sleep(0.001) end
      end)
      g.time.sleep(0.02)
      print("main done")
    ]]
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("main done\n", out)
    assert.is_true(g.time.since(t0) < 25)
  end)

  it("pending timers, tickers and after_funcs are abandoned at once",
     function()
    local t0 = g.time.now()
    local out, err, code = h.run_script [[
      local g = require "goroutines"
      g.time.after_func(30, function() print("after_func ran") end)
      local tk = g.time.ticker(0.005)
      local t = g.time.timer(30)
      local c = g.time.tick(0.01)
      c:recv()
      print("main done")
    ]]
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("main done\n", out)
    assert.is_true(g.time.since(t0) < 25)
  end)

  it("goroutines that never started never run", function()
    local out, err, code = h.run_script [[
      local g = require "goroutines"
      g.go(function() print("never") end)
      print("main done", g.numgoroutine())
    ]]
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("main done\t2\n", out)
  end)

  it("goroutines made runnable but not yet resumed never run", function()
    local out, err, code = h.run_script [[
      local g = require "goroutines"
      local ch = g.chan()
      g.go(function() local v = ch:recv(); print("got", v) end)
      g.gosched()
      ch:send("x")  -- hands the value over, does not block main
      print("main done")
    ]]
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("main done\n", out)
  end)

  it("with an error, the error is main's and goroutines are abandoned",
     function()
    local out, err, code = h.run_script [[
      local g = require "goroutines"
      g.go(function() g.chan():recv() end)
      g.go(function() g.time.sleep(30) end)
      g.gosched()
      error("main failed")
    ]]
    assert.are.equal("", out)
    assert.are.equal(1, code)
    assert.is_true(h.has(err, "main failed"), err)
    assert.is_false(h.has(err, "deadlock"), err)
  end)

  it("os.exit closes the state cleanly with goroutines alive", function()
    local out, err, code = h.run_script [[
      local g = require "goroutines"
      local ch = g.chan(4)
      ch:send({}); ch:send("buffered")
      g.go(function() g.chan():recv() end)
      g.go(function() g.time.sleep(30) end)
      g.time.sleep(0.01)
      io.write("exiting\n")
      os.exit(3, true)
    ]]
    assert.are.equal("", err)
    assert.are.equal(3, code)
    assert.are.equal("exiting\n", out)
  end)
end)

describe("a finalizer that lua_close runs after the runtime closed", function()
  -- Marked before `require`, KEEP is finalized after the state's own
  -- anchor: every module function it calls finds the runtime closed.
  it("gets a clear error from every function that needs the runtime",
     function()
    local out, err, code = h.run_script [[
      local g
      local function try(name, f, ...)
        local ok, e = pcall(f, ...)
        print(name, ok, e)
      end
      KEEP = setmetatable({}, {__gc = function()
        -- Objects made before are finalized by now, and none can be made:
        -- Lua would never finalize it.
        try("chan", g.chan, 1)
        try("mutex", g.sync.mutex)
        try("waitgroup", g.sync.waitgroup)
        try("once", g.sync.once)
        try("go", g.go, print)
        try("gosched", g.gosched)
        try("id", g.id)
        try("select", g.select, { default = true })
        try("sleep", g.time.sleep, 0.01)
        try("after", g.time.after, 0.01)
        try("timer", g.time.timer, 0.01)
        try("background", g.context.background)
        try("parallel", g.parallel, print)
        try("gomaxprocs", g.gomaxprocs)
        print("finalizer done")
      end})
      g = require "goroutines"
      print("main end")
    ]]
    assert.are.equal("", err)
    assert.are.equal(0, code)
    local lines = {}
    for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.are.equal("main end", lines[1])
    assert.are.equal("finalizer done", lines[#lines])
    assert.are.equal(16, #lines)
    for i = 2, #lines - 1 do
      assert.is_truthy(lines[i]:find(
        "^%a+\tfalse\t.*goroutines: the runtime of this state is closed$"),
        lines[i])
    end
  end)
end)

describe("errors never raised when the state closes", function()
  it("are printed, a worker's with the host's, and the exit status is 1",
     function()
    local out, err, code = h.run_script [[
      local g = require "goroutines"
      g.go(function() error("in the host", 0) end)
      g.gosched()   -- runs it once; its error waits for a blocking call
      g.parallel(function() error("in a worker", 0) end)
      -- Main never blocks again: the worker's error reaches the host but
      -- is never raised.
      local t0 = os.clock()
      local scale = tonumber(os.getenv("SPEC_TIME_SCALE")) or 1
      while os.clock() - t0 < 0.3 * scale do end
      print("main done")
    ]]
    assert.are.equal("main done\n", out)
    assert.are.equal(1, code)
    assert.is_truthy(err:find("goroutine %d+: in the host\nstack traceback:"),
                     err)
    assert.is_truthy(err:find("goroutine %d+: in a worker\nstack traceback:"),
                     err)
  end)
end)

describe("a worker inside a long C call when main ends", function()
  it("is not waited for: the exit is bounded, with a note on stderr",
     function()
    -- The call outlasts the bound by far, however slowly the program runs
    -- (valgrind).
    local scale = tonumber(os.getenv("SPEC_TIME_SCALE")) or 1
    local t0 = g.time.now()
    local out, err, code = h.run_script([[
      local g = require "goroutines"
      local ch = g.chan()
      g.parallel(function(c)
        c:send("in the call")
        os.execute("sleep " .. 5 * (tonumber(os.getenv("SPEC_TIME_SCALE")) or 1))
        print("never: the program ended")
      end, ch)
      print(ch:recv())
      -- Let the worker get into its call: interrupted before it, the
      -- worker would stop as any other.
      g.time.sleep(0.2 * (tonumber(os.getenv("SPEC_TIME_SCALE")) or 1))
      print("main end")
    ]], 30)
    local elapsed = g.time.since(t0)
    -- Under make valgrind, the abandoned state is memory "possibly lost",
    -- as it should be: valgrind's own lines are not the program's.
    err = err:gsub("==%d+==[^\n]*\n", "")
    assert.are.equal("in the call\ttrue\nmain end\n", out)
    assert.are.equal(0, code)
    assert.are.equal("goroutines: 1 worker thread still inside a C call at "
                     .. "exit: left running, its state not freed\n", err)
    assert.is_true(elapsed < 4 * scale, "exit took " .. elapsed .. " s")
  end)
end)
