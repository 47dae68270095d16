-- SPEC "I/O that blocks only the goroutine": g.os files and the file system
-- on libuv's thread pool: open modes, Lua's read formats, write, lines,
-- seek, close, read_file, write_file, stat, readdir, remove, rename, mkdir,
-- Go's messages, only the caller waits, exact deadlock detection, no fd
-- leak, bad input.

local g = require "goroutines"
local h = require "spec.helpers"

local tmp, put = h.tmpname, h.put

local function get(path)
  local f = assert(io.open(path, "rb"))
  local data = f:read("a")
  f:close()
  return data
end

describe("g.os files", function()
  it("read_file and write_file round trip, with Go's message for a missing file", function()
    local p = tmp()
    assert.is_true(g.os.write_file(p, "one\ntwo\n"))
    assert.are.equal("one\ntwo\n", get(p))
    assert.are.equal("one\ntwo\n", g.os.read_file(p))
    assert.is_true(g.os.write_file(p, ""))
    assert.are.equal("", g.os.read_file(p))
    os.remove(p)
    local v, msg = g.os.read_file(p)
    assert.is_nil(v)
    assert.are.equal("open " .. p .. ": no such file or directory", msg)
  end)

  it("reads Lua's formats, then nil and EOF at the end, and \"a\" gives \"\"", function()
    local p = tmp()
    put(p, "first\nsecond\n  42 -0x10 3.5e1 tail\nlast")
    local f = assert(g.os.open(p))
    assert.are.equal("first", f:read())
    assert.are.equal("second\n", f:read("L"))
    local a, b, c = f:read("n", "n", "n")
    assert.are.equal(42, a)
    assert.are.equal(-16, b)
    assert.are.equal(35.0, c)
    assert.are.equal(" ta", f:read(3))
    assert.are.equal("il\nlast", f:read("a"))
    assert.are.equal("", f:read("a"))
    local v, msg = f:read("l")
    assert.is_nil(v)
    assert.are.equal("EOF", msg)
    v, msg = f:read(1)
    assert.is_nil(v)
    assert.are.equal("EOF", msg)
    assert.is_nil((f:read("n")))
    assert.is_true(f:close())
    os.remove(p)
  end)

  it("read(n) gives all n bytes unless the file ends, and read(0) tells EOF", function()
    local p = tmp()
    local big = string.rep("0123456789", 20000)   -- more than one chunk
    put(p, big)
    local f = assert(g.os.open(p))
    assert.are.equal("", f:read(0))
    assert.are.equal(big:sub(1, 150000), f:read(150000))
    assert.are.equal(big:sub(150001), f:read(1000000))
    assert.is_nil(f:read(0))
    f:close()
    os.remove(p)
  end)

  it("a number that is not a numeral reads as fail, with the results before it", function()
    local p = tmp()
    put(p, "7 abc")
    local f = assert(g.os.open(p))
    local a, b = f:read("n", "n")
    assert.are.equal(7, a)
    assert.is_nil(b)
    f:close()
    os.remove(p)
  end)

  it("lines() iterates a file, lines longer than the buffer included", function()
    local p = tmp()
    local long = string.rep("x", 200000)
    put(p, "a\n" .. long .. "\n\nz")
    local f = assert(g.os.open(p))
    local got = {}
    for l in f:lines() do got[#got + 1] = l end
    assert.are.same({ "a", long, "", "z" }, got)
    f:close()
    f = assert(g.os.open(p))
    local n = 0
    for l in f:lines("L") do n = n + #l end
    assert.are.equal(#long + 5, n)
    f:close()
    os.remove(p)
  end)

  it("a read(\"l\") costs one read per buffer, not one per byte", function()
    local ok = os.execute("strace -V >/dev/null 2>&1")
    assert.is_true(ok, "this spec needs strace")
    local p = tmp()
    local lines = {}
    for i = 1, 5000 do lines[i] = "line " .. i end
    put(p, table.concat(lines, "\n") .. "\n")   -- about 50 KB
    local out, err, code = h.run_script(([[
      local g = require "goroutines"
      local f = assert(g.os.open(%q))
      local n = 0
      for _ in f:lines() do n = n + 1 end
      f:close()
      print(n)
    ]]):format(p), 60)
    assert.are.equal(0, code, err)
    assert.are.equal("5000\n", out)
    -- The same script under strace: its reads of the file, counted.
    local script = tmp()
    put(script, ([[
      local g = require "goroutines"
      local f = assert(g.os.open(%q))
      for _ in f:lines() do end
      f:close()
    ]]):format(p))
    local log = tmp()
    -- The interpreter of the run (a sanitizer's wrapper included); its exit
    -- status is not ours to judge (LeakSanitizer refuses to run under
    -- ptrace), the log is.
    local cmd = string.format(
      "LUA_PATH=%q LUA_CPATH=%q strace -f -e trace=openat,read,pread64,close -o %s %s %s >/dev/null 2>&1",
      package.path, package.cpath, log, os.getenv("LUA") or "lua5.4", script)
    os.execute(cmd)
    -- The reads of the file's fd, from its open to its close (threads of
    -- the pool included; a call split by strace counts once).
    local nreads, opened, fd, pending = 0, false, nil, nil
    for line in io.lines(log) do
      local pid = line:match("^(%d+)")
      if line:find(p, 1, true) and line:find("openat(", 1, true) then
        fd = line:match("= (%d+)%s*$")
        if fd == nil and line:find("unfinished", 1, true) then pending = pid end
        opened = opened or fd ~= nil
      elseif pending == pid and line:find("openat resumed", 1, true) then
        fd = line:match("= (%d+)%s*$")
        opened = opened or fd ~= nil
        pending = nil
      elseif fd and line:find("close(" .. fd .. ")", 1, true) then
        fd = nil
      elseif fd and (line:find(" read(" .. fd .. ",", 1, true) or
                     line:find(" pread64(" .. fd .. ",", 1, true)) then
        nreads = nreads + 1
      end
    end
    assert.is_true(opened, "the traced script did not open the file")
    -- About 50 KB in chunks of 64 KiB, then the read that sees the end;
    -- one read per byte would be 50000.
    assert.is_true(nreads >= 1 and nreads <= 4, "reads: " .. nreads)
    os.remove(script); os.remove(log); os.remove(p)
  end)

  it("write returns the file and joins its arguments; numbers are written", function()
    local p = tmp()
    local f = assert(g.os.open(p, "w"))
    assert.are.equal(f, f:write("a", 1, "b", 2.5, "\n"))
    assert.are.equal(f, f:write())
    f:close()
    assert.are.equal("a1b2.5\n", get(p))
    os.remove(p)
  end)

  it("opens with io.open's modes", function()
    local p = tmp()
    put(p, "12345")
    local f = assert(g.os.open(p, "rb"))
    local ok, msg = f:write("x")
    assert.is_nil(ok)
    assert.are.equal("write " .. p .. ": bad file descriptor", msg)
    f:close()
    f = assert(g.os.open(p, "a"))
    f:write("67")
    local v
    v, msg = f:read()
    assert.is_nil(v)
    assert.are.equal("read " .. p .. ": bad file descriptor", msg)
    f:close()
    assert.are.equal("1234567", get(p))
    f = assert(g.os.open(p, "r+"))
    assert.are.equal("12", f:read(2))
    f:write("ab")   -- where the reader is, not where the buffer ends
    f:close()
    assert.are.equal("12ab567", get(p))
    f = assert(g.os.open(p, "a+"))
    assert.are.equal("12ab567", f:read("a"))
    f:write("8")
    assert.are.equal(0, f:seek("set"))
    assert.are.equal("12ab5678", f:read("a"))
    f:close()
    f = assert(g.os.open(p, "w+"))
    assert.are.equal("", f:read("a"))
    f:write("new")
    assert.are.equal(0, f:seek("set"))
    assert.are.equal("new", f:read("a"))
    f:close()
    local nope = tmp() .. "/x"
    v, msg = g.os.open(nope, "w")
    assert.is_nil(v)
    assert.are.equal("open " .. nope .. ": no such file or directory", msg)
    os.remove(p)
  end)

  it("seek works as Lua's, from where the reader is", function()
    local p = tmp()
    put(p, "0123456789")
    local f = assert(g.os.open(p))
    assert.are.equal("01", f:read(2))
    assert.are.equal(2, f:seek())
    assert.are.equal(10, f:seek("end"))
    assert.are.equal(4, f:seek("set", 4))
    assert.are.equal("45", f:read(2))
    assert.are.equal(5, f:seek("cur", -1))
    assert.are.equal("56789", f:read("a"))
    local v, msg = f:seek("set", -1)
    assert.is_nil(v)
    assert.are.equal("seek " .. p .. ": invalid argument", msg)
    f:close()
    os.remove(p)
  end)

  it("a closed file fails with file already closed", function()
    local p = tmp()
    put(p, "x\ny\n")
    local f = assert(g.os.open(p))
    local it = f:lines()
    assert.are.equal("x", it())
    assert.is_true(f:close())
    local function closed(op, v, msg)
      assert.is_nil(v)
      assert.are.equal(op .. " " .. p .. ": file already closed", msg)
    end
    closed("close", f:close())
    closed("read", f:read())
    closed("write", f:write("z"))
    closed("seek", f:seek())
    h.raises("read " .. p .. ": file already closed", it)
    assert.matches("closed", tostring(f))
    os.remove(p)
  end)

  it("closing a file wakes the goroutines waiting on it", function()
    local fifo = tmp()
    assert.is_true(os.execute("mkfifo " .. fifo))
    local done = g.chan(2)
    local f
    g.go(function()
      f = assert(g.os.open(fifo, "r+"))   -- a fifo opened r+ never blocks
      done:send("opened")
      done:send({ f:read("l") })         -- waits: nothing is written
    end)
    assert.are.equal("opened", h.recv_within(done, 10))
    g.go(function() done:send({ f:read("l") }) end)   -- waits for the first
    g.gosched()
    f:close()
    local a, b = h.recv_within(done, 10), h.recv_within(done, 10)
    assert.are.same({ nil, "read " .. fifo .. ": file already closed" }, a)
    assert.are.same({ nil, "read " .. fifo .. ": file already closed" }, b)
    -- The read stays in the thread pool until the fifo has data: a writer
    -- ends it, and its record closes the fd.
    local w = assert(io.open(fifo, "w"))
    w:write("bye\n")
    w:close()
    os.remove(fifo)
  end)

  it("__close closes a file at the end of its scope", function()
    local p = tmp()
    put(p, "q")
    local f = assert(g.os.open(p))
    do
      local f2 <close> = f
      assert.are.equal("q", f2:read(1))
    end
    local v, msg = f:read()
    assert.is_nil(v)
    assert.matches("file already closed$", msg)
    os.remove(p)
  end)
end)

describe("g.os file system", function()
  it("stat gives name, size, mode, is_dir and mtime", function()
    local p = tmp()
    put(p, "hello")
    os.execute("chmod 640 " .. p)
    local st = assert(g.os.stat(p))
    assert.are.equal(p:match("[^/]+$"), st.name)
    assert.are.equal(5, st.size)
    assert.are.equal(416, st.mode)   -- 0640
    assert.is_false(st.is_dir)
    assert.is_true(math.abs(st.mtime - os.time()) < 600)
    local d = assert(g.os.stat("/tmp/"))
    assert.is_true(d.is_dir)
    assert.are.equal("tmp", d.name)
    os.remove(p)
    local v, msg = g.os.stat(p)
    assert.is_nil(v)
    assert.are.equal("stat " .. p .. ": no such file or directory", msg)
  end)

  it("mkdir, readdir sorted by name, rename and remove", function()
    local d = tmp()
    assert.is_true(g.os.mkdir(d))
    local v, msg = g.os.mkdir(d)
    assert.is_nil(v)
    assert.are.equal("mkdir " .. d .. ": file exists", msg)
    put(d .. "/b", "")
    put(d .. "/C", "")
    assert.is_true(g.os.mkdir(d .. "/a"))
    assert.are.same({ { name = "C", is_dir = false }, { name = "a", is_dir = true },
                      { name = "b", is_dir = false } }, g.os.readdir(d))
    assert.is_true(g.os.rename(d .. "/b", d .. "/z"))
    v, msg = g.os.rename(d .. "/b", d .. "/y")
    assert.is_nil(v)
    assert.are.equal("rename " .. d .. "/b " .. d .. "/y: no such file or directory", msg)
    v, msg = g.os.remove(d)
    assert.is_nil(v)
    assert.are.equal("remove " .. d .. ": directory not empty", msg)
    assert.is_true(g.os.remove(d .. "/a"))   -- an empty directory
    assert.is_true(g.os.remove(d .. "/z"))
    assert.is_true(g.os.remove(d .. "/C"))
    assert.are.same({}, g.os.readdir(d))
    assert.is_true(g.os.remove(d))
    v, msg = g.os.remove(d)
    assert.is_nil(v)
    assert.are.equal("remove " .. d .. ": no such file or directory", msg)
    v, msg = g.os.readdir(d)
    assert.is_nil(v)
    assert.are.equal("open " .. d .. ": no such file or directory", msg)
  end)

  it("getpid is the process id", function()
    local f = assert(io.open("/proc/self/stat"))
    local pid = f:read("n")
    f:close()
    assert.are.equal(pid, g.os.getpid())
  end)
end)

describe("g.os blocks only the goroutine", function()
  it("other goroutines run while one waits in the thread pool", function()
    local fifo = tmp()
    assert.is_true(os.execute("mkfifo " .. fifo))
    local log = {}
    local got = g.chan(1)
    g.go(function()
      -- open blocks until a writer opens; read blocks until data comes
      local f = assert(g.os.open(fifo))
      log[#log + 1] = "opened"
      got:send(f:read("l"))
      f:close()
    end)
    local ping, pong = g.chan(), g.chan()
    g.go(function()
      for i = 1, 100 do pong:send(ping:recv() + 1) end
    end)
    for i = 1, 100 do
      ping:send(i)
      assert.are.equal(i + 1, pong:recv())
    end
    log[#log + 1] = "ping-pong done"
    local w = assert(g.os.open(fifo, "w"))   -- main blocks in place
    w:write("through the fifo\n")
    w:close()
    assert.are.equal("through the fifo", h.recv_within(got, 10))
    assert.are.same({ "ping-pong done", "opened" }, log)
    os.remove(fifo)
  end)

  it("a goroutine waiting on a file is not a deadlock; waits all done are", function()
    local fifo = tmp()
    assert.is_true(os.execute("mkfifo " .. fifo))
    local out, err, code = h.run_script(([[
      local g = require "goroutines"
      g.go(function()
        g.time.sleep(0.2)
        local w = assert(g.os.open(%q, "w"))
        w:write("late\n")
        w:close()
      end)
      local f = assert(g.os.open(%q))   -- main waits in the thread pool
      print(f:read("l"))
      f:close()
      print(g.os.stat(%q) ~= nil)
      g.chan():recv()                    -- nothing left to wake it
    ]]):format(fifo, fifo, fifo), 60)
    assert.are.equal("late\ntrue\n", out)
    assert.are_not.equal(0, code)
    assert.is_true(h.has(err, "all goroutines are asleep - deadlock!"), err)
    os.remove(fifo)
  end)

  it("runs in parallel goroutines on their own loops", function()
    local p = tmp()
    local done = g.chan()
    g.parallel(function(path, ch)
      local ok, err = g.os.write_file(path, "from a worker")
      ch:send(ok and g.os.read_file(path) or err)
    end, p, done)
    assert.are.equal("from a worker", h.recv_within(done, 30))
    os.remove(p)
  end)
end)

describe("g.os resources", function()
  it("closed and collected files leave no fd open", function()
    local p = tmp()
    put(p, "data\n")
    local out, err, code = h.run_script(([[
      local g = require "goroutines"
      -- Counted in the process: an `ls` run by popen may see the pipe's
      -- end that the parent has not closed yet. The scandir's own fd is
      -- counted every time.
      local function nfds()
        return #assert(g.os.readdir("/proc/self/fd"))
      end
      local path = %q
      local function cycle(close)
        local f = assert(g.os.open(path))
        assert(f:read("l") == "data")
        assert(g.os.open(path .. ".none") == nil)
        assert(g.os.read_file(path) == "data\n")
        local w = assert(g.os.open(path .. ".w", "w"))
        w:write("x")
        if close then f:close(); w:close() end
      end
      cycle(true)
      collectgarbage()
      local before = nfds()
      for i = 1, 20 do cycle(i %% 2 == 0) end
      collectgarbage()
      collectgarbage()
      print(before, nfds())
      os.remove(path .. ".w")
    ]]):format(p), 60)
    assert.are.equal("", err)
    assert.are.equal(0, code)
    local before, after = out:match("^(%d+)\t(%d+)\n$")
    assert.is_not_nil(before)
    assert.are.equal(before, after)
    os.remove(p)
  end)

  it("the state closes cleanly with a request in flight", function()
    local fifo = tmp()
    assert.is_true(os.execute("mkfifo " .. fifo))
    -- The goroutine's open waits for a writer that comes after main ended:
    -- the open completes into its abandoned record, which closes the fd.
    local out, err, code = h.run_script(([[
      local g = require "goroutines"
      g.go(function()
        local f = g.os.open(%q)
        print("never", f)
      end)
      g.gosched()
      os.execute("(sleep 1; echo x > %s) 2>/dev/null &")
      print("main ends")
    ]]):format(fifo, fifo), 60)
    assert.are.equal("main ends\n", out)
    assert.are.equal("", err)
    assert.are.equal(0, code)
    os.remove(fifo)
  end)
end)

describe("g.os bad input", function()
  it("wrong types, bad modes, formats and sizes raise luaL-style errors", function()
    local p = tmp()
    put(p, "x")
    local f = assert(g.os.open(p))
    h.raises("bad argument #1 to 'open' (string expected, got nil)", function() return g.os.open(nil) end)
    h.raises("bad argument #2 to 'open' (invalid mode)", function() return g.os.open(p, "rw") end)
    h.raises("bad argument #2 to 'open' (invalid mode)", function() return g.os.open(p, "x") end)
    h.raises("bad argument #1 to 'open' (path contains a zero byte)", function() return g.os.open("a\0b") end)
    h.raises("bad argument #1 to 'read' (size must be non-negative)", function() return f:read(-1) end)
    h.raises("bad argument #1 to 'read' (invalid format)", function() return f:read("x") end)
    h.raises("(number has no integer representation)", function() return f:read(1.5) end)
    h.raises("bad argument #1 to 'write' (string expected, got table)", function() return f:write({}) end)
    h.raises("bad argument #2 to 'write' (string expected, got boolean)", function() return f:write("ok", true) end)
    h.raises("bad argument #1 to 'seek' (invalid option 'middle')", function() return f:seek("middle") end)
    h.raises("goroutines.file expected, got number", function() return f.read(1) end)
    h.raises("bad argument #1 to 'stat' (string expected, got table)", function() return g.os.stat({}) end)
    h.raises("bad argument #2 to 'rename' (string expected, got no value)", function() return g.os.rename(p) end)
    h.raises("bad argument #2 to 'mkdir' (invalid permissions)", function() return g.os.mkdir(p .. "d", -1) end)
    h.raises("bad argument #1 to 'read_file' (string expected, got nil)", function() return g.os.read_file() end)
    h.raises("bad argument #2 to 'write_file' (string expected, got number)",
             function() return g.os.write_file(p, 1) end)
    assert.are.equal("x", f:read(1))   -- the file still works
    f:close()
    os.remove(p)
  end)
end)
