-- SPEC "I/O that blocks only the goroutine": g.signal.notify and stop, as
-- Go's os/signal: the signal's name sent without blocking (dropped when the
-- channel is full), several channels per signal, stop, deadlock detection
-- while a signal may still come, bad input.

local g = require "goroutines"
local h = require "spec.helpers"

local function kill(name)
  assert.is_true(os.execute("kill -" .. name .. " " .. g.os.getpid()))
end

describe("g.signal", function()
  it("notify sends the signal's name on every channel notified of it", function()
    local a, b = g.chan(1), g.chan(4)
    g.signal.notify(a, "SIGUSR1", "SIGUSR2")
    g.signal.notify(b, "SIGUSR1")
    kill("USR1")
    assert.are.equal("SIGUSR1", h.recv_within(a, 10))
    assert.are.equal("SIGUSR1", h.recv_within(b, 10))
    kill("USR2")
    assert.are.equal("SIGUSR2", h.recv_within(a, 10))
    g.signal.stop(a)
    g.signal.stop(b)
  end)

  it("a full channel misses the signal; stop ends the notifications", function()
    local full, sync = g.chan(1), g.chan(4)
    g.signal.notify(full, "SIGUSR1")
    g.signal.notify(sync, "SIGUSR1")
    g.signal.notify(sync, "SIGUSR1")   -- once per channel, as Go's
    kill("USR1")
    assert.are.equal("SIGUSR1", h.recv_within(sync, 10))
    kill("USR1")
    assert.are.equal("SIGUSR1", h.recv_within(sync, 10))
    assert.are.equal(1, full:len())     -- the second was dropped
    assert.are.equal(0, sync:len())     -- not sent twice
    assert.are.equal("SIGUSR1", full:recv())
    g.signal.stop(full)
    kill("USR1")
    assert.are.equal("SIGUSR1", h.recv_within(sync, 10))
    assert.are.equal(0, full:len())
    g.signal.stop(sync)
    g.signal.stop(sync)                 -- stopping twice is harmless
  end)

  it("a goroutine waits for a signal; a wait without one is a deadlock", function()
    local out, err, code = h.run_script([[
      local g = require "goroutines"
      local ch = g.chan(1)
      g.signal.notify(ch, "SIGUSR2")
      g.go(function()
        g.time.sleep(0.2)
        os.execute("kill -USR2 " .. g.os.getpid())
      end)
      print((ch:recv()))      -- not a deadlock: a signal may come
      g.signal.stop(ch)
      ch:recv()               -- now nothing can wake it
    ]], 60)
    assert.are.equal("SIGUSR2\n", out)
    assert.are_not.equal(0, code)
    assert.is_true(h.has(err, "all goroutines are asleep - deadlock!"), err)
  end)

  it("works in a worker state, on its own loop", function()
    local out, err, code = h.run_script([[
      local g = require "goroutines"
      local got = g.chan()
      g.parallel(function(ch)
        local mine = g.chan(1)
        g.signal.notify(mine, "SIGHUP")
        ch:send("ready")
        ch:send(mine:recv())
        g.signal.stop(mine)
      end, got)
      assert(got:recv() == "ready")
      os.execute("kill -HUP " .. g.os.getpid())
      print((got:recv()))
    ]], 60)
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("SIGHUP\n", out)
  end)

  it("a notified state closes cleanly", function()
    local out, err, code = h.run_script([[
      local g = require "goroutines"
      local ch = g.chan(1)
      g.signal.notify(ch, "SIGINT", "SIGTERM")
      print("done")
    ]], 60)
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("done\n", out)
  end)

  it("bad input raises luaL-style errors", function()
    local ch = g.chan(1)
    h.raises("bad argument #2 to 'notify' (unknown signal 'SIGFOO')",
             function() g.signal.notify(ch, "SIGFOO") end)
    h.raises("bad argument #3 to 'notify' (unknown signal 'INT')",
             function() g.signal.notify(ch, "SIGINT", "INT") end)
    h.raises("bad argument #1 to 'notify' (goroutines.chan expected, got number)",
             function() g.signal.notify(1, "SIGINT") end)
    h.raises("bad argument #2 to 'notify' (signal name expected)",
             function() g.signal.notify(ch) end)
    h.raises("bad argument #2 to 'notify' (string expected, got table)",
             function() g.signal.notify(ch, {}) end)
    h.raises("send to receive-only channel",
             function() g.signal.notify(ch:receiver(), "SIGINT") end)
    h.raises("bad argument #1 to 'stop' (goroutines.chan expected, got nil)",
             function() g.signal.stop(nil) end)
  end)
end)
