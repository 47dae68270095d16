-- SPEC "sync, context": g.context.background, with_cancel, with_timeout,
-- with_deadline; ctx:done(), ctx:err(), and the cancel function.
local g = require "goroutines"
local h = require "spec.helpers"

local recv_within = h.recv_within

-- Whether ctx:done() is closed now (a receive completes at once).
local function isdone(ctx)
  return g.select { ctx:done():on_recv(), default = true } ~= "default"
end

describe("g.context.background", function()
  it("is never canceled: err is nil and done never ready", function()
    local bg = g.context.background()
    assert.is_nil(bg:err())
    assert.is_false(isdone(bg))
  end)
end)

describe("g.context.with_cancel", function()
  it("returns a context and a cancel function that closes done", function()
    local ctx, cancel = g.context.with_cancel(g.context.background())
    assert.is_nil(ctx:err())
    assert.is_false(isdone(ctx))
    cancel()
    assert.are.equal("context canceled", ctx:err())
    assert.are.same({ nil, false }, { recv_within(ctx:done(), 1) })
  end)

  it("wakes every goroutine waiting on done", function()
    local ctx, cancel = g.context.with_cancel(g.context.background())
    local woke = g.chan(3)
    for i = 1, 3 do
      g.go(function() ctx:done():recv(); woke:send(i) end)
    end
    g.gosched()
    cancel()
    local got = {}
    for _ = 1, 3 do got[#got + 1] = recv_within(woke, 1) end
    table.sort(got)
    assert.are.same({ 1, 2, 3 }, got)
  end)

  it("cancel is idempotent and the first reason stays", function()
    local ctx, cancel = g.context.with_timeout(g.context.background(), 10)
    cancel()
    cancel()
    assert.are.equal("context canceled", ctx:err())
  end)

  it("cancels the descendants, not the parent", function()
    local parent, pcancel = g.context.with_cancel(g.context.background())
    local child = g.context.with_cancel(parent)
    local grandchild = g.context.with_timeout(child, 10)
    local other, ocancel = g.context.with_cancel(parent)
    ocancel()
    assert.is_nil(parent:err())
    assert.is_nil(child:err())
    pcancel()
    assert.are.equal("context canceled", child:err())
    assert.are.equal("context canceled", grandchild:err())
    assert.is_true(isdone(grandchild))
    assert.are.equal("context canceled", other:err())
  end)

  it("gives a child of a canceled parent its parent's error at once", function()
    local parent, cancel = g.context.with_cancel(g.context.background())
    cancel()
    local child = g.context.with_cancel(parent)
    assert.are.equal("context canceled", child:err())
    assert.is_true(isdone(child))
  end)

  it("rejects what is not a context", function()
    local err = h.raises("bad argument #1", g.context.with_cancel, {})
    assert.is_true(h.has(err, "goroutines.context expected"), err)
  end)
end)

describe("g.context.with_timeout and with_deadline", function()
  it("expire with 'context deadline exceeded'", function()
    local t0 = g.time.now()   -- before: the deadline counts from the call
    local ctx = g.context.with_timeout(g.context.background(), 0.02)
    assert.are.same({ nil, false }, { recv_within(ctx:done(), 2) })
    assert.is_true(g.time.since(t0) >= 0.015)
    assert.are.equal("context deadline exceeded", ctx:err())
  end)

  it("select between done and a result: the timeout pattern", function()
    local ctx, cancel = g.context.with_timeout(g.context.background(), 0.02)
    local result = g.chan()
    g.go(function() g.time.sleep(0.5); g.select { result:on_send("late"), default = true } end)
    local got = g.select {
      result:on_recv(function(v) return v end),
      ctx:done():on_recv(function() return ctx:err() end),
    }
    cancel()
    assert.are.equal("context deadline exceeded", got)
  end)

  it("with a deadline already past is canceled at once", function()
    local ctx = g.context.with_deadline(g.context.background(),
                                        g.time.now() - 1)
    assert.are.equal("context deadline exceeded", ctx:err())
    assert.is_true(isdone(ctx))
  end)

  it("a child's deadline does not cancel the parent", function()
    local parent, cancel = g.context.with_cancel(g.context.background())
    local child = g.context.with_timeout(parent, 0.01)
    recv_within(child:done(), 2)
    assert.are.equal("context deadline exceeded", child:err())
    assert.is_nil(parent:err())
    cancel()
  end)
end)

-- The race of a cancel with children freed on another thread: a worker
-- makes 2000 children of p per round, keeps some (by handle, by done
-- channel only, through a grandchild, with cancels of its own) and drops
-- the rest, which it frees while main cancels p.
local RACE = [[
local g = require "goroutines"
g.gomaxprocs(2)
local ROUNDS = 60
local parents, made, canceled, report = g.chan(), g.chan(), g.chan(), g.chan()
g.parallel(function(parents, made, canceled, report)
  local g = require "goroutines"
  for p in parents:range() do
    local ctxs, dones, cancels = {}, {}, {}
    for i = 1, 2000 do
      local c, cancel = g.context.with_cancel(p)
      local m = i % 8
      if m == 0 then ctxs[#ctxs + 1] = c
      elseif m == 1 then dones[#dones + 1] = c:done()
      elseif m == 2 then ctxs[#ctxs + 1] = c; cancels[#cancels + 1] = cancel
      elseif m == 3 then ctxs[#ctxs + 1] = g.context.with_cancel(c)
      end
    end
    made:send(true)
    collectgarbage()            -- frees the dropped ones, racing the cancel
    for _, cancel in ipairs(cancels) do cancel() end
    canceled:recv()
    local lost = 0
    for _, c in ipairs(ctxs) do
      if c:err() ~= "context canceled" then lost = lost + 1 end
    end
    for _, d in ipairs(dones) do
      if g.select { d:on_recv(), default = true } == "default" then
        lost = lost + 1
      end
    end
    report:send(lost)
  end
end, parents, made, canceled, report)
local lost = 0
for _ = 1, ROUNDS do
  local p, cancel = g.context.with_cancel(g.context.background())
  parents:send(p)
  made:recv()
  cancel()
  canceled:send(true)
  lost = lost + report:recv()
end
parents:close()
print("rounds " .. ROUNDS .. ", lost " .. lost)
]]

-- Live channels: every context owns one (its done channel), so this
-- counts the contexts not yet freed, in every state.
local function chans()
  h.collect()
  return g._stats().chans
end

describe("context trees across states", function()
  it("cancels every observable child while its siblings are freed",
     function()
    local out, err, code = h.run_script(RACE, 60)
    assert.are.equal(0, code, err)
    assert.are.equal("rounds 60, lost 0\n", out)
  end)

  it("cancels a child observable only through its done channel", function()
    local p, cancel = g.context.with_cancel(g.context.background())
    local done = g.context.with_cancel(p):done()
    local waiting = g.context.with_cancel(p):done()
    local woke = g.chan(1)
    g.go(function() woke:send({ waiting:recv() }) end)
    g.gosched()
    h.collect()   -- the contexts' handles are gone, their channels not
    cancel()
    assert.are.same({ nil, false }, { recv_within(done, 1) })
    assert.are.same({ nil, false }, recv_within(woke, 1))
  end)

  it("cancels a grandchild whose parent has no handle left", function()
    local p, cancel = g.context.with_cancel(g.context.background())
    local grandchild = g.context.with_cancel(g.context.with_cancel(p))
    h.collect()
    cancel()
    assert.are.equal("context canceled", grandchild:err())
  end)

  it("frees children dropped without cancel; the parent lives on",
     function()
    local p, cancel = g.context.with_cancel(g.context.background())
    local before = chans()
    for i = 1, 20000 do
      g.context.with_cancel(p)
      g.context.with_timeout(p, math.huge)
      if i % 1000 == 0 then collectgarbage() end
    end
    local after = chans()
    assert.is_true(after - before <= 10, "contexts kept: " .. after - before)
    cancel()
  end)

  it("frees dropped children whose done channels were dropped later",
     function()
    local p, cancel = g.context.with_cancel(g.context.background())
    local before = chans()
    local recent = {}
    for i = 1, 20000 do
      recent[i % 10] = g.context.with_cancel(p):done()
      if i % 100 == 0 then collectgarbage() end
    end
    local held = chans() - before
    assert.is_true(held <= 200, "contexts kept: " .. held)
    recent = nil
    -- The ten still held are canceled with p, then freed.
    cancel()
    assert.is_true(chans() - before <= 10, "left: " .. chans() - before)
  end)

  it("cancels a deep chain without recursion, and frees it", function()
    local before = chans()
    local root, cancel = g.context.with_cancel(g.context.background())
    local c = root
    for _ = 1, 100000 do c = g.context.with_cancel(c) end
    cancel()
    assert.are.equal("context canceled", c:err())
    c, root, cancel = nil, nil, nil
    assert.is_true(chans() - before <= 10, "left: " .. chans() - before)
  end)
end)

describe("context handles", function()
  it("raise after a manual __gc instead of crashing", function()
    local out, err, code = h.run_script([[
      local g = require "goroutines"
      local function try(f, ...)
        local ok, e = pcall(f, ...)
        print(ok, e)
      end
      local ctx, cancel = g.context.with_cancel(g.context.background())
      local mt, cmt = getmetatable(ctx), getmetatable(cancel)
      mt.__gc(ctx); mt.__gc(ctx)            -- idempotent
      cmt.__gc(cancel)
      try(ctx.err, ctx)
      try(ctx.done, ctx)
      try(g.context.with_cancel, ctx)
      try(g.context.with_timeout, ctx, 1)
      try(cancel)
      print(tostring(ctx), tostring(cancel))
      try(mt.__gc, nil)
      try(cmt.__gc, ctx)
      try(mt.__tostring, nil)
      print("end")
    ]], 20)
    assert.are.equal(0, code, err)
    local lines = {}
    for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
    for i = 1, 4 do
      assert.is_true(h.has(lines[i], "false\t") and h.has(lines[i],
        "attempt to use a finalized goroutines.context"), lines[i])
    end
    assert.is_true(h.has(lines[5],
      "attempt to use a finalized goroutines.cancelfunc"), lines[5])
    assert.are.equal("goroutines.context: finalized\t"
                     .. "goroutines.cancelfunc: finalized", lines[6])
    assert.is_true(h.has(lines[7], "bad argument #1") and
                   h.has(lines[7], "goroutines.context expected, got nil"),
                   lines[7])
    assert.is_true(h.has(lines[8], "goroutines.cancelfunc expected, got "
                                   .. "goroutines.context"), lines[8])
    assert.is_true(h.has(lines[9], "bad argument #1"), lines[9])
    assert.are.equal("end", lines[10])
  end)

  it("name the same C object for a context and its cancel function",
     function()
    local ctx, cancel = g.context.with_cancel(g.context.background())
    local name, addr = tostring(ctx):match("^(goroutines%.context): (.+)$")
    assert.are.equal("goroutines.context", name)
    assert.are.equal("goroutines.cancelfunc: " .. addr, tostring(cancel))
  end)

  it("reject a cancel function called with another self", function()
    local ctx, cancel = g.context.with_cancel(g.context.background())
    local err = h.raises("bad argument #1", getmetatable(cancel).__call, ctx)
    assert.is_true(h.has(err, "goroutines.cancelfunc expected"), err)
    assert.is_nil(ctx:err())
    cancel()
  end)

  it("cancel from a finalizer wakes the goroutines on done", function()
    local ctx, cancel = g.context.with_cancel(g.context.background())
    local woke = g.chan(1)
    g.go(function() ctx:done():recv(); woke:send(ctx:err()) end)
    g.gosched()
    setmetatable({}, { __gc = function() cancel() end })
    h.collect()
    assert.are.equal("context canceled", recv_within(woke, 1))
  end)
end)

describe("with_timeout and with_deadline arguments", function()
  local bg = g.context.background()

  it("reject NaN and what is not a number", function()
    h.raises({ "bad argument #2", "duration is NaN" },
             g.context.with_timeout, bg, 0 / 0)
    h.raises({ "bad argument #2", "deadline is NaN" },
             g.context.with_deadline, bg, 0 / 0)
    h.raises({ "bad argument #2", "number expected, got string" },
             g.context.with_deadline, bg, "soon")
    h.raises({ "bad argument #2", "number expected, got no value" },
             g.context.with_timeout, bg)
    h.raises({ "bad argument #2", "number expected, got table" },
             g.context.with_deadline, bg, {})
  end)

  it("expire at once for a negative duration or a past deadline",
     function()
    assert.are.equal("context deadline exceeded",
                     g.context.with_timeout(bg, -1):err())
    assert.are.equal("context deadline exceeded",
                     g.context.with_timeout(bg, -math.huge):err())
    assert.are.equal("context deadline exceeded",
                     g.context.with_deadline(bg, -math.huge):err())
  end)

  it("never expire for an infinite duration, and hold no timer",
     function()
    local out, err, code = h.run_script([[
      local g = require "goroutines"
      local ctx = g.context.with_timeout(g.context.background(), math.huge)
      local ctx2 = g.context.with_deadline(g.context.background(), math.huge)
      print(ctx:err(), ctx2:err())
      ctx:done():recv()   -- nothing can ever cancel it
    ]], 10)
    assert.are.equal(1, code, err)
    assert.are.equal("nil\tnil\n", out)
    assert.is_true(h.has(err, "all goroutines are asleep - deadlock!"), err)
  end)

  it("a child of a canceled parent gets the parent's error, not a timer",
     function()
    local p, cancel = g.context.with_cancel(bg)
    cancel()
    local c = g.context.with_timeout(p, 0.01)
    assert.are.equal("context canceled", c:err())
    g.time.sleep(0.03)
    assert.are.equal("context canceled", c:err())
  end)
end)

describe("a canceled context with a deadline", function()
  it("drops its timer at once, not when the deadline comes", function()
    h.collect()
    local before = g._stats().chans
    local bg = g.context.background()
    for _ = 1, 2000 do
      local ctx, cancel = g.context.with_timeout(bg, 3600)
      cancel()
      assert.are.equal("context canceled", ctx:err())
    end
    h.collect()
    -- Each context has a done channel; a pending timer would keep it.
    assert.is_true(g._stats().chans - before < 50,
                   (g._stats().chans - before) .. " channels left")
  end)

  it("still expires when it is not canceled", function()
    local ctx = g.context.with_timeout(g.context.background(), 0.02)
    local v, ok = h.recv_within(ctx:done(), 5)
    assert.is_nil(v)
    assert.is_false(ok)
    assert.are.equal("context deadline exceeded", ctx:err())
  end)
end)
