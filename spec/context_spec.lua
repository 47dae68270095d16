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
    local ctx = g.context.with_timeout(g.context.background(), 0.02)
    local t0 = g.time.now()
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
