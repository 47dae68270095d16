-- SPEC "Errors", deadlock: main blocking with nothing that could ever wake
-- it raises "all goroutines are asleep - deadlock!", then lists every
-- goroutine with its wait reason and location.  A pending timer is
-- something that can wake it: no false alarm.

local g = require "goroutines"
local h = require "spec.helpers"

local HEADER = "all goroutines are asleep - deadlock!\n\n"

-- Asserts that err lists goroutine `id` waiting for `reason` at path:line.
local function lists(err, id, reason, path, line)
  local entry = ("goroutine %d [%s]:\n\t%s:%d"):format(id, reason, path, line)
  assert.is_true(h.has(err, entry),
                 ("%q not found in:\n%s"):format(entry, err))
end

describe("a deadlock", function()
  it("lists a goroutine parked for a plain coroutine where it resumed it",
     function()
    local out, err, code, path = h.run_script(table.concat({
      'local g = require "goroutines"',                            -- 1
      'local ch = g.chan()',                                       -- 2
      'g.go(function()',                                           -- 3
      '  local gen = coroutine.wrap(function() ch:recv() end)',    -- 4
      '  gen()',                                                   -- 5
      'end)',                                                      -- 6
      'g.chan():recv()',                                           -- 7
    }, "\n"))
    assert.are.equal("", out)
    assert.are.equal(1, code)
    assert.is_true(h.has(err, HEADER), err)
    lists(err, 1, "chan receive", path, 7)
    lists(err, 2, "chan receive", path, 5)
  end)

  it("of main alone ends the program with the message and its location",
     function()
    local out, err, code, path = h.run_script(table.concat({
      'local g = require "goroutines"',
      'print("start")',
      'local ch = g.chan()',
      'ch:recv()',
      'print("unreachable")',
    }, "\n"))
    assert.are.equal("start\n", out)
    assert.are.equal(1, code)
    assert.is_true(h.has(err, HEADER), err)
    lists(err, 1, "chan receive", path, 4)
  end)

  it("lists every goroutine with its reason and location", function()
    local out, err, code, path = h.run_script(table.concat({
      'local g = require "goroutines"',                            -- 1
      'local a, b, c, d, e = g.chan(), g.chan(), g.chan(), g.chan(), g.chan()',
      'local wg, m, o = g.sync.waitgroup(), g.sync.mutex(), g.sync.once()',
      'wg:add(1)',                                                 -- 4
      'm:lock()',                                                  -- 5
      'g.go(function()',                                           -- 6
      '  a:recv()',                                                -- 7
      'end)',                                                      -- 8
      'g.go(function()',                                           -- 9
      '  b:send(1)',                                               -- 10
      'end)',                                                      -- 11
      'g.go(function()',                                           -- 12
      '  g.select { d:on_recv(), e:on_send(1) }',                  -- 13
      'end)',                                                      -- 14
      'g.go(function() g.select {} end)',                          -- 15
      'g.go(function() m:lock() end)',                             -- 16
      'g.go(function()',                                           -- 17
      '  o:call(function() c:recv() end)',                         -- 18
      'end)',                                                      -- 19
      'g.go(function()',                                           -- 20
      '  o:call(function() end)',                                  -- 21
      'end)',                                                      -- 22
      'print("waiting")',                                          -- 23
      'wg:wait()',                                                 -- 24
    }, "\n"))
    assert.are.equal("waiting\n", out)
    assert.are.equal(1, code)
    assert.is_true(h.has(err, HEADER), err)
    lists(err, 1, "sync.WaitGroup.Wait", path, 24)
    lists(err, 2, "chan receive", path, 7)
    lists(err, 3, "chan send", path, 10)
    lists(err, 4, "select", path, 13)
    lists(err, 5, "select (no cases)", path, 15)
    lists(err, 6, "sync.Mutex.Lock", path, 16)
    lists(err, 7, "chan receive", path, 18)
    lists(err, 8, "sync.Once.Do", path, 21)
  end)

  it("is reported when main waits in a select", function()
    local _, err, code, path = h.run_script(table.concat({
      'local g = require "goroutines"',
      'local a, b = g.chan(), g.chan()',
      'g.go(function() a:send(1) end)',
      'a:recv()',
      'g.select { a:on_recv(), b:on_send(2) }',
    }, "\n"))
    assert.are.equal(1, code)
    assert.is_true(h.has(err, HEADER), err)
    lists(err, 1, "select", path, 5)
    -- Goroutine 2 finished: only live goroutines are listed.
    assert.is_false(h.has(err, "goroutine 2 ["), err)
  end)

  it("is reported when main sends with no receiver left", function()
    local _, err, code, path = h.run_script(table.concat({
      'local g = require "goroutines"',
      'local ch = g.chan(1)',
      'ch:send(1)',
      'ch:send(2)',
    }, "\n"))
    assert.are.equal(1, code)
    assert.is_true(h.has(err, HEADER), err)
    lists(err, 1, "chan send", path, 4)
  end)

  it("is reported at once although a stopped timer and an after_func "
     .. "were created", function()
    local _, err, code, path = h.run_script(table.concat({
      'local g = require "goroutines"',
      'local t = g.time.timer(30)',
      'assert(t:stop())',
      'local f = g.time.after_func(30, function() end)',
      'assert(f:stop())',
      'g.chan():recv()',
    }, "\n"), 20)
    assert.are.equal(1, code)
    assert.is_true(h.has(err, HEADER), err)
    lists(err, 1, "chan receive", path, 6)
  end)

  it("can be caught by main with pcall", function()
    local ch = g.chan()
    local line
    local err = h.raises(HEADER, function()
      line = debug.getinfo(1, "l").currentline + 1
      local v = ch:recv()  -- the location reported
      return v
    end)
    local path = debug.getinfo(1, "S").source:sub(2)
    assert.is_true(h.has(err, "goroutine 1 [chan receive]:\n\t"), err)
    lists(err, 1, "chan receive", path, line)
    -- The program goes on, and the channel still works.
    assert.are.equal("default", g.select { ch:on_send(1), default = true })
    g.go(function() ch:send("works") end)
    assert.are.equal("works", ch:recv())
  end)
end)

describe("no deadlock is reported", function()
  it("while a sleeping goroutine can still wake main", function()
    local out, err, code = h.run_script [[
      local g = require "goroutines"
      local ch = g.chan()
      g.go(function() g.time.sleep(0.05); ch:send("woken") end)
      print((ch:recv()))
    ]]
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("woken\n", out)
  end)

  it("while an after_func is pending", function()
    local out, err, code = h.run_script [[
      local g = require "goroutines"
      local ch = g.chan()
      g.time.after_func(0.05, function() ch:send("from after_func") end)
      print((ch:recv()))
    ]]
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("from after_func\n", out)
  end)

  it("while main waits for a timer channel", function()
    local out, err, code = h.run_script [[
      local g = require "goroutines"
      local t = g.time.timer(0.03)
      g.select { t.c:on_recv(function() print("fired") end) }
      print(type(g.time.after(0.02):recv()))
    ]]
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("fired\nnumber\n", out)
  end)

  it("while main sleeps with every goroutine blocked", function()
    local out, err, code = h.run_script [[
      local g = require "goroutines"
      g.go(function() g.chan():recv() end)
      g.time.sleep(0.03)
      print("slept")
    ]]
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("slept\n", out)
  end)

  it("in process: while a goroutine sleeps before sending", function()
    local ch = g.chan()
    g.go(function() g.time.sleep(0.03); ch:send("ok") end)
    assert.are.equal("ok", ch:recv())
  end)
end)
