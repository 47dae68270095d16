-- SPEC "sync, context": with_value and ctx:value (keys as Go compares
-- them: by value for strings, numbers and booleans, by identity for tables,
-- within the state that made them), ctx:deadline(), with_cancel_cause and
-- g.context.cause, after_func and without_cancel, after Go's
-- context_test.go and afterfunc_test.go; values cross states by the
-- transfer rules.

local g = require "goroutines"
local h = require "spec.helpers"
local C = g.context

describe("context values", function()
  -- TestValues
  it("finds the value of the nearest context made with the key", function()
    local k1, k2, k3 = {}, {}, {}       -- distinct keys, like Go's key(1)...
    local function check(c, v1, v2, v3)
      assert.are.same({ v1, v2, v3 }, { c:value(k1), c:value(k2),
                                        c:value(k3) })
    end
    local c0 = C.background()
    check(c0, nil, nil, nil)
    local c1 = C.with_value(C.background(), k1, "c1k1")
    check(c1, "c1k1", nil, nil)
    local c2 = C.with_value(c1, k2, "c2k2")
    check(c2, "c1k1", "c2k2", nil)
    local c3 = C.with_value(c2, k3, "c3k3")
    check(c3, "c1k1", "c2k2", "c3k3")
    local c4 = C.with_value(c3, k1, nil)   -- nil hides c1's value
    check(c4, nil, "c2k2", "c3k3")
    local o1, stop = C.with_cancel(c4)     -- through other kinds of context
    local o2 = C.with_timeout(o1, 3600)
    local o3 = C.with_value(o2, k3, "o3k3")
    check(o2, nil, "c2k2", "c3k3")
    check(o3, nil, "c2k2", "o3k3")
    stop()                                 -- no timer stays pending
  end)

  it("compares keys as Go: strings, numbers and booleans by value, tables "
     .. "by identity", function()
    local key = {}
    local c = C.with_value(C.background(), "user", "ann")
    c = C.with_value(c, 42, "int")
    c = C.with_value(c, 1.5, "float")
    c = C.with_value(c, true, "yes")
    c = C.with_value(c, key, "table")
    assert.are.equal("ann", c:value("user"))
    assert.are.equal("ann", c:value("us" .. "er"))
    assert.are.equal("int", c:value(42))
    assert.are.equal("int", c:value(42.0))   -- Lua's 42 == 42.0
    assert.are.equal("float", c:value(1.5))
    assert.are.equal("yes", c:value(true))
    assert.is_nil(c:value(false))
    assert.are.equal("table", c:value(key))
    assert.is_nil(c:value({}))             -- another table
    assert.is_nil(c:value("42"))
    assert.is_nil(c:value(0 / 0))
    assert.is_nil(c:value(nil))
  end)

  it("gives back the very table it was given, in its state", function()
    local v = { n = 1 }
    local c = C.with_value(C.background(), "cfg", v)
    local child = C.with_cancel(c)
    c = nil                                -- the child keeps it
    h.collect()
    assert.are.equal(v, child:value("cfg"))
    v.n = 2
    assert.are.equal(2, child:value("cfg").n)
  end)

  it("rejects a nil key and what is not a context", function()
    h.raises({ "bad argument #2", "nil key" }, C.with_value,
             C.background(), nil, 1)
    h.raises({ "bad argument #1", "goroutines.context expected, got table" },
             C.with_value, {}, "k", 1)
    h.raises({ "bad argument #1", "goroutines.context expected, got "
               .. "goroutines.cancelfunc" },
             C.without_cancel, select(2, C.with_cancel(C.background())))
    h.raises({ "bad argument #1", "goroutines.context expected, got nil" },
             C.cause, nil)
  end)

  it("reach parallel goroutines as copies; table keys stay in their state",
     function()
    local out, err, code = h.run_script([[
      local g = require "goroutines"
      local C = g.context
      local key, cfg = {}, { name = "svc", ports = { 80, 443 },
                             reply = g.chan(2) }
      local ctx = C.with_value(C.background(), "cfg", cfg)
      ctx = C.with_value(ctx, key, "by table")
      ctx = C.with_value(ctx, 7, "seven")
      local res = g.chan()
      g.parallel(function(ctx, key, res)
        local c = ctx:value("cfg")
        c.reply:send("via value")
        collectgarbage()                -- its copy may go: a new one then
        ctx:value("cfg").reply:send("again")
        res:send({ c.name, c.ports[2], ctx:value(7), ctx:value(key),
                   c == ctx:value("cfg") })
      end, ctx, key, res)
      local r = res:recv()
      print(r[1], r[2], r[3], r[4], r[5])
      print(ctx:value("cfg") == cfg, ctx:value(key))
      print((cfg.reply:recv()), (cfg.reply:recv()))
      local co = coroutine.create(print)
      local local_only = C.with_value(C.background(), "co", co)
      print(local_only:value("co") == co)
      print(pcall(g.parallel, function(c) end, C.with_cancel(local_only)))
    ]], 20)
    assert.are.equal(0, code, err)
    local lines = {}
    for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.are.equal("svc\t443\tseven\tnil\ttrue", lines[1])
    assert.are.equal("true\tby table", lines[2])
    assert.are.equal("via value\tagain", lines[3])
    assert.are.equal("true", lines[4])
    assert.is_true(h.has(lines[5], "false\t") and h.has(lines[5],
      "a context whose value is a thread cannot be copied to another state"),
      lines[5])
  end)
end)

describe("ctx:deadline()", function()
  it("is nil, false without a deadline, and the time, true with one",
     function()
    local bg = C.background()
    assert.are.same({ nil, false }, { bg:deadline() })
    local c, stop = C.with_cancel(bg)
    assert.are.same({ nil, false }, { c:deadline() })
    local t0 = g.time.now()
    local d = C.with_timeout(c, 60)
    local at, ok = d:deadline()
    assert.is_true(ok)
    assert.is_true(at >= t0 + 60 and at <= g.time.now() + 60)
    local at2 = g.time.now() + 30
    local e = C.with_deadline(d, at2)
    assert.are.equal(at2, (e:deadline()))
    stop()                                 -- no timer stays pending
  end)

  it("is inherited, and the parent's when it comes first, as in Go",
     function()
    local d, stop = C.with_timeout(C.background(), 60)
    local at = d:deadline()
    assert.are.equal(at, (C.with_cancel(d):deadline()))
    assert.are.equal(at, (C.with_value(d, "k", 1):deadline()))
    assert.are.equal(at, (C.with_timeout(d, 3600):deadline()))
    assert.are.same({ nil, false }, { C.without_cancel(d):deadline() })
    stop()
  end)
end)

describe("context causes", function()
  local function canceled(c) return c:err() == "context canceled" end

  -- TestCause, case by case
  it("is nil before the cancel, err() after a cancel without cause",
     function()
    assert.is_nil(C.cause(C.background()))
    local c, cancel = C.with_cancel(C.background())
    assert.is_nil(C.cause(c))
    cancel()
    assert.are.equal("context canceled", C.cause(c))
    local d = C.with_timeout(C.background(), 0)
    assert.are.equal("context deadline exceeded", C.cause(d))
    local e, ecancel = C.with_timeout(C.background(), 3600)
    ecancel()
    assert.are.equal("context canceled", C.cause(e))
  end)

  it("is the value given to the cancel of with_cancel_cause", function()
    local why = { msg = "shutting down" }
    local c, cancel = C.with_cancel_cause(C.background())
    cancel(why)
    assert.is_true(canceled(c))
    assert.are.equal(why, C.cause(c))
    cancel("later")                        -- the first cancel wins
    assert.are.equal(why, C.cause(c))
    local n, ncancel = C.with_cancel_cause(C.background())
    ncancel()                              -- no cause: err() is
    assert.are.equal("context canceled", C.cause(n))
  end)

  it("goes to the children canceled with their parent, and stays with a "
     .. "child canceled first", function()
    local p, pcancel = C.with_cancel_cause(C.background())
    local early, ecancel = C.with_cancel_cause(p)
    local late = C.with_value(C.with_cancel(p), "k", 1)
    ecancel("child first")
    pcancel("parent")
    assert.are.equal("child first", C.cause(early))
    assert.are.equal("parent", C.cause(late))
    assert.is_true(canceled(late))
    -- made from a parent canceled already: canceled at once, same cause
    local after, acancel = C.with_cancel_cause(p)
    acancel("too late")
    assert.are.equal("parent", C.cause(after))
    -- a plain cancel of the parent: err() for its children too
    local q, qcancel = C.with_cancel(C.background())
    local qc = C.with_cancel_cause(q)
    qcancel()
    assert.are.equal("context canceled", C.cause(qc))
  end)

  it("crosses states: a worker cancels with a cause that main reads, and "
     .. "reads main's", function()
    local out, err, code = h.run_script([[
      local g = require "goroutines"
      local C = g.context
      local ctx, cancel = C.with_cancel_cause(C.background())
      local seen = g.chan()
      g.parallel(function(cancel) cancel({ code = 7, msg = "worker quit" }) end,
                 cancel)
      ctx:done():recv()
      local why = C.cause(ctx)
      print(why.code, why.msg, C.cause(ctx) == why, ctx:err())
      local c2, cancel2 = C.with_cancel_cause(C.background())
      g.parallel(function(c2, seen)
        c2:done():recv()
        local C = require("goroutines").context
        seen:send(C.cause(c2))
      end, c2, seen)
      cancel2("main's cause")
      print((seen:recv()))
    ]], 20)
    assert.are.equal(0, code, err)
    assert.are.equal("7\tworker quit\ttrue\tcontext canceled\nmain's cause\n",
                     out)
  end)
end)

describe("context.without_cancel", function()
  it("is never canceled, and keeps the parent's values", function()
    local p, cancel = C.with_cancel_cause(C.background())
    p = C.with_value(p, "k", "v")
    local w = C.without_cancel(p)
    local wc, wcancel = C.with_cancel(w)
    cancel("stop")
    assert.are.equal("context canceled", p:err())
    assert.is_nil(w:err())
    assert.is_nil(C.cause(w))
    assert.is_nil(wc:err())
    assert.are.equal("v", w:value("k"))
    assert.are.equal("v", wc:value("k"))
    assert.are.equal("default",
                     g.select { w:done():on_recv(), default = true })
    wcancel()                              -- its own children still cancel
    assert.are.equal("context canceled", wc:err())
  end)
end)

describe("context.after_func", function()
  -- TestAfterFuncCalledAfterCancel
  it("runs f in a goroutine of its own once the context is done", function()
    local ctx, cancel = C.with_cancel(C.background())
    local ran = g.chan(1)
    local me = g.id()
    C.after_func(ctx, function() ran:send(g.id()) end)
    g.gosched()
    assert.are.equal("default", g.select { ran:on_recv(), default = true })
    cancel()
    local id = h.recv_within(ran, 5)
    assert.are_not.equal(me, id)
  end)

  -- TestAfterFuncCalledAfterTimeout, ...AfterFuncCalledImmediately
  it("runs f after a deadline, and at once for a context done already",
     function()
    local ran = g.chan(2)
    C.after_func(C.with_timeout(C.background(), 0.01),
                 function() ran:send("timeout") end)
    local done, cancel = C.with_cancel(C.background())
    cancel()
    C.after_func(done, function() ran:send("immediately") end)
    local a, b = h.recv_within(ran, 5), h.recv_within(ran, 5)
    assert.are.same({ "immediately", "timeout" }, a < b and { a, b }
                                                      or { b, a })
  end)

  -- TestAfterFuncNotCalledAfterStop, TestAfterFuncCalledAsynchronously
  it("stop keeps f from running and says so once; after the cancel it "
     .. "returns false", function()
    local ctx, cancel = C.with_cancel(C.background())
    local ran = g.chan(2)
    local stop = C.after_func(ctx, function() ran:send("stopped one") end)
    assert.is_true(stop())
    assert.is_false(stop())
    local stop2 = C.after_func(ctx, function() ran:send("ran") end)
    cancel()
    assert.is_false(stop2())               -- done already: f runs
    assert.are.equal("ran", h.recv_within(ran, 5))
    g.time.sleep(0.01)
    assert.are.equal("default", g.select { ran:on_recv(), default = true })
  end)

  it("rejects what is not a context or cannot be called", function()
    h.raises({ "bad argument #1 to 'after_func'",
               "goroutines.context expected, got number" },
             C.after_func, 1, print)
    h.raises({ "bad argument #2 to 'after_func'",
               "function expected, got nil" },
             C.after_func, C.background())
  end)
end)
