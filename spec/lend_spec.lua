-- A worker thread inside a blocking C call (os.execute, a read of a pipe
-- through io.popen, as luasocket or sqlite would block) does not hold back
-- the parallel goroutines queued behind it: the pool lends a spare thread,
-- bounded, and gives it back when the call ends. Every case runs in a
-- child process, with gomaxprocs(1), so that one worker is all there is.
-- The calls last SCALE times longer where everything runs slower
-- (valgrind), so that they outlast each bound as much as they do here.
local h = require "helpers"

local SCALE = h.TIME_SCALE

-- What each child's script starts with: the module, SCALE, and ntasks(),
-- the number of threads of the process (/proc/<pid>/task, with the pid
-- read from /proc/self/stat: the `ls` that popen runs is another process).
local PRELUDE = [[
local g = require "goroutines"
local SCALE = tonumber(os.getenv("SPEC_TIME_SCALE")) or 1
local PID
do
  local f = assert(io.open("/proc/self/stat"))
  PID = f:read("n")
  f:close()
end
local function ntasks()
  local p = io.popen("ls /proc/" .. PID .. "/task")
  local n = 0
  for _ in p:lines() do n = n + 1 end
  p:close()
  return n
end
]]

local function run(src, limit)
  local out, err, code = h.run_script(PRELUDE .. src, limit or 60)
  err = err:gsub("==%d+==[^\n]*\n", "")   -- valgrind's own lines
  return out, err, code
end

describe("a worker inside a blocking C call", function()
  it("does not hold back a queued parallel goroutine (os.execute)", function()
    local out, err, code = run [[
      g.gomaxprocs(1)
      local ch, done = g.chan(), g.chan()
      g.parallel(function(c)
        c:send("in the call")
        local t0 = g.time.now()
        os.execute("sleep " .. 3 * SCALE)
        c:send(g.time.since(t0))
      end, ch)
      print((ch:recv()))
      local t0 = g.time.now()
      g.parallel(function(d) d:send("second done") end, done)
      print((done:recv()))
      local second = g.time.since(t0)
      local call = ch:recv()
      print("second within 1.5 s:", second < 1.5 * SCALE)
      print("the call lasted 3 s:", call > 2.9 * SCALE)
    ]]
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("in the call\nsecond done\nsecond within 1.5 s:\ttrue\n"
                     .. "the call lasted 3 s:\ttrue\n", out)
  end)

  it("does not hold back queued ones while it reads a silent pipe", function()
    local out, err, code = run [[
      g.gomaxprocs(1)
      local ch, done = g.chan(), g.chan(10)
      g.parallel(function(c)
        local p = io.popen("sleep " .. 3 * SCALE .. "; echo late")
        c:send("reading")
        c:send(p:read("l"))
        p:close()
      end, ch)
      print((ch:recv()))
      local t0 = g.time.now()
      for i = 1, 5 do g.parallel(function(d, n) d:send(n) end, done, i) end
      local sum = 0
      for _ = 1, 5 do sum = sum + done:recv() end
      print(sum, "within 1.5 s:", g.time.since(t0) < 1.5 * SCALE)
      print((ch:recv()))
    ]]
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("reading\n15\twithin 1.5 s:\ttrue\nlate\n", out)
  end)

  it("lends one spare thread at most with gomaxprocs(1), and gives it back",
     function()
    local out, err, code = run [[
      g.gomaxprocs(1)
      local warm = g.chan()
      g.parallel(function() warm:send(true) end)
      warm:recv()
      g.time.sleep(0.1)
      local base = ntasks()       -- main, the monitor, one worker
      -- Each call marks its start and end in a file from inside itself
      -- (the shell appends whole lines): a goroutine preempted between
      -- a marker of its own and the call would count wrongly.
      local log = os.tmpname()
      local wg = g.sync.waitgroup()
      for _ = 1, 6 do
        wg:add(1)
        g.parallel(function(path)
          os.execute(("echo + >> %s; sleep %s; echo - >> %s"):format(
                     path, 0.4 * SCALE, path))
          wg:done()
        end, log)
      end
      local alldone = g.chan()
      g.go(function() wg:wait() alldone:close() end)
      local maxtasks = base
      while g.select { alldone:on_recv(), default = true } == "default" do
        local n = ntasks()
        if n > maxtasks then maxtasks = n end
        g.time.sleep(0.02)
      end
      local running, maxrunning = 0, 0
      for l in io.lines(log) do
        running = running + (l == "+" and 1 or -1)
        if running > maxrunning then maxrunning = running end
      end
      os.remove(log)
      print("extra threads:", maxtasks - base)
      print("calls at once:", maxrunning)
      -- Back to one worker once no call is left.
      local t0 = g.time.now()
      while ntasks() > base and g.time.since(t0) < 5 * SCALE do
        g.time.sleep(0.02)
      end
      print("back to the base:", ntasks() == base)
    ]]
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("extra threads:\t1\ncalls at once:\t2\n"
                     .. "back to the base:\ttrue\n", out)
  end)

  it("bounds the threads by 2 * gomaxprocs with many calls", function()
    local out, err, code = run [[
      g.gomaxprocs(2)
      local warm = g.chan(2)
      for _ = 1, 2 do g.parallel(function() warm:send(true) end) end
      warm:recv() warm:recv()
      g.time.sleep(0.1)
      local base = ntasks()
      local wg = g.sync.waitgroup()
      wg:add(12)
      for _ = 1, 12 do
        g.parallel(function()
          os.execute("sleep " .. 0.3 * SCALE)
          wg:done()
        end)
      end
      local alldone = g.chan()
      g.go(function() wg:wait() alldone:close() end)
      local maxtasks = base
      while g.select { alldone:on_recv(), default = true } == "default" do
        local n = ntasks()
        if n > maxtasks then maxtasks = n end
        g.time.sleep(0.02)
      end
      print("extra threads at most 2:", maxtasks - base <= 2)
      print("some lent:", maxtasks - base >= 1)
    ]]
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("extra threads at most 2:\ttrue\nsome lent:\ttrue\n", out)
  end)

  it("lends no thread for a goroutine that computes where it cannot yield",
     function()
    local out, err, code = run [[
      g.gomaxprocs(1)
      local warm = g.chan()
      g.parallel(function() warm:send(true) end)
      warm:recv()
      g.time.sleep(0.1)
      local base = ntasks()
      local done = g.chan()
      g.parallel(function()
        -- Long slices: a thread that the system does not run for a slice
        -- (on a loaded machine) cannot reach the hook either.
        g.preempt_slice(0.2)
        -- Lua code in a gsub callback: the hook fires there each slice
        -- but cannot yield, so the goroutine holds its worker.
        string.gsub("x", "x", function()
          local t0, x = g.time.now(), 0
          while g.time.since(t0) < 1.5 do x = x + 1 end
        end)
        done:send("computed")
      end)
      g.parallel(function() done:send("second") end)
      local maxtasks = base
      local got = {}
      while #got < 2 do
        local i, v = g.select { done:on_recv(), default = true }
        if i ~= "default" then got[#got + 1] = v end
        local n = ntasks()
        if n > maxtasks then maxtasks = n end
        g.time.sleep(0.02)
      end
      table.sort(got)
      print(got[1], got[2], "extra threads:", maxtasks - base)
    ]]
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("computed\tsecond\textra threads:\t0\n", out)
  end)

  it("main's end is not held back by the worker and the spare thread in C",
     function()
    local t0 = os.time()
    local out, err, code = run([[
      g.gomaxprocs(1)
      local ch = g.chan()
      -- The second is queued once the first is on its way into its call.
      for _ = 1, 2 do
        g.parallel(function(c)
          c:send("in the call")
          os.execute("sleep " .. 6 * SCALE)
          print("never: the program ended")
        end, ch)
        print((ch:recv()))
      end
      g.time.sleep(0.2 * SCALE)   -- both inside their calls
      print("main end")
    ]], 30)
    assert.are.equal("in the call\nin the call\nmain end\n", out)
    assert.are.equal(0, code)
    assert.are.equal("goroutines: 2 worker threads still inside a C call at "
                     .. "exit: left running, their states not freed\n", err)
    assert.is_true(os.time() - t0 < 5 * SCALE, "exit took too long")
  end)
end)
