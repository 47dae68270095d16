-- SPEC "sync, context": g.errgroup, after golang.org/x/sync's
-- errgroup_test.go. A member fails by raising; wait() waits for every
-- member and returns the first failure (a string with the member's
-- traceback, any other value as raised); the group's context is canceled
-- at the first failure, with it as the cause, or when wait returns;
-- set_limit bounds the members at once; try_go does not wait for room;
-- parallel runs a member on a worker.

local g = require "goroutines"
local h = require "spec.helpers"
local errgroup = g.errgroup

-- An error value, like errors.New: compared by identity.
local function newerror(text)
  return setmetatable({ text = text }, { __tostring = function(e)
    return e.text
  end })
end

-- A member that fails with err (nil: succeeds).
local function member(err)
  return function() if err ~= nil then error(err) end end
end

describe("errgroup", function()
  -- TestZeroGroup
  it("returns the first failure from wait, after each member", function()
    local err1, err2 = newerror("errgroup_test: 1"), newerror("errgroup_test: 2")
    local cases = {
      {}, { false }, { err1 }, { err1, false }, { err1, false, err2 },
    }
    for _, errs in ipairs(cases) do
      local grp = errgroup.new()
      local first
      for _, err in ipairs(errs) do
        grp:go(member(err or nil))
        if first == nil and err then first = err end
        assert.are.equal(first, grp:wait())
      end
    end
  end)

  -- TestWithContext and TestCancelCause
  it("cancels its context at the first failure, with it as the cause, or "
     .. "at wait", function()
    local doom = newerror("group_test: doomed")
    for _, tc in ipairs {
      { errs = {}, want = nil }, { errs = { false }, want = nil },
      { errs = { doom }, want = doom }, { errs = { doom, false }, want = doom },
    } do
      local grp, ctx = errgroup.with_context(g.context.background())
      for _, err in ipairs(tc.errs) do assert.is_true(grp:try_go(member(err or nil))) end
      assert.are.equal(tc.want, grp:wait())
      assert.are.equal("context canceled", ctx:err())
      assert.are.equal(tc.want or "context canceled", g.context.cause(ctx))
    end
  end)

  it("cancels the context as soon as a member fails, so the others can stop",
     function()
    local grp, ctx = errgroup.with_context(g.context.background())
    local stopped = 0
    for _ = 1, 3 do
      grp:go(function()
        ctx:done():recv()               -- until the failure cancels ctx
        stopped = stopped + 1
      end)
    end
    grp:go(function() g.time.sleep(0.01); error("disk full", 0) end)
    local err = grp:wait()
    assert.are.equal("disk full\nstack traceback:",
                     err:sub(1, #"disk full\nstack traceback:"))
    assert.are.equal(3, stopped)
  end)

  it("gives a string failure the member's traceback, and passes arguments",
     function()
    local grp = errgroup.new()
    local got = {}
    grp:go(function(a, b) got[#got + 1] = a + b end, 2, 3)
    grp:go(function(name) error("no such user " .. name) end, "ann")
    local err = grp:wait()
    assert.are.same({ 5 }, got)
    assert.is_true(h.has(err, "errgroup_spec.lua"), err)
    assert.is_true(h.has(err, "no such user ann\nstack traceback:"), err)
    local grp2 = errgroup.new()
    grp2:go(function() error(nil) end)   -- not mistaken for success
    assert.are.equal("(error object is a nil value)", grp2:wait())
  end)

  -- TestTryGo
  it("try_go starts members while the limit allows", function()
    local grp = errgroup.new()
    local n = 42
    grp:set_limit(42)
    local ch = g.chan()
    local function fn() ch:send(true) end
    for i = 1, n do
      assert.is_true(grp:try_go(fn), "TryGo should succeed at call " .. i)
    end
    assert.is_false(grp:try_go(fn))
    g.go(function() for _ = 1, n do ch:recv() end end)
    assert.is_nil(grp:wait())
    assert.is_true(grp:try_go(fn))
    g.go(function() ch:recv() end)
    grp:wait()
    grp:set_limit(1)
    assert.is_true(grp:try_go(fn))
    assert.is_false(grp:try_go(fn))
    g.go(function() ch:recv() end)
    grp:wait()
    grp:set_limit(0)
    for _ = 1, 1024 do assert.is_false(grp:try_go(fn)) end
    grp:wait()
  end)

  -- TestGoLimit
  it("runs at most the limit of members at once; go waits for room",
     function()
    local limit = 10
    local grp = errgroup.new()
    grp:set_limit(limit)
    local active, most = 0, 0
    for _ = 0, 1024 do
      grp:go(function()
        active = active + 1
        if active > most then most = active end
        if active > limit then
          error(("saw %d active goroutines; want <= %d"):format(active, limit))
        end
        g.gosched()
        active = active - 1
      end)
    end
    assert.is_nil(grp:wait())
    assert.are.equal(limit, most)
  end)

  it("raises on set_limit while members run, as Go panics", function()
    local grp = errgroup.new()
    grp:set_limit(2)
    local hold = g.chan()
    grp:go(function() hold:recv() end)
    h.raises("errgroup: modify limit while 1 goroutines in the group are "
             .. "still active", grp.set_limit, grp, 5)
    assert.is_true(grp:try_go(function() hold:recv() end))  -- still 2
    assert.is_false(grp:try_go(function() end))
    hold:send(true)
    hold:send(true)
    grp:wait()
    grp:set_limit(-1)                   -- no limit
    for _ = 1, 5 do assert.is_true(grp:try_go(function() end)) end
    grp:wait()
  end)

  it("rejects what is not a function, and counts nothing for it", function()
    local grp = errgroup.new()
    h.raises({ "bad argument #1 to 'go'", "function expected, got nil" },
             grp.go, grp)
    h.raises({ "bad argument #1 to 'try_go'", "function expected, got number" },
             grp.try_go, grp, 1)
    h.raises({ "bad argument #1 to 'parallel'", "function expected, got table" },
             grp.parallel, grp, {})
    h.raises({ "bad argument #1 to 'set_limit'", "integer expected, got float" },
             grp.set_limit, grp, 1.5)
    assert.is_nil(grp:wait())           -- returns: nothing was counted
    h.raises({ "bad argument #1 to 'with_context'",
               "goroutines.context expected, got nil" },
             errgroup.with_context)
  end)
end)

describe("errgroup with parallel members", function()
  it("waits for members on workers and returns the first failure", function()
    local out, err, code = h.run_script([[
      local g = require "goroutines"
      g.gomaxprocs(2)
      local grp, ctx = g.errgroup.with_context(g.context.background())
      local results = g.chan(10)
      for i = 1, 4 do
        grp:parallel(function(i, results) results:send(i * i) end, i, results)
      end
      print(grp:wait(), ctx:err())
      local sum = 0
      for _ = 1, 4 do sum = sum + results:recv() end
      print(sum)
      -- a failing worker member cancels the context of the others
      local grp2, ctx2 = g.errgroup.with_context(g.context.background())
      for _ = 1, 2 do
        grp2:parallel(function(ctx) ctx:done():recv() end, ctx2)
      end
      grp2:parallel(function() error({ code = 7 }) end)
      local e = grp2:wait()
      print(type(e), e.code, g.context.cause(ctx2).code)
      local grp3 = g.errgroup.new()
      grp3:parallel(function() error("worker failed") end)
      local e3 = grp3:wait()
      print(e3:match("worker failed") ~= nil, e3:match("stack traceback") ~= nil)
      print(pcall(grp3.parallel, grp3, function(co) end, coroutine.create(print)))
      print(grp3:wait())
    ]], 30)
    assert.are.equal(0, code, err)
    local lines = {}
    for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.are.equal("nil\tcontext canceled", lines[1])
    assert.are.equal("30", lines[2])
    assert.are.equal("table\t7\t7", lines[3])
    assert.are.equal("true\ttrue", lines[4])
    assert.is_true(h.has(lines[5], "false\t") and
                   h.has(lines[5], "coroutine cannot be copied"), lines[5])
    assert.are.equal("worker failed", lines[6]:match("worker failed"))
  end)

  it("limits members on workers as in the state", function()
    local out, err, code = h.run_script([[
      local g = require "goroutines"
      g.gomaxprocs(2)
      local grp = g.errgroup.new()
      grp:set_limit(2)
      local log = g.chan(100)
      for _ = 1, 8 do
        grp:parallel(function(log)
          log:send(1)
          require("goroutines").time.sleep(0.005)
          log:send(-1)
        end, log)
      end
      print(grp:wait())
      local active, most = 0, 0
      while log:len() > 0 do
        active = active + (log:recv())
        if active > most then most = active end
      end
      print(most <= 2, active)
    ]], 30)
    assert.are.equal(0, code, err)
    assert.are.equal("nil\ntrue\t0\n", out)
  end)
end)
