-- SPEC "I/O that blocks only the goroutine": g.net over loopback TCP and
-- unix sockets: listen, accept, dial, read formats, write, lines, close,
-- close_write, deadlines, addresses, Go's messages, bad input, no fd leak.

local g = require "goroutines"
local h = require "spec.helpers"

local function listen()
  return assert(g.net.listen("tcp", "127.0.0.1:0"))
end

-- A connected pair: the dialed conn and the accepted one.
local function pair(ln)
  ln = ln or listen()
  local got = g.chan(1)
  g.go(function() got:send((assert(ln:accept()))) end)
  local c = assert(g.net.dial("tcp", ln:addr()))
  local s = got:recv()
  return c, s, ln
end

local tmpsock = h.tmpname

describe("g.net listen, accept and dial", function()
  it("listen picks a port and dial reaches it, with both addresses", function()
    local ln = listen()
    assert.matches("^127%.0%.0%.1:%d+$", ln:addr())
    assert.are_not.equal("127.0.0.1:0", ln:addr())
    local c, s = pair(ln)
    assert.are.equal(ln:addr(), c:remote_addr())
    assert.are.equal(ln:addr(), s:local_addr())
    assert.are.equal(c:local_addr(), s:remote_addr())
    c:close(); s:close(); ln:close()
  end)

  it("a goroutine per connection echoes while main dials", function()
    local ln = listen()
    g.go(function()
      for _ = 1, 3 do
        local s = assert(ln:accept())
        g.go(function()
          for line in s:lines() do s:write(line:upper(), "\n") end
          s:close()
        end)
      end
    end)
    local conns = {}
    for i = 1, 3 do conns[i] = assert(g.net.dial("tcp", ln:addr())) end
    for i = 3, 1, -1 do
      assert.are.equal(conns[i], conns[i]:write("conn ", tostring(i), "\n"))
    end
    for i = 1, 3 do
      assert.are.equal("CONN " .. i, conns[i]:read("l"))
      conns[i]:close()
    end
    ln:close()
  end)

  it("resolves localhost through getaddrinfo", function()
    local ln = listen()
    local port = ln:addr():match(":(%d+)$")
    local got = g.chan(1)
    g.go(function() got:send((ln:accept())) end)
    local c = assert(g.net.dial("tcp", "localhost:" .. port))
    assert.are.equal(ln:addr(), c:remote_addr())
    got:recv():close(); c:close(); ln:close()
  end)

  it("tcp4 and tcp6 keep to their family", function()
    local ln = assert(g.net.listen("tcp4", "127.0.0.1:0"))
    local c = assert(g.net.dial("tcp4", ln:addr()))
    c:close(); ln:close()
    local ok, msg = g.net.listen("tcp4", "[::1]:0")
    assert.is_nil(ok)
    assert.matches("^listen tcp4: lookup ::1: ", msg)
  end)

  it("unix sockets: addr is the path, and close removes the file", function()
    local path = tmpsock()
    local ln = assert(g.net.listen("unix", path))
    assert.are.equal(path, ln:addr())
    local got = g.chan(1)
    g.go(function() got:send((ln:accept())) end)
    local c = assert(g.net.dial("unix", path))
    local s = got:recv()
    assert.are.equal(path, c:remote_addr())
    assert.are.equal(path, s:local_addr())
    c:write("over unix\n")
    assert.are.equal("over unix", s:read())
    local ok, msg = g.net.listen("unix", path)
    assert.is_nil(ok)
    assert.are.equal("listen unix " .. path .. ": bind: address already in use", msg)
    c:close(); s:close(); ln:close()
    assert.is_nil(io.open(path))
  end)

  it("Go's dial errors", function()
    assert.are.same({nil, "dial tcp 127.0.0.1:1: connect: connection refused"},
                    {g.net.dial("tcp", "127.0.0.1:1")})
    local path = tmpsock()
    assert.are.same({nil, "dial unix " .. path .. ": connect: no such file or directory"},
                    {g.net.dial("unix", path)})
    local _, msg = g.net.dial("tcp", "nosuchhost.invalid:80")
    assert.are.equal("dial tcp: lookup nosuchhost.invalid: no such host", msg)
  end)

  it("a second listen on a port fails with bind: address already in use", function()
    local ln = listen()
    local ok, msg = g.net.listen("tcp", ln:addr())
    assert.is_nil(ok)
    assert.are.equal("listen tcp " .. ln:addr() .. ": bind: address already in use", msg)
    ln:close()
  end)

  it("a dial timeout in the past fails at once", function()
    local t = g.time.now()
    local ok, msg = g.net.dial("tcp", "127.0.0.1:1", -1)
    assert.is_nil(ok)
    assert.are.equal("dial tcp 127.0.0.1:1: i/o timeout", msg)
    assert.is_true(g.time.since(t) < 1)
  end)

  it("a context bounds a dial as Go's DialContext", function()
    local ctx, cancel = g.context.with_cancel(g.context.background())
    cancel()
    assert.are.same({nil, "dial tcp 127.0.0.1:1: operation was canceled"},
                    {g.net.dial("tcp", "127.0.0.1:1", ctx)})
    local expired = g.context.with_timeout(g.context.background(), -1)
    assert.are.same({nil, "dial tcp 127.0.0.1:1: i/o timeout"},
                    {g.net.dial("tcp", "127.0.0.1:1", expired)})
    -- A live context: the dial completes, and canceling it later (from
    -- another state too) leaves the conn alone.
    local live, cancel2 = g.context.with_cancel(g.context.background())
    local ln = listen()
    local got = g.chan(1)
    g.go(function() got:send((ln:accept())) end)
    local c = assert(g.net.dial("tcp", ln:addr(), live))
    local s = got:recv()
    local done = g.chan()
    g.parallel(function(cancelf, ch) cancelf(); ch:send(true) end, cancel2, done)
    assert.is_true(done:recv())
    assert.are.equal("context canceled", live:err())
    c:write("still open\n")
    assert.are.equal("still open", s:read())
    assert.are.same({nil, "dial tcp 127.0.0.1:1: connect: connection refused"},
                    {g.net.dial("tcp", "127.0.0.1:1",
                                g.context.with_timeout(g.context.background(), 30))})
    c:close(); s:close(); ln:close()
  end)

  it("ports named by a service resolve through getaddrinfo, as Go's LookupPort", function()
    -- A service of /etc/services above 1024 whose port is free here.
    local ln, name, port
    for line in io.lines("/etc/services") do
      local n, p = line:match("^([%a][%w%-]*)%s+(%d+)/tcp")
      if n and tonumber(p) > 1024 then
        ln = g.net.listen("tcp", "127.0.0.1:" .. n)
        if ln then name, port = n, p; break end
      end
    end
    assert.is_truthy(ln, "no free service port in /etc/services")
    assert.are.equal("127.0.0.1:" .. port, ln:addr())
    local got = g.chan(2)
    g.go(function() for _ = 1, 2 do got:send((ln:accept())) end end)
    local c = assert(g.net.dial("tcp", "127.0.0.1:" .. name))
    assert.are.equal("127.0.0.1:" .. port, c:remote_addr())
    local c2 = assert(g.net.dial("tcp4", "localhost:" .. name, 5))
    assert.are.equal("127.0.0.1:" .. port, c2:remote_addr())
    c:close(); c2:close(); got:recv():close(); got:recv():close(); ln:close()
    assert.are.same({nil, "dial tcp4: lookup tcp4/nosuchservice: unknown port"},
                    {g.net.dial("tcp4", "localhost:nosuchservice")})
    assert.are.same({nil, "listen tcp: lookup tcp/nosuchservice: unknown port"},
                    {g.net.listen("tcp", "127.0.0.1:nosuchservice")})
    assert.are.same({nil, "listen udp: lookup udp/http: unknown port"},
                    {g.net.listen_packet("udp", "127.0.0.1:http")})
    -- Port 0 of a name is dialed as such (Go's texts): the first address
    -- the name resolves to refuses it.
    local first = assert(g.net.lookup_host("localhost"))[1]
    if first:find(":") then first = "[" .. first .. "]" end
    assert.are.same({nil, "dial tcp " .. first .. ":0: connect: connection refused"},
                    {g.net.dial("tcp", "localhost:0")})
  end)

  it("a dial's timeout bounds the dial, not the conn's writes", function()
    local ln = listen()
    local got = g.chan(1)
    g.go(function() got:send((ln:accept())) end)
    local c = assert(g.net.dial("tcp", ln:addr(), 0.05))
    local s = got:recv()
    g.time.sleep(0.1)
    assert.are.equal(c, c:write("after the dial's timeout\n"))
    assert.are.equal("after the dial's timeout", s:read())
    c:close(); s:close(); ln:close()
  end)

  it("dial tries each address of a name in turn and reports the first failure", function()
    -- A name with ::1 and 127.0.0.1: localhost if /etc/hosts says so,
    -- else a name of a hosts file of our own, bound over /etc/hosts in a
    -- mount namespace of the child (root, unshare(1)).
    local hosts = io.open("/etc/hosts"):read("a")
    local name, wrap
    if hosts:match("\n%s*::1%s[^\n]*localhost") and
       hosts:match("\n%s*127%.0%.0%.1%s[^\n]*localhost") then
      name, wrap = "localhost", ""
    elseif os.execute("unshare -m true 2>/dev/null") then
      local f = os.tmpname()
      local fh = io.open(f, "w")
      fh:write("::1 gr-dual.test\n127.0.0.1 gr-dual.test\n")
      fh:close()
      name = "gr-dual.test"
      wrap = "unshare -m sh -c 'mount --bind " .. f .. " /etc/hosts && exec \"$0\" \"$@\"' "
      finally(function() os.remove(f) end)
    else
      pending("needs a name with ::1 and 127.0.0.1: /etc/hosts has none and unshare -m fails")
      return
    end
    local script = os.tmpname()
    local fh = io.open(script, "w")
    fh:write([=[
      local g = require "goroutines"
      local name = ...
      print(table.concat(assert(g.net.lookup_host(name)), " "))
      local function serve(ln)
        g.go(function() local c = ln:accept(); if c then c:write("hi\n"); c:close() end end)
        return ln:addr():match(":(%d+)$")
      end
      local v4 = assert(g.net.listen("tcp4", "127.0.0.1:0"))
      local v6 = assert(g.net.listen("tcp6", "[::1]:0"))
      local p4, p6 = serve(v4), serve(v6)
      for _, p in ipairs {p4, p6} do
        local c = assert(g.net.dial("tcp", name .. ":" .. p, 10))
        print(c:remote_addr():gsub(p, "P"), c:read("l"))
        c:close()
      end
      v4:close(); v6:close()
      print((select(2, g.net.dial("tcp", name .. ":" .. p4)):gsub(p4, "P")))
      print((select(2, g.net.dial("tcp4", name .. ":" .. p6, 10)):gsub(p6, "P")))
    ]=])
    fh:close()
    finally(function() os.remove(script) end)
    local out = os.tmpname()
    local cmd = ("LUA_PATH='%s' LUA_CPATH='%s' %stimeout %d %s %s %s > %s 2>&1"):format(
      package.path, package.cpath, wrap, math.ceil(60 * h.TIME_SCALE),
      os.getenv("LUA") or "lua5.4", script, name, out)
    local ok = os.execute(cmd)
    local text = io.open(out):read("a")
    os.remove(out)
    assert.is_true(ok, text)
    assert.are.equal(table.concat({
      "::1 127.0.0.1",
      "127.0.0.1:P\thi",   -- after [::1] refused
      "[::1]:P\thi",       -- the first address answers
      "dial tcp [::1]:P: connect: connection refused",   -- the first failure
      "dial tcp4 127.0.0.1:P: connect: connection refused",
      ""}, "\n"), text)
  end)

  it("lookup_host lists the addresses of a name", function()
    local addrs = assert(g.net.lookup_host("localhost"))
    local found = false
    for _, a in ipairs(addrs) do found = found or a == "127.0.0.1" end
    assert.is_true(found)
    assert.are.same({"10.1.2.3"}, g.net.lookup_host("10.1.2.3"))
    assert.are.same({nil, "lookup nosuchhost.invalid: no such host"},
                    {g.net.lookup_host("nosuchhost.invalid")})
  end)
end)

describe("g.net conn:read", function()
  it("serves Lua's formats from one buffer", function()
    local c, s, ln = pair()
    s:write("one\ntwo\n", "12 0x1F -3.5e2 rest\n", "abcdef")
    s:close_write()
    assert.are.equal("one", c:read())
    assert.are.equal("two\n", c:read("L"))
    assert.are.same({12, 31, -350.0}, {c:read("n", "n", "n")})
    assert.are.equal(" rest", c:read("l"))
    assert.are.equal("abc", c:read(3))
    assert.are.equal("def", c:read(100))
    assert.are.same({nil, "EOF"}, {c:read("l")})
    assert.are.same({nil, "EOF"}, {c:read(1)})
    assert.are.same({nil, "EOF"}, {c:read("n")})
    assert.are.equal("", c:read("a"))
    c:close(); s:close(); ln:close()
  end)

  it("'n' that finds no numeral returns fail, as Lua's", function()
    local c, s, ln = pair()
    s:write("xyz\n")
    assert.is_nil(c:read("n"))
    assert.are.equal("xyz", c:read("l"))
    c:close(); s:close(); ln:close()
  end)

  it("a line split over many writes is read whole", function()
    local c, s, ln = pair()
    g.go(function()
      for i = 1, 50 do s:write(tostring(i % 10)); g.time.sleep(0.0005) end
      s:write("\nlast line without newline")
      s:close()
    end)
    assert.are.equal(("1234567890"):rep(5), c:read("l"))
    assert.are.equal("last line without newline", c:read("l"))
    assert.are.same({nil, "EOF"}, {c:read("l")})
    c:close(); ln:close()
  end)

  it("several formats keep what they read before a failure", function()
    local c, s, ln = pair()
    s:write("only line\n")
    s:close()
    assert.are.same({"only line", nil, "EOF"}, {c:read("l", "l")})
    c:close(); ln:close()
  end)

  it("'a' reads a megabyte to the end of the stream", function()
    local c, s, ln = pair()
    local data = {}
    for i = 1, 16384 do data[i] = string.format("%063d\n", i) end
    data = table.concat(data)
    g.go(function() assert(s:write(data)); s:close() end)
    local got = c:read("a")
    assert.are.equal(#data, #got)
    assert.is_true(got == data)
    c:close(); ln:close()
  end)

  it("lines iterates until EOF, and raises other errors", function()
    local c, s, ln = pair()
    s:write("a\nb\nc\n")
    s:close()
    local got = {}
    for l in c:lines() do got[#got + 1] = l end
    assert.are.same({"a", "b", "c"}, got)
    c:close()
    local ok, err = pcall(function() for _ in c:lines() do end end)
    assert.is_false(ok)
    assert.matches("use of closed network connection", err)
    ln:close()
  end)

  it("blocks only its goroutine", function()
    local c, s, ln = pair()
    local order = {}
    g.go(function()
      local line = c:read("l")
      order[#order + 1] = line
    end)
    g.go(function() order[#order + 1] = "other" end)
    g.time.sleep(0.01)
    assert.are.same({"other"}, order)
    s:write("data\n")
    g.time.sleep(0.01)
    for _ = 1, 100 do if #order == 2 then break end g.time.sleep(0.01) end
    assert.are.same({"other", "data"}, order)
    c:close(); s:close(); ln:close()
  end)
end)

describe("g.net deadlines", function()
  it("a read deadline fails with i/o timeout, and nothing is lost", function()
    local c, s, ln = pair()
    s:write("partial")
    c:set_read_deadline(g.time.now() + 0.05)
    local t = g.time.now()
    local v, msg = c:read("l")
    assert.is_nil(v)
    assert.are.equal("read tcp " .. c:local_addr() .. "->" .. c:remote_addr() ..
                     ": i/o timeout", msg)
    assert.is_true(g.time.since(t) >= 0.045)
    c:set_read_deadline(nil)
    s:write(" line\n")
    assert.are.equal("partial line", c:read("l"))
    c:close(); s:close(); ln:close()
  end)

  it("a deadline in the past fails at once, even with data buffered", function()
    local c, s, ln = pair()
    s:write("x\n")
    assert.are.equal("x", c:read())
    s:write("y\n")
    c:set_deadline(g.time.now() - 1)
    local v, msg = c:read()
    assert.is_nil(v)
    assert.matches("i/o timeout$", msg)
    local w, wmsg = c:write("z")
    assert.is_nil(w)
    assert.matches("^write tcp .*: i/o timeout$", wmsg)
    c:set_deadline(nil)
    assert.are.equal("y", c:read())
    c:close(); s:close(); ln:close()
  end)

  it("moving the deadline wakes a blocked reader at the new time", function()
    local c, s, ln = pair()
    local res = g.chan(1)
    g.go(function() res:send({c:read()}) end)
    g.time.sleep(0.01)
    c:set_read_deadline(g.time.now() + 0.02)
    local r = res:recv()
    assert.is_nil(r[1])
    assert.matches("i/o timeout$", r[2])
    c:close(); s:close(); ln:close()
  end)

  it("a write deadline bounds a write the peer does not read", function()
    local c, s, ln = pair()
    c:set_write_deadline(g.time.now() + 0.1)
    local big = ("x"):rep(1 << 20)
    local ok, msg
    for _ = 1, 64 do
      ok, msg = c:write(big)
      if not ok then break end
    end
    assert.is_nil(ok)
    assert.matches("^write tcp .*: i/o timeout$", msg)
    c:close(); s:close(); ln:close()
  end)
end)

describe("g.net close", function()
  it("closing wakes every goroutine blocked on the conn or listener", function()
    local c, s, ln = pair()
    local res = g.chan(3)
    g.go(function() res:send(select(2, c:read())) end)
    g.go(function() res:send(select(2, c:read("a"))) end)
    g.go(function() res:send(select(2, ln:accept())) end)
    g.time.sleep(0.01)
    c:close()
    ln:close()
    local msgs = {(res:recv()), (res:recv()), (res:recv())}
    table.sort(msgs)
    assert.matches("^accept tcp 127%.0%.0%.1:%d+: use of closed network connection$", msgs[1])
    assert.matches("^read tcp .*: use of closed network connection$", msgs[2])
    assert.matches("^read tcp .*: use of closed network connection$", msgs[3])
    s:close()
  end)

  it("use after close says so, and close twice fails", function()
    local c, s, ln = pair()
    assert.is_true(c:close())
    assert.matches("^close tcp .*: use of closed network connection$",
                   select(2, c:close()))
    assert.matches("^write tcp .*: use of closed network connection$",
                   select(2, c:write("x")))
    assert.matches("^read tcp .*: use of closed network connection$",
                   select(2, c:read(1)))
    assert.is_true(ln:close())
    assert.matches("use of closed network connection$", select(2, ln:close()))
    assert.matches("use of closed network connection$", select(2, ln:accept()))
    s:close()
  end)

  it("the peer reads EOF after close_write and can still answer", function()
    local c, s, ln = pair()
    c:write("question")
    c:close_write()
    assert.are.equal("question", s:read("a"))
    s:write("answer")
    s:close()
    assert.are.equal("answer", c:read("a"))
    c:close(); ln:close()
  end)

  it("writing to a peer that closed fails, without SIGPIPE", function()
    local c, s, ln = pair()
    s:close()
    local ok, msg
    for _ = 1, 100 do
      ok, msg = c:write(("x"):rep(65536))
      if not ok then break end
      g.time.sleep(0.001)
    end
    assert.is_nil(ok)
    assert.matches("^write tcp .*: (%a[%a ]+)$", msg)
    c:close(); ln:close()
  end)

  it("collected or closed handles leave no fd open", function()
    -- In a process of its own: worker threads of other specs open and
    -- close loops of their own meanwhile.
    local out, err, code = h.run_script([[
      local g = require "goroutines"
      -- The fds of this process, listed from inside it (a shell's
      -- listing raced the pipe that popen makes for it).
      local function nfds()
        return #assert(g.os.readdir("/proc/self/fd"))
      end
      local function cycle(close)
        local ln = assert(g.net.listen("tcp", "127.0.0.1:0"))
        local c = assert(g.net.dial("tcp", ln:addr()))
        local s = assert(ln:accept())
        c:write("x")
        assert(s:read(1) == "x")
        local pc = assert(g.net.listen_packet("udp", "127.0.0.1:0"))
        local path = os.tmpname(); os.remove(path)
        local uln = assert(g.net.listen("unix", path))
        local u = assert(g.net.dial("unix", path))
        assert(g.net.dial("tcp", "127.0.0.1:1") == nil)
        if close then
          c:close(); s:close(); ln:close(); pc:close(); uln:close(); u:close()
        end
      end
      cycle(true)   -- the first use opens the loop's own fds
      collectgarbage()
      g.time.sleep(0.01)
      local before = nfds()
      for i = 1, 20 do cycle(i % 2 == 0) end
      collectgarbage()
      collectgarbage()
      g.time.sleep(0.01)
      print(before, nfds())
    ]], 60)
    assert.are.equal("", err)
    assert.are.equal(0, code)
    local before, after = out:match("^(%d+)\t(%d+)\n$")
    assert.is_not_nil(before)
    assert.are.equal(before, after)
  end)
end)

describe("g.net bad input", function()
  it("malformed addresses and unknown networks get Go's messages", function()
    local cases = {
      {"dial", "tcp", "127.0.0.1", "dial tcp: address 127.0.0.1: missing port in address"},
      {"dial", "tcp", "127.0.0.1:70000", "dial tcp: address 70000: invalid port"},
      {"dial", "tcp", "localhost:-1", "dial tcp: address -1: invalid port"},
      {"listen", "tcp", "127.0.0.1:-80", "listen tcp: address -80: invalid port"},
      {"dial", "tcp", "127.0.0.1:+99999", "dial tcp: address +99999: invalid port"},
      {"dial", "tcp", "1:2:3", "dial tcp: address 1:2:3: too many colons in address"},
      {"dial", "tcp", "[::1:80", "dial tcp: address [::1:80: missing ']' in address"},
      {"dial", "tcp", "127.0.0.1:http2x", "dial tcp: lookup tcp/http2x: unknown port"},
      {"dial", "foo", "x:1", "dial foo: unknown network foo"},
      {"listen", "tcp", "127.0.0.1", "listen tcp: address 127.0.0.1: missing port in address"},
      {"listen", "bar", ":0", "listen bar: unknown network bar"},
    }
    for _, c in ipairs(cases) do
      assert.are.same({nil, c[4]}, {g.net[c[1]](c[2], c[3])})
    end
  end)

  it("wrong types raise luaL-style errors", function()
    local c, s, ln = pair()
    assert.has_error(function() g.net.dial(1) end)
    assert.error_matches(function() g.net.dial("tcp", {}) end,
                         "bad argument #2 to 'dial' %(string expected, got table%)")
    assert.error_matches(function() c:read(-1) end, "size must be non%-negative")
    assert.error_matches(function() c:read("x") end, "invalid format")
    assert.error_matches(function() c:read({}) end, "string expected, got table")
    assert.error_matches(function() c:write({}) end, "string expected, got table")
    assert.error_matches(function() c:write("a", true) end, "string expected, got boolean")
    assert.error_matches(function() c:set_deadline("soon") end, "number expected")
    assert.error_matches(function() c.read(ln) end, "goroutines.conn expected")
    assert.error_matches(function() ln.accept(c) end, "goroutines.listener expected")
    assert.are.equal(c, c:write(1, 2.5))   -- numbers are written as Lua writes them
    assert.are.equal("12.5", s:read(4))
    c:close(); s:close(); ln:close()
  end)
end)

describe("g.net and the rest of the runtime", function()
  it("main waiting on accept is no deadlock; a dial from a worker wakes it", function()
    local out, err, code = h.run_script([[
      local g = require "goroutines"
      local ln = assert(g.net.listen("tcp", "127.0.0.1:0"))
      g.go(function() g.chan():recv() end)   -- blocked for good
      g.parallel(function(addr)
        local g = require "goroutines"
        g.time.sleep(0.2)
        assert(g.net.dial("tcp", addr)):write("hi from a worker\n")
      end, ln:addr())
      local c = assert(ln:accept())
      print(c:read())
    ]], 30)
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("hi from a worker\n", out)
  end)

  it("goroutines that all wait on channels still deadlock", function()
    local _, err, code = h.run_script([[
      local g = require "goroutines"
      local ln = assert(g.net.listen("tcp", "127.0.0.1:0"))
      local c = assert(g.net.dial("tcp", ln:addr()))
      local s = assert(ln:accept())
      g.go(function() g.chan():recv() end)
      g.chan():recv()
    ]], 30)
    assert.are.equal(1, code)
    assert.matches("all goroutines are asleep %- deadlock!", err)
  end)

  it("a busy run queue does not starve goroutines blocked in I/O", function()
    local c, s, ln = pair()
    local stop = false
    g.go(function() while not stop do g.gosched() end end)
    local got = g.chan(1)
    g.go(function() got:send(c:read()) end)
    g.go(function() s:write("through\n") end)
    assert.are.equal("through", got:recv())
    stop = true
    c:close(); s:close(); ln:close()
  end)

  it("closing the state with goroutines blocked in I/O is clean", function()
    local out, err, code = h.run_script([[
      local g = require "goroutines"
      local ln = assert(g.net.listen("tcp", "127.0.0.1:0"))
      local path = os.tmpname(); os.remove(path)
      local uln = assert(g.net.listen("unix", path))
      g.go(function() ln:accept() end)
      g.go(function() uln:accept() end)
      local c = assert(g.net.dial("tcp", ln:addr()))
      g.go(function() c:read("a") end)
      local u = assert(g.net.dial("unix", path))
      g.go(function() u:write(("x"):rep(8 << 20)) end)
      g.go(function() g.net.lookup_host("localhost") end)
      g.parallel(function(addr)
        local g = require "goroutines"
        local c = assert(g.net.dial("tcp", addr))
        c:read("l")
      end, ln:addr())
      g.time.sleep(0.1)
      print("end")
    ]], 30)
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("end\n", out)
  end)

  it("a plain coroutine inside a goroutine blocks on I/O too", function()
    local c, s, ln = pair()
    local got = g.chan(1)
    g.go(function()
      local co = coroutine.wrap(function() return c:read() end)
      got:send(co())
    end)
    s:write("via coroutine\n")
    assert.are.equal("via coroutine", got:recv())
    c:close(); s:close(); ln:close()
  end)
end)

describe("g.net packet conns (UDP)", function()
  it("read_from and write_to carry datagrams and the sender's address", function()
    local a = assert(g.net.listen_packet("udp", "127.0.0.1:0"))
    local b = assert(g.net.listen_packet("udp", "127.0.0.1:0"))
    assert.matches("^127%.0%.0%.1:%d+$", a:local_addr())
    g.go(function()
      for _ = 1, 2 do
        local d, from = a:read_from()
        a:write_to(d:upper(), from)
      end
    end)
    assert.are.equal(4, b:write_to("ping", a:local_addr()))
    assert.are.same({"PING", a:local_addr()}, {b:read_from()})
    b:write_to("", a:local_addr())   -- an empty datagram is one too
    assert.are.same({"", a:local_addr()}, {b:read_from()})
    a:close(); b:close()
  end)

  it("deadlines, close and bad addresses", function()
    local pc = assert(g.net.listen_packet("udp4", "127.0.0.1:0"))
    pc:set_read_deadline(g.time.now() + 0.03)
    assert.are.same({nil, "read udp4 " .. pc:local_addr() .. ": i/o timeout"},
                    {pc:read_from()})
    pc:set_deadline(nil)
    assert.are.same({nil, "write udp4: address nope:1: not an IP address"},
                    {pc:write_to("x", "nope:1")})
    assert.are.same({nil, "write udp4: address 127.0.0.1: missing port in address"},
                    {pc:write_to("x", "127.0.0.1")})
    assert.error_matches(function() pc:write_to({}, "127.0.0.1:1") end,
                         "string expected, got table")
    local res = g.chan(1)
    g.go(function() res:send(select(2, pc:read_from())) end)
    g.time.sleep(0.01)
    assert.is_true(pc:close())
    assert.matches("use of closed network connection$", (res:recv()))
    assert.matches("use of closed network connection$", select(2, pc:close()))
    assert.are.same({nil, "listen tcp: unknown network tcp"},
                    {g.net.listen_packet("tcp", "127.0.0.1:0")})
    assert.are.same({nil, "listen udp: unknown network udp"},
                    {g.net.listen("udp", "127.0.0.1:0")})
    local c, s, ln = pair()
    assert.error_matches(function() c.read(pc) end, "goroutines.conn expected")
    assert.is_nil(pc.read)
    c:close(); s:close(); ln:close()
  end)
end)

describe("g.net conns that move to another state", function()
  it("a conn passed to g.parallel moves with its buffered bytes", function()
    local ln = listen()
    local results = g.chan()
    g.go(function()
      for _ = 1, 3 do
        local conn = assert(ln:accept())
        assert.are.equal("x", conn:read(1))   -- the rest is read ahead here
        g.parallel(function(c, res)
          local line = c:read("l")
          c:write("worker got ", line, "\n")
          c:close()
          res:send(line)
        end, conn, results)
        assert.matches("^read tcp .*: use of moved connection$", select(2, conn:read(1)))
        assert.matches("^write tcp .*: use of moved connection$", select(2, conn:write("y")))
        assert.matches("use of moved connection$", select(2, conn:close()))
        assert.matches("^127%.0%.0%.1:%d+$", conn:remote_addr())
      end
    end)
    local got = {}
    for i = 1, 3 do
      local c = assert(g.net.dial("tcp", ln:addr()))
      c:write("xhello ", tostring(i), "\n")
      assert.are.equal("worker got hello " .. i, c:read("l"))
      assert.are.same({nil, "EOF"}, {c:read("l")})
      c:close()
      got[#got + 1] = (results:recv())
    end
    assert.are.same({"hello 1", "hello 2", "hello 3"}, got)
    ln:close()
  end)

  it("a conn sent on a shared channel moves to the receiving state", function()
    local ln = listen()
    local ch, res = g.chan(1), g.chan()
    g.parallel(function(ch, res)
      local c = ch:recv()
      res:send(c:read("l"))
      c:write("bye\n")
      c:close()
    end, ch, res)
    local c = assert(g.net.dial("tcp", ln:addr()))
    local s = assert(ln:accept())
    ch:send(s)
    c:write("via channel\n")
    assert.are.equal("via channel", (res:recv()))
    assert.are.equal("bye", c:read("l"))
    c:close(); ln:close()
  end)

  it("a conn moved right after close_write keeps its writes closed", function()
    local c, s, ln = pair()
    c:write("data")
    assert.is_true(c:close_write())
    local res = g.chan()
    g.parallel(function(c, res) res:send(c:read("a")); c:close() end, c, res)
    s:set_read_deadline(g.time.now() + 20)
    assert.are.equal("data", s:read("a"))   -- and EOF
    s:write("back")
    s:close()
    assert.are.equal("back", res:recv())
    ln:close()
  end)

  it("a conn in use, closed, or twice in one value does not move", function()
    local c, s, ln = pair()
    local f = function() end
    assert.error_matches(function() g.parallel(f, c, c) end,
                         "a connection can move only once at a time")
    assert.are.equal(c, c:write("still mine\n"))   -- nothing moved
    assert.are.equal("still mine", s:read())
    g.go(function() c:read() end)
    g.gosched()
    assert.error_matches(function() g.parallel(f, c) end,
                         "cannot move a connection that goroutines use")
    c:close()
    assert.error_matches(function() g.parallel(f, c) end,
                         "cannot move a closed connection")
    g.go(function() ln:accept() end)
    g.gosched()
    assert.error_matches(function() g.parallel(f, ln) end,
                         "cannot move a listener that goroutines use")
    ln:close()
    assert.error_matches(function() g.parallel(f, ln) end,
                         "cannot move a closed listener")
    local pc = assert(g.net.listen_packet("udp", "127.0.0.1:0"))
    assert.error_matches(function() g.parallel(f, pc, pc) end,
                         "a packet connection can move only once at a time")
    assert.are.equal(1, pc:write_to("x", pc:local_addr()))   -- still here
    assert.are.equal("x", (pc:read_from()))
    pc:close()
    s:close()
  end)

  it("a select that may choose another case does not move a handle", function()
    -- Packing the value moves it: a send case that lost would have taken
    -- the conn or listener from its state all the same.
    local c, s, ln = pair()
    local ch, other = g.chan(), g.chan(1)
    g.parallel(function(ch) end, ch)   -- shares ch; nobody receives
    other:send("ready")
    for _, v in ipairs {c, ln} do
      local what = v == c and "connection" or "listener"
      local msg = "cannot move a " .. what .. " in a select with other cases"
      assert.error_matches(function()
        g.select { ch:on_send(v), default = true }
      end, msg)
      assert.error_matches(function()
        g.select { ch:on_send(v), other:on_recv() }
      end, msg)
    end
    assert.are.equal("ready", other:recv())
    assert.are.equal(c, c:write("still mine\n"))   -- nothing moved
    assert.are.equal("still mine", s:read())
    local c2 = assert(g.net.dial("tcp", ln:addr()))
    local s2 = assert(ln:accept())
    -- Alone, a select's send is a send: it moves.
    local res = g.chan()
    g.parallel(function(ch, res) res:send(ch:recv():read("l")) end, ch, res)
    g.select { ch:on_send(s2) }
    c2:write("moved\n")
    assert.are.equal("moved", (res:recv()))
    assert.matches("use of moved connection$", select(2, s2:read()))
    c:close(); s:close(); c2:close(); ln:close()
  end)

  it("a listener as a context value stays in its state, and works", function()
    -- A context's value is copied to each state that reads it: a move
    -- would close the listener here and open one per reader.
    local ln = listen()
    local ctx = g.context.with_value(g.context.background(), "ln", ln)
    assert.are.equal(ln, ctx:value("ln"))
    local c = assert(g.net.dial("tcp", ln:addr()))
    local s = assert(ln:accept())
    assert.error_matches(function() g.parallel(function() end, ctx) end,
                         "a context whose value is a userdata cannot be "
                         .. "copied to another state")
    c:write("still here\n")
    assert.are.equal("still here", s:read("l"))
    c:close(); s:close(); ln:close()
  end)

  it("a conn dropped in flight and a state closing mid-move leak nothing", function()
    local out, err, code = h.run_script([[
      local g = require "goroutines"
      local ln = assert(g.net.listen("tcp", "127.0.0.1:0"))
      local c = assert(g.net.dial("tcp", ln:addr()))
      local s = assert(ln:accept())
      local ch = g.chan(1)
      local ch3 = g.chan(2)
      g.parallel(function(ch) end, ch)   -- shares ch, never receives
      ch:send(s)                          -- s waits packed in the buffer
      g.parallel(function(ch) end, ch3)
      local ln2 = assert(g.net.listen("tcp", "127.0.0.1:0"))
      local waiting = assert(g.net.dial("tcp", ln2:addr()))
      ch3:send(ln2)                       -- with a connection not accepted
      ch3:send(assert(g.net.listen_packet("udp", "127.0.0.1:0")))
      g.parallel(function(c) c:read("a") end, c)   -- blocked at exit
      g.time.sleep(0.05)
      print("end")
    ]], 30)
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("end\n", out)
  end)

  it("a listener moved to a worker accepts there, with the connections waiting", function()
    local ln = listen()
    local addr = ln:addr()
    -- Dialed before the move: libuv may have accepted one already, the
    -- others wait in the kernel's backlog. All of them move.
    local c1 = assert(g.net.dial("tcp", addr))
    local c2 = assert(g.net.dial("tcp", addr))
    local done = g.chan()
    g.parallel(function(l, d)
      for _ = 1, 3 do
        local c = l:accept()   -- (busted's assert stays in main)
        local line = c:read("l")
        c:write("worker ", line, "\n")
        c:close()
      end
      l:close()
      d:send(true)
    end, ln, done)
    assert.matches("^accept tcp 127%.0%.0%.1:%d+: use of moved connection$",
                   select(2, ln:accept()))
    assert.matches("^close tcp .*: use of moved connection$", select(2, ln:close()))
    assert.are.equal(addr, ln:addr())
    local c3 = assert(g.net.dial("tcp", addr))
    for i, c in ipairs {c1, c2, c3} do
      c:set_deadline(g.time.now() + 20)
      c:write("hello ", i, "\n")
      assert.are.equal("worker hello " .. i, c:read("l"))
      assert.are.same({nil, "EOF"}, {c:read("l")})
      c:close()
    end
    assert.is_true(done:recv())
    assert.matches("connection refused$", select(2, g.net.dial("tcp", addr)))
  end)

  it("a listener moved on before it accepted keeps the connection it held", function()
    local ln = listen()
    local c = assert(g.net.dial("tcp", ln:addr()))
    local there, back = g.chan(1), g.chan(1)
    g.parallel(function(t, b) b:send(t:recv()) end, there, back)
    there:send(ln)                 -- to the worker, which sends it back
    local ln2 = back:recv()
    local s = assert(ln2:accept())
    c:write("round trip\n")
    assert.are.equal("round trip", s:read("l"))
    local c2 = assert(g.net.dial("tcp", ln2:addr()))   -- it listens again
    local s2 = assert(ln2:accept())
    c2:write("again\n")
    assert.are.equal("again", s2:read("l"))
    c:close(); s:close(); c2:close(); s2:close(); ln2:close()
  end)

  it("a unix listener that moved removes its file where it closes", function()
    local path = tmpsock()
    local ln = assert(g.net.listen("unix", path))
    local ch, done = g.chan(1), g.chan()
    g.parallel(function(c, d)
      local l = c:recv()
      local conn = l:accept()
      conn:write(conn:read("l"), " served\n")
      conn:close()
      d:send(l:addr())
      d:recv()
      l:close()
      d:send(true)
    end, ch, done)
    ch:send(ln)
    assert.matches("use of moved connection$", select(2, ln:accept()))
    assert.is_table(g.os.stat(path))   -- the sender's close left it
    local c = assert(g.net.dial("unix", path))
    c:write("moved\n")
    assert.are.equal("moved served", c:read("l"))
    c:close()
    assert.are.equal(path, done:recv())
    done:send(true)
    assert.is_true(done:recv())
    assert.is_nil(g.os.stat(path))
  end)

  it("a packet conn moved keeps working, with the datagrams it had received", function()
    local pc = assert(g.net.listen_packet("udp", "127.0.0.1:0"))
    local peer = assert(g.net.listen_packet("udp", "127.0.0.1:0"))
    local addr = pc:local_addr()
    peer:write_to("one", addr)
    peer:write_to("two", addr)
    -- Lets the loop queue them in pc, which takes them along (had they
    -- stayed in the socket buffer, they would go with the socket).
    g.time.sleep(0.02)
    local ch, res = g.chan(1), g.chan()
    g.parallel(function(c, r)
      local p = c:recv()
      p:set_read_deadline(g.time.now() + 20)
      for _ = 1, 3 do
        local d, from = p:read_from()
        r:send(d)
        p:write_to(d:upper(), from)
      end
      p:close()
    end, ch, res)
    ch:send(pc)
    assert.matches("^read udp 127%.0%.0%.1:%d+: use of moved connection$",
                   select(2, pc:read_from()))
    assert.matches("use of moved connection$",
                   select(2, pc:write_to("x", peer:local_addr())))
    assert.are.equal(addr, pc:local_addr())
    peer:write_to("three", addr)
    assert.are.same({"one", "two", "three"}, {res:recv(), res:recv(), (res:recv())})
    peer:set_read_deadline(g.time.now() + 20)
    for _, want in ipairs {"ONE", "TWO", "THREE"} do
      assert.are.same({want, addr}, {peer:read_from()})
    end
    peer:close()
  end)
end)
