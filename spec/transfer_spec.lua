-- SPEC "Transfer rules": what g.parallel's function and arguments, and the
-- values sent on a channel shared between states, become on the other side;
-- what cannot cross (an error naming where the value sits, nothing sent);
-- a channel used in one state passes values as they are.

local g = require "goroutines"
local h = require "spec.helpers"

-- Busted runs this file with an environment table of its own. A function
-- whose _ENV is not the globals table takes that table along, copied, when
-- it crosses to another state: run the file with the real globals instead.
local describe, it, assert = describe, it, assert
local _ENV = _G

local CANNOT = " cannot be copied to another state"

local recv_within = h.recv_within

-- Sends v to a new parallel goroutine, which sends back what it received:
-- v crosses twice, over channels.
local function echo(v)
  local inc, out = g.chan(), g.chan()
  g.parallel(function(i, o) o:send((i:recv())) end, inc, out)
  inc:send(v)
  local back, ok = recv_within(out, 10)
  assert(ok == true)
  return back
end

-- Passes the values as g.parallel arguments; the goroutine sends them back
-- packed ({n = count, ...}): they cross as arguments, then over a channel.
local function via_args(...)
  local out = g.chan()
  g.parallel(function(o, ...) o:send(table.pack(...)) end, out, ...)
  return (recv_within(out, 10))
end

-- Runs f(...) in a parallel goroutine and returns what f returned, packed.
local function call_there(f, ...)
  local out = g.chan()
  g.parallel(function(o, f, ...) o:send(table.pack(f(...))) end, out, f, ...)
  return (recv_within(out, 10))
end

describe("values that cross between states", function()
  it("nil, true and false", function()
    local ch = g.chan()
    local inc = g.chan()
    g.parallel(function(i, o)
      for _ = 1, 3 do o:send((i:recv())) end
    end, inc, ch)
    for _, v in ipairs { true, false } do
      inc:send(v)
      assert.are.same({ v, true }, { recv_within(ch, 10) })
    end
    inc:send(nil)
    assert.are.same({ nil, true }, { recv_within(ch, 10) })
    local got = via_args(nil, true, false, nil)
    assert.are.equal(4, got.n)
    assert.are.same({ nil, true, false, nil },
                    { got[1], got[2], got[3], got[4] })
  end)

  it("integers and floats, each keeping its subtype", function()
    for _, v in ipairs { 3, 3.0, -0.0, 0, math.maxinteger, math.mininteger,
                         2^53, 0.1, math.huge, -math.huge } do
      local e = echo(v)
      assert.are.equal(math.type(v), math.type(e))
      assert.are.equal(v, e)
    end
    assert.are.equal(-math.huge, 1 / echo(-0.0))   -- the sign of zero too
    local nan = echo(0 / 0)
    assert.is_true(nan ~= nan)
    local got = via_args(3, 3.0)
    assert.are.equal("integer", math.type(got[1]))
    assert.are.equal("float", math.type(got[2]))
  end)

  it("strings, empty, with embedded zeros, and long", function()
    for _, s in ipairs { "", "a\0b\0\0c\0", ("\0\255x"):rep(1000),
                         ("0123456789"):rep(100000) } do
      local e = echo(s)
      assert.are.equal(#s, #e)
      assert.is_true(s == e)
    end
  end)

  it("nested tables, copied deeply", function()
    local t = { 1, 2.5, "three", { 4, { 5, { six = 6 } } },
                x = { y = { z = "deep" } }, [true] = "t", [1.5] = "f" }
    local e = echo(t)
    assert.are.same(t, e)
    assert.is_false(rawequal(t, e))
    assert.is_false(rawequal(t.x, e.x))
    assert.are.equal("integer", math.type(e[1]))
    assert.are.equal("float", math.type(e[2]))
  end)

  it("tables as keys", function()
    local k = { "key" }
    local e = echo({ [k] = "v", k = k })
    -- The key and the value were the same table, and still are.
    assert.are.equal("v", e[e.k])
    assert.are.same({ "key" }, e.k)
  end)

  it("cycles", function()
    local t = { name = "t" }
    t.self = t
    t.child = { parent = t }
    local e = echo(t)
    assert.is_true(rawequal(e.self, e))
    assert.is_true(rawequal(e.child.parent, e))
    assert.is_false(rawequal(e, t))
    assert.are.equal("t", e.name)
  end)

  it("shared sub-tables stay shared", function()
    local shared = { n = 1 }
    local e = echo({ x = shared, y = shared, list = { shared } })
    assert.is_true(rawequal(e.x, e.y))
    assert.is_true(rawequal(e.x, e.list[1]))
    e.x.n = 2
    assert.are.equal(2, e.y.n)
    assert.are.equal(1, shared.n)
  end)

  it("the same table passed as two arguments stays one table", function()
    local t = {}
    local out = g.chan()
    g.parallel(function(o, a, b) o:send(rawequal(a, b)) end, out, t, t)
    assert.is_true((recv_within(out, 10)))
  end)

  it("metatables, so that a copied object's methods work", function()
    local Point = {}
    Point.__index = Point
    function Point.new(x, y) return setmetatable({ x = x, y = y }, Point) end
    function Point:len2() return self.x * self.x + self.y * self.y end
    Point.__tostring = function(p) return "(" .. p.x .. ", " .. p.y .. ")" end
    local e = echo({ Point.new(3, 4), Point.new(1, 2) })
    assert.are.equal(25, e[1]:len2())
    assert.are.equal("(1, 2)", tostring(e[2]))
    -- One metatable, copied once, shared by both copies.
    assert.is_true(rawequal(getmetatable(e[1]), getmetatable(e[2])))
    assert.is_false(rawequal(getmetatable(e[1]), Point))
    -- Methods work on the other side too.
    local got = call_there(function(p) return p:len2(), tostring(p) end,
                           Point.new(6, 8))
    assert.are.same({ 100, "(6, 8)", n = 2 }, got)
  end)

  it("metatables along an __index chain (inheritance)", function()
    local Base = {}
    Base.__index = Base
    function Base:hello() return "hello from " .. self.name end
    local Derived = setmetatable({}, Base)
    Derived.__index = Derived
    local obj = setmetatable({ name = "obj" }, Derived)
    assert.are.equal("hello from obj", echo(obj):hello())
  end)
end)

describe("functions that cross between states", function()
  it("keep their upvalues: a counter goes on counting", function()
    local n = 0
    local function counter() n = n + 1; return n end
    counter()
    counter()
    local c = echo(counter)
    assert.are.equal(3, c())
    assert.are.equal(4, c())
    assert.are.equal(2, n)   -- the original upvalue is not touched
    assert.are.same({ 3, 4, n = 2 },
                    call_there(function(f) return f(), f() end, counter))
    assert.are.equal(2, n)
  end)

  it("keep sharing an upvalue two of them shared", function()
    local m = 10
    local function inc() m = m + 1 end
    local function get() return m end
    local pair = echo({ inc, get })
    pair[1]()
    pair[1]()
    assert.are.equal(12, pair[2]())
    assert.are.equal(10, m)
    assert.are.same({ 11, n = 1 },
                    call_there(function(i, gt) i(); return gt() end, inc, get))
  end)

  it("keep sharing an upvalue that comes after a table upvalue", function()
    -- In a script: a copy that breaks the sharing may crash the process.
    local out, err, code = h.run_script [[
      local g = require "goroutines"
      g.gomaxprocs(1)   -- one job: no second worker still starting at exit
      local t = { "a table upvalue first" }
      local shared = 0
      local function bump() local _ = t; shared = shared + 1; return shared end
      local function peek() return shared end
      local ch = g.chan()
      g.parallel(function(ch, fs)
        fs[1]()
        fs[1]()
        ch:send(fs[2]())
      end, ch, { bump, peek })
      print(ch:recv(), shared)
    ]]
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("2\t0\n", out)
  end)

  it("use the standard library of the receiving state", function()
    local function f(s)
      return string.rep(s, 3), math.floor(2.7), #table.pack(1, 2)
    end
    assert.are.same({ "ababab", 2, 2, n = 3 }, call_there(f, "ab"))
    local e = echo(f)
    assert.are.same({ "xxx", 2, 2 }, { e("x") })
  end)

  it("may use the goroutines module itself on the other side", function()
    local got = call_there(function()
      local c = g.chan(1)
      local done = g.chan()
      g.go(function() g.time.sleep(0.01); c:send("slept") end)
      g.go(function() done:send(c:recv()) end)
      return done:recv(), g.time.millisecond
    end)
    assert.are.same({ "slept", g.time.millisecond, n = 2 }, got)
  end)

  it("library C functions cross by name and work on the other side",
     function()
    assert.are.same({ "ABC", n = 1 }, call_there(string.upper, "abc"))
    assert.are.same({ "2", n = 1 }, call_there(tostring, 2))
    local got = via_args(string.upper, math.floor, print, g.chan)
    assert.is_true(rawequal(string.upper, got[1]))
    assert.is_true(rawequal(math.floor, got[2]))
    assert.is_true(rawequal(print, got[3]))
    assert.is_true(rawequal(g.chan, got[4]))
  end)

  it("module tables cross by name: the receiver's own", function()
    local out = g.chan()
    g.parallel(function(o, s, m, gg, t)
      o:send({ rawequal(s, string), rawequal(m, math), rawequal(gg, g),
               rawequal(t, g.time), s.rep("z", 2) })
    end, out, string, math, g, g.time)
    assert.are.same({ true, true, true, true, "zz" }, (recv_within(out, 10)))
    assert.is_true(rawequal(string, echo(string)))
    assert.is_true(rawequal(g.time, echo(g.time)))
  end)
end)

describe("runtime objects that cross between states", function()
  it("channels travel by handle, inside tables too, views keeping direction",
     function()
    local ch, res = g.chan(1), g.chan()
    g.parallel(function(r, box)
      box.send_view:send("via send view")
      r:send({ pcall(box.recv_view.send, box.recv_view, 1) })
      r:send(box.send_view == box.again)
    end, res, { send_view = ch:sender(), recv_view = ch:receiver(),
                again = ch:sender() })
    local got = recv_within(res, 10)
    assert.is_false(got[1])
    assert.is_true(h.has(got[2], "send to receive-only channel"), got[2])
    assert.is_true((recv_within(res, 10)))   -- views of one channel: equal
    assert.are.equal("via send view", (recv_within(ch, 10)))
  end)

  it("a channel stays equal (==) to itself there, not to another",
     function()
    local ch, other, res = g.chan(), g.chan(), g.chan()
    g.parallel(function(r, a, b, c)
      r:send({ a == b, a == c, a == a:sender() })
    end, res, ch, ch, other)
    assert.are.same({ true, false, true }, (recv_within(res, 10)))
  end)

  it("sync objects travel by handle inside tables", function()
    local objs = { wg = g.sync.waitgroup(), m = g.sync.mutex() }
    objs.wg:add(1)
    objs.m:lock()
    local res = g.chan()
    g.parallel(function(r, o)
      o.m:lock()     -- held by main until main unlocks
      r:send("locked")
      o.m:unlock()
      o.wg:done()
    end, res, objs)
    g.time.sleep(0.02)
    assert.are.equal("default", g.select { res:on_recv(), default = true })
    objs.m:unlock()
    assert.are.equal("locked", (recv_within(res, 10)))
    objs.wg:wait()
  end)
end)

describe("what cannot cross", function()
  local function noop() end

  it("a coroutine, as an argument", function()
    local co = coroutine.create(noop)
    h.raises("args[1]: a coroutine" .. CANNOT, g.parallel, noop, co)
  end)

  it("other modules' userdata, as an argument", function()
    h.raises("args[1]: userdata" .. CANNOT, g.parallel, noop, io.stdout)
  end)

  it("either, at a nested path that the message names", function()
    h.raises("args[1].conn: userdata" .. CANNOT,
             g.parallel, noop, { conn = io.stdout })
    h.raises("args[2].x.y: userdata" .. CANNOT,
             g.parallel, noop, 1, { x = { y = io.stdout } })
    h.raises("args[1][3]: a coroutine" .. CANNOT,
             g.parallel, noop, { 1, 2, coroutine.create(noop) })
    h.raises('args[1]["not a name"]: userdata' .. CANNOT,
             g.parallel, noop, { ["not a name"] = io.stdout })
    h.raises("args[1](metatable).x: userdata" .. CANNOT,
             g.parallel, noop, setmetatable({}, { x = io.stdout }))
  end)

  it("at a key that is no name, quoted as Lua would: escapes, and long keys cut", function()
    h.raises('args[1]["a\\0b\\"c\\\\d\\n"]: userdata' .. CANNOT,
             g.parallel, noop, { ["a\0b\"c\\d\n"] = io.stdout })
    h.raises('args[1]["\\0011"]: userdata' .. CANNOT,
             g.parallel, noop, { ["\0011"] = io.stdout })
    local ok, err = pcall(g.parallel, noop, { [("k"):rep(100000) .. "!"] = io.stdout })
    assert.is_false(ok)
    assert.matches('args%[1%]%["' .. ("k"):rep(40) .. '"%.%.%.%]: userdata', err)
    assert.is_true(#err < 300)
  end)

  it("a function's upvalue, named", function()
    local sock = io.stdout
    h.raises("f(upvalue sock): userdata" .. CANNOT,
             g.parallel, function() return sock end)
    h.raises("args[1](upvalue sock): userdata" .. CANNOT,
             g.parallel, noop, function() return sock end)
    local co = coroutine.create(noop)
    h.raises("f(upvalue co): a coroutine" .. CANNOT,
             g.parallel, function() return co end)
  end)

  it("a C function that is not a loaded module's", function()
    -- The iterator string.gmatch returns is a C closure of no module.
    h.raises("args[1]: a C function that is not a loaded module's" .. CANNOT,
             g.parallel, noop, string.gmatch("a", "a"))
  end)

  it("a failed g.parallel starts nothing and takes nothing", function()
    local ch = g.chan(2)
    local base = g.numgoroutine()
    local ok = pcall(g.parallel, function(c) c:send("started") end, ch,
                     { conn = io.stdout })
    assert.is_false(ok)
    assert.are.equal(base, g.numgoroutine())
    g.time.sleep(0.02)
    assert.are.equal(0, ch:len())
    assert.are.equal(base, g.numgoroutine())
  end)

  it("a failed g.parallel leaves a channel argument passing by reference",
     function()
    -- The channel's handle never reached another state.
    local ch = g.chan(1)
    assert.is_false(pcall(g.parallel, noop, ch, { conn = io.stdout }))
    local t = {}
    ch:send(t)
    assert.is_true(rawequal(t, ch:recv()))
  end)

  it("a buffered value that cannot cross fails the spawn, losing nothing",
     function()
    local ch = g.chan(2)
    local t, co = {}, coroutine.create(noop)
    ch:send(t)
    ch:send({ co })
    local base = g.numgoroutine()
    local err = h.raises(CANNOT, g.parallel, noop, ch)
    assert.is_true(h.has(err, "a coroutine"), err)
    assert.are.equal(base, g.numgoroutine())
    assert.are.equal(2, ch:len())
    assert.is_true(rawequal(t, ch:recv()))
    assert.is_true(rawequal(co, ch:recv()[1]))
  end)

  it("on a shared channel: the send raises, and nothing is queued", function()
    local ch, res = g.chan(2), g.chan()
    g.parallel(function(c, r)
      r:send("ready")
      r:recv()
      local got = {}
      while c:len() > 0 do got[#got + 1] = c:recv() end
      r:send(got)
    end, ch, res)
    assert.are.equal("ready", (recv_within(res, 10)))
    ch:send("first")
    h.raises("value.conn: userdata" .. CANNOT, ch.send, ch,
             { conn = io.stdout })
    h.raises("value: a coroutine" .. CANNOT, ch.send, ch,
             coroutine.create(noop))
    h.raises("value[1]: a C function that is not a loaded module's" .. CANNOT,
             ch.send, ch, { string.gmatch("a", "a") })
    assert.are.equal(1, ch:len())
    ch:send("second")
    res:send("go")
    assert.are.same({ "first", "second" }, (recv_within(res, 10)))
  end)

  it("in a select send case on a shared channel: raises, nothing sent",
     function()
    local ch = g.chan(1)
    g.parallel(function(c) local _ = c end, ch)
    h.raises("value.conn: userdata" .. CANNOT, g.select,
             { ch:on_send({ conn = io.stdout }), default = true })
    assert.are.equal(0, ch:len())
  end)
end)

describe("a channel's values", function()
  it("pass as they are while the channel is used in one state", function()
    local ch = g.chan(4)
    local t, f, co = {}, function() end, coroutine.create(function() end)
    ch:send(t)
    ch:send(f)
    ch:send(co)
    ch:send(io.stdout)
    assert.is_true(rawequal(t, ch:recv()))
    assert.is_true(rawequal(f, ch:recv()))
    assert.is_true(rawequal(co, ch:recv()))
    assert.is_true(rawequal(io.stdout, ch:recv()))
    local un = g.chan()
    g.go(function() un:send(t) end)
    assert.is_true(rawequal(t, un:recv()))
  end)

  it("are copied, even within main, once its handle crossed as an argument",
     function()
    local ch = g.chan(1)
    local res = g.chan()
    g.parallel(function(c, r) r:send(c:cap()) end, ch, res)
    assert.are.equal(1, (recv_within(res, 10)))
    local t = { x = { 1 } }
    ch:send(t)
    local e = ch:recv()
    assert.is_false(rawequal(t, e))
    assert.are.same(t, e)
    -- Between two goroutines of main, unbuffered, too.
    local un = g.chan()
    g.parallel(function(c) local _ = c end, un)
    g.go(function() un:send(t) end)
    e = un:recv()
    assert.is_false(rawequal(t, e))
    assert.are.same(t, e)
    h.raises("value: a coroutine" .. CANNOT, ch.send, ch,
             coroutine.create(function() end))
  end)

  it("are copied once its handle crossed as an upvalue", function()
    local ch = g.chan(1)
    local done = g.chan()
    g.parallel(function() done:send(ch:cap()) end)
    assert.are.equal(1, (recv_within(done, 10)))
    local t = {}
    ch:send(t)
    assert.is_false(rawequal(t, ch:recv()))
  end)

  it("are copied once its handle crossed inside a value on another channel",
     function()
    local shared, res = g.chan(), g.chan()
    g.parallel(function(s, r) local inner = s:recv(); r:send(inner:cap()) end,
               shared, res)
    local inner = g.chan(3)
    local t = {}
    inner:send(t)
    assert.is_true(rawequal(t, inner:recv()))   -- not crossed yet
    shared:send(inner)
    assert.are.equal(3, (recv_within(res, 10)))
    inner:send(t)
    assert.is_false(rawequal(t, inner:recv()))
  end)

  it("buffered before the handle crossed reach the other state, copied",
     function()
    local ch, res = g.chan(2), g.chan()
    local t = { v = "buffered" }
    ch:send(t)
    ch:send(setmetatable({}, { __index = function() return "meta" end }))
    g.parallel(function(c, r)
      local a, b = c:recv(), c:recv()
      r:send(a.v .. " " .. b.anything)
      c:send(a)
    end, ch, res)
    assert.are.equal("buffered meta", (recv_within(res, 10)))
    local back = recv_within(ch, 10)
    assert.are.same({ v = "buffered" }, back)
    assert.is_false(rawequal(t, back))
  end)
end)

describe("what travels by name", function()
  it("includes the Lua functions of loaded modules: coroutine.wrap as upvalue",
     function()
    -- The module replaces coroutine.wrap with a Lua function; a function
    -- that holds it crosses and finds the receiver's own.
    local wrap = coroutine.wrap
    local got = call_there(function()
      return wrap(function() return "wrapped there" end)()
    end)
    assert.are.equal("wrapped there", got[1])
  end)

  it("includes a module loaded after an earlier g.parallel", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir " .. dir))
    local f = assert(io.open(dir .. "/late_mod.lua", "w"))
    f:write("return { counter = 0 }\n")
    f:close()
    local out, err, code = h.run_script(([[
      package.path = %q .. "/?.lua;" .. package.path
      local g = require "goroutines"
      g.gomaxprocs(1)
      local ch = g.chan()
      g.parallel(function(c) c:send(1) end, ch)
      ch:recv()
      local m = require "late_mod"
      m.counter = 7
      g.parallel(function(m, c)
        c:send(m.counter .. " " .. tostring(rawequal(m, package.loaded.late_mod)))
      end, m, ch)
      print((ch:recv()))
    ]]):format(dir))
    os.remove(dir .. "/late_mod.lua")
    os.remove(dir)
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("0 true\n", out)
  end)
end)

describe("deeply nested values", function()
  -- A chain of n closures, each calling the one before: f() == n.
  local CHAIN = [[
    local function chain(n)
      local f = function() return 0 end
      for _ = 1, n do local h = f; f = function() return h() + 1 end end
      return f
    end
    local function list(n)   -- n tables deep: {next = {next = ... {v = n}}}
      local t = { v = n }
      for _ = 1, n do t = { next = t } end
      return t
    end
    local function depth(t)
      local n = 0
      while t.next do n, t = n + 1, t.next end
      return n, t.v
    end
  ]]

  it("copy up to the depth limit: as argument, upvalue, channel value",
     function()
    local out, err, code = h.run_script(CHAIN .. [[
      local g = require "goroutines"
      local f, t, r, c = chain(900), list(900), g.chan(), g.chan(1)
      g.parallel(function(f, r) r:send(f()) end, f, r)
      print((r:recv()))
      g.parallel(function() r:send(f()) end)
      print((r:recv()))
      g.parallel(function(c, r)
        r:send(c:recv()())
        r:send(string.format("%d %d", depth(c:recv())))
      end, c, r)
      c:send(f)
      print((r:recv()))
      c:send(t)
      print((r:recv()))
      g.parallel(function(t, r) r:send(string.format("%d %d", depth(t))) end,
                 t, r)
      print((r:recv()))
    ]], 60)
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("900\n900\n900\n900 900\n900 900\n", out)
  end)

  it("deeper than the limit: an error that says so, nothing sent", function()
    local out, err, code = h.run_script(CHAIN .. [[
      local g = require "goroutines"
      local f, t, r, c = chain(10000), list(10000), g.chan(), g.chan(1)
      local function noop() end
      g.parallel(function(c, r) r:send(c:recv()) end, c, r)
      local function try(...)
        local ok, e = pcall(...)
        print(ok, (tostring(e):match("nested too deep %(over %d+ levels%)")))
      end
      try(g.parallel, noop, f)
      try(g.parallel, function() return f end)
      try(g.parallel, noop, t)
      try(c.send, c, f)
      try(c.send, c, { t })
      print(c:len())
      c:send({ 1 })
      print(r:recv()[1])
    ]], 60)
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal(("false\tnested too deep (over 1000 levels)\n"):rep(5)
                     .. "0\n1\n", out)
  end)
end)

describe("a send or spawn that fails", function()
  it("leaves later ones working, at any pcall depth", function()
    local c = g.chan(1)
    g.parallel(function(ch) local _ = ch end, c)
    local function fail(n)
      pcall(c.send, c, { io.stdout })
      if n > 0 then return pcall(fail, n - 1) end
    end
    fail(40)
    local function deeper(n)
      if n > 0 then return select(2, pcall(deeper, n - 1)) end
      return pcall(c.send, c, { 1 })
    end
    assert.is_true(deeper(60))
    assert.are.same({ 1 }, c:recv())
  end)

  it("drops the refs it took on the channels it had packed", function()
    local out, err, code = h.run_script [[
      local g = require "goroutines"
      local ch, started = g.chan(1), g.chan()
      -- ch is shared; the worker has started (and made what it makes)
      -- before the count is taken
      g.parallel(function(c, s) s:send(true) end, ch, started)
      started:recv()
      collectgarbage() collectgarbage()
      local base = g._stats().chans
      do
        local inner, other = g.chan(), g.chan(2)
        other:send("buffered")
        print(pcall(ch.send, ch, { inner, other, io.stdout }))
        print(pcall(g.parallel, function() end, inner, other, io.stdout))
      end
      collectgarbage() collectgarbage()
      print(g._stats().chans - base)
    ]]
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.is_true(h.has(out, "\n0\n"), out)
    assert.are.equal(3, select(2, out:gsub("\n", "")))
  end)
end)

describe("modules that travel by name", function()
  local function noop() end
  local NAME = "transfer_spec_preloaded"

  -- A module that only package.preload of this state provides.
  local function preloaded()
    package.preload[NAME] = function() return { workers = 4 } end
    return require(NAME)
  end
  local function forget()
    package.loaded[NAME], package.preload[NAME] = nil, nil
  end

  it("fail the spawn, naming the module, if workers cannot load it",
     function()
    local cfg = preloaded()
    local ok, e1 = pcall(h.raises, "args[1]: module '" .. NAME .. "' cannot "
                         .. "be loaded in a worker state", g.parallel, noop,
                         cfg)
    local ok2, e2 = pcall(h.raises, "args[2].cfg: module '" .. NAME .. "'",
                          g.parallel, noop, 1, { cfg = cfg })
    local ok3, e3 = pcall(h.raises, "f(upvalue cfg): module '" .. NAME .. "'",
                          g.parallel, function() return cfg end)
    forget()
    assert(ok, e1)
    assert(ok2, e2)
    assert(ok3, e3)
  end)

  it("raise at the receiving end of a channel if it cannot load them",
     function()
    local cfg = preloaded()
    local c, r = g.chan(), g.chan()
    g.parallel(function(ch, res)
      res:send({ pcall(ch.recv, ch) })
      res:send({ ch:recv() })
    end, c, r)
    c:send({ cfg = cfg, n = 1 })
    local got = recv_within(r, 10)
    c:send({ n = 2 })
    local after = recv_within(r, 10)
    forget()
    assert.is_false(got[1])
    assert.is_true(h.has(got[2], "module '" .. NAME .. "' cannot be loaded "
                         .. "in this state: module '" .. NAME
                         .. "' not found"), got[2])
    assert.are.same({ { n = 2 }, true }, after)
  end)
end)

describe("a module on the path that fails to load in a worker", function()
  it("fails the goroutine with require's message, naming it", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir " .. dir))
    local f = assert(io.open(dir .. "/only_main.lua", "w"))
    f:write('if not rawget(_G, "IN_MAIN") then error("not here") end\n',
            "return { v = 1 }\n")
    f:close()
    local out, err, code = h.run_script(([[
      package.path = %q .. "/?.lua;" .. package.path
      local g = require "goroutines"
      IN_MAIN = true
      local m = require "only_main"
      local r = g.chan()
      g.parallel(function(m, r) r:send(m.v) end, m, r)
      print(pcall(r.recv, r))
    ]]):format(dir))
    os.remove(dir .. "/only_main.lua")
    os.remove(dir)
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.is_true(h.has(out, "false\tgoroutine "), out)
    assert.is_true(h.has(out, ": module 'only_main' cannot be loaded in this "
                         .. "state: "), out)
    assert.is_true(h.has(out, "only_main.lua:1: not here"), out)
  end)
end)

describe("a channel that holds a handle of itself", function()
  it("crosses, and the handle it holds is the same channel", function()
    local c, r = g.chan(1), g.chan()
    c:send(c)
    g.parallel(function(ch, res)
      local got = ch:recv()
      res:send(got == ch)
      got:send("through the copy")
      res:send(ch:recv())
    end, c, r)
    assert.is_true((recv_within(r, 10)))
    assert.are.equal("through the copy", (recv_within(r, 10)))
  end)

  it("is freed once its last outside handle goes, shared", function()
    local out, err, code = h.run_script [[
      local g = require "goroutines"
      g.gomaxprocs(1)
      local done = g.chan()
      collectgarbage() collectgarbage()
      local base = g._stats().chans
      for _ = 1, 200 do
        local d = g.chan(2)
        g.parallel(function(x) local _ = x end, d)   -- d is shared
        d:send(d)
        d:send({ d, d:receiver() })
      end
      -- One worker, jobs in order: the earlier goroutines have ended.
      g.parallel(function(r) collectgarbage() collectgarbage() r:send(1) end,
                 done)
      done:recv()
      collectgarbage() collectgarbage()
      print(g._stats().chans - base)
    ]]
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("0\n", out)
  end)
end)

describe("random values (spec/fuzz_copy.lua)", function()
  it("come back equal, and those that cannot cross fail and leak nothing",
     function()
    -- A short run of the generator that `lua5.4 spec/fuzz_copy.lua SEED N`
    -- runs for as long as one likes.
    for _, seed in ipairs { 20261201, 7 } do
      local out, err, code = h.run_script(([[
        local fuzz = require "fuzz_copy"
        fuzz.run(%d, 150)
        print("ok")
      ]]):format(seed), 120)
      assert.are.equal("", err)
      assert.are.equal(0, code)
      assert.are.equal("ok\n", out)
    end
  end)
end)

describe("a handle finalized by hand", function()
  it("cannot cross, and the error names its kind", function()
    local ch, wg = g.chan(), g.sync.waitgroup()
    local ctx = g.context.background()
    getmetatable(ch).__gc(ch)
    getmetatable(wg).__gc(wg)
    getmetatable(ctx).__gc(ctx)
    h.raises("args[1]: a finalized goroutines.chan cannot be copied to "
             .. "another state", g.parallel, function() end, ch)
    h.raises("args[1]: a finalized goroutines.waitgroup cannot be copied",
             g.parallel, function() end, wg)
    h.raises("args[1]: a finalized goroutines.context cannot be copied",
             g.parallel, function() end, ctx)
  end)
end)
