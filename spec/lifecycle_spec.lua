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
