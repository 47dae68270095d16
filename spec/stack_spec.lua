-- g.stack(): Go's dump of every goroutine of every state, in id order.
local h = require "helpers"

-- The entries of a dump: { {id = n, status = "...", text = "..."}, ... }.
local function entries(dump)
  local list = {}
  for id, status, body in (dump .. "\n\n"):gmatch("goroutine (%d+) %[([^%]]+)%]:\n(.-)\n\n") do
    list[#list + 1] = { id = tonumber(id), status = status, text = body }
  end
  return list
end

local function byid(list)
  local t = {}
  for _, e in ipairs(list) do t[e.id] = e end
  return t
end

describe("g.stack", function()
  it("lists every goroutine of the state with its wait and where it waits, in id order", function()
    local out, err, code = h.run_script [[
      local g = require "goroutines"
      local c = g.chan()
      local mu = g.sync.mutex()
      mu:lock()
      g.go(function() c:recv() end)                    -- line 5
      g.go(function() g.time.sleep(30) end)            -- line 6
      g.go(function() mu:lock() end)                   -- line 7
      g.gosched()
      g.go(function() end)                             -- line 9: not yet run
      io.write(g.stack())                              -- line 10
    ]]
    assert.are.equal(0, code, err)
    local list = entries(out)
    local ids = {}
    for i, e in ipairs(list) do ids[i] = e.id end
    assert.are.same({ 1, 2, 3, 4, 5 }, ids)
    assert.are.equal("running", list[1].status)
    assert.matches("^\t[^\n]*:10: in main chunk$", list[1].text)
    assert.are.equal("chan receive", list[2].status)
    assert.matches("^\t%[C%]: in method 'recv'\n\t[^\n]*:5: in function", list[2].text)
    assert.are.equal("sleep", list[3].status)
    assert.matches(":6: in function", list[3].text)
    assert.are.equal("sync.Mutex.Lock", list[4].status)
    assert.matches(":7: in function", list[4].text)
    assert.are.equal("runnable", list[5].status)
    assert.are.equal("", list[5].text)
  end)

  it("called by a goroutine, shows it running and goroutine 1 where it waits", function()
    local out, err, code = h.run_script [[
      local g = require "goroutines"
      local res = g.chan()
      g.go(function()
        res:send(g.stack())                            -- line 4
      end)
      io.write((res:recv()))                           -- line 6
    ]]
    assert.are.equal(0, code, err)
    local list = byid(entries(out))
    assert.are.equal("chan receive", list[1].status)
    assert.matches("^\t%[C%]: in method 'recv'\n\t[^\n]*:6: in main chunk$", list[1].text)
    assert.are.equal("running", list[2].status)
    assert.matches("^\t[^\n]*:4: in function", list[2].text)
  end)

  it("includes the goroutines of worker states, and works from a worker", function()
    local out, err, code = h.run_script [[
      local g = require "goroutines"
      local never, res = g.chan(), g.chan()
      local wid = g.parallel(function(c) c:recv() end, never)   -- line 3
      g.time.sleep(0.2)
      local did = g.parallel(function(r) r:send(g.stack()) end, res)  -- line 5
      local dump = res:recv()                                   -- line 6
      io.write(wid, " ", did, "\n", dump)
    ]]
    assert.are.equal(0, code, err)
    local wid, did, dump = out:match("^(%d+) (%d+)\n(.*)$")
    local list = byid(entries(dump))
    assert.are.equal("chan receive", list[1].status)
    assert.matches(":6: in main chunk", list[1].text)
    assert.are.equal("chan receive", list[tonumber(wid)].status)
    assert.matches(":3: in function", list[tonumber(wid)].text)
    assert.are.equal("running", list[tonumber(did)].status)
    assert.matches(":5: in function", list[tonumber(did)].text)
  end)

  it("lists a goroutine inside a long C call on another thread without its stack, in bounded time", function()
    local out, err, code = h.run_script [[
      local g = require "goroutines"
      local id = g.parallel(function() os.execute("sleep 1") end)
      g.time.sleep(0.2)
      local t0 = g.time.now()
      local dump = g.stack()
      io.write(id, " ", string.format("%.3f", g.time.now() - t0), "\n", dump)
    ]]
    assert.are.equal(0, code, err)
    local id, took, dump = out:match("^(%d+) ([%d.]+)\n(.*)$")
    assert.is_true(tonumber(took) < 0.5, "the dump took " .. took .. " s")
    local e = byid(entries(dump))[tonumber(id)]
    assert.are.equal("running", e.status)
    assert.are.equal("\tgoroutine running on other thread; stack unavailable", e.text)
  end)

  it("can be called from several states at once, each dump complete", function()
    local out, err, code = h.run_script [[
      local g = require "goroutines"
      local res = g.chan(8)
      for i = 1, 3 do
        g.parallel(function(r)
          local n = 0
          for j = 1, 30 do
            local d = g.stack()
            if d:find("goroutine 1 %[") then n = n + 1 end
          end
          r:send(n)
        end, res)
      end
      local mine = 0
      for j = 1, 30 do
        if g.stack():find("goroutine 1 %[running%]") then mine = mine + 1 end
      end
      local got = { mine }
      for i = 1, 3 do got[#got + 1] = res:recv() end
      io.write(table.concat(got, " "))
    ]]
    assert.are.equal(0, code, err)
    assert.are.equal("30 30 30 30", out)
  end)

  it("works in a finalizer and in a coroutine, and leaves nothing behind", function()
    local out, err, code = h.run_script [[
      local g = require "goroutines"
      local seen
      setmetatable({}, { __gc = function() seen = g.stack() end })
      collectgarbage()
      collectgarbage()
      local co = coroutine.wrap(function() return g.stack() end)
      local inco = co()
      io.write(seen:match("^goroutine 1 %[running%]") and "fin ok " or "fin bad ",
               inco:match("^goroutine 1 %[running%]") and "co ok" or "co bad")
    ]]
    assert.are.equal(0, code, err)
    assert.are.equal("fin ok co ok", out)
  end)
end)

describe("SIGQUIT", function()
  it("prints the dump of every goroutine to stderr and exits with status 2, as Go", function()
    local out, err, code = h.run_script [[
      local g = require "goroutines"
      local pid = io.open("/proc/self/stat"):read("n")
      local c = g.chan()
      g.go(function() c:recv() end)                           -- line 4
      local ready = g.chan()
      local wid = g.parallel(function(ch, ready) ready:close() ch:recv() end, g.chan(), ready)  -- line 6
      io.write("before ", wid, "\n")
      ready:recv()   -- the worker's goroutine runs: it parks at once
      g.time.sleep(0.2 * (tonumber(os.getenv("SPEC_TIME_SCALE")) or 1))
      io.popen("kill -QUIT " .. pid):close()
      g.time.sleep(10)
      print("not reached")
    ]]
    assert.are.equal(2, code, err)
    local wid = assert(out:match("^before (%d+)\n$"), out)
    assert.matches("^SIGQUIT: quit\n\ngoroutine 1 %[", err)
    local list = byid(entries(err:gsub("^SIGQUIT: quit\n\n", "")))
    assert.are.equal("chan receive", list[2].status)
    assert.matches(":4: in function", list[2].text)
    assert.are.equal("chan receive", list[tonumber(wid)].status)
    assert.matches(":6: in function", list[tonumber(wid)].text)
  end)

  it("is left alone by a host that turned it off with gr_set_sigquit(0)", function()
    for mode, want in pairs { off = "default", on = "taken" } do
      local out, err, code = h.run_host("ctest", "sigquit", { mode })
      assert.are.equal(0, code, err)
      assert.are.equal(want .. "\n", out)
    end
  end)
end)
