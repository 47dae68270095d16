-- SPEC "I/O that blocks only the goroutine": g.os.stdin, g.os.stdout and
-- g.os.stderr, whatever fds 0-2 are (a pipe, a file, /dev/null, a
-- terminal): Lua's read formats, lines, write, close; only the reading
-- goroutine waits; main ending ends the process; fds 0-2 stay blocking for
-- Lua's io; no fd leak; Go's messages. Each script runs in a child process
-- whose standard streams the shell sets up (h.run_stdio).

local h = require "spec.helpers"

local tmp, put = h.tmpname, h.put

-- Defines flags(fd), the open flags of a fd of the script, and NONBLOCK.
local FLAGS = [[
  local NONBLOCK = 0x800
  local function flags(fd)
    local f = assert(io.open("/proc/self/fdinfo/" .. fd))
    local s = f:read("a")
    f:close()
    return tonumber(s:match("flags:%s*(%d+)"), 8)
  end
]]

describe("g.os.stdin", function()
  it("reads a pipe line by line while another goroutine runs", function()
    -- The second line comes a second after the first: the ticker must run
    -- in between, while main waits on stdin.
    local out, err, code = h.run_stdio(FLAGS .. [[
      local g = require "goroutines"
      local ticks = 0
      g.go(function()
        while true do ticks = ticks + 1; g.time.sleep(0.01) end
      end)
      local seen = {}
      for line in g.os.stdin:lines() do seen[#seen + 1] = { line, ticks } end
      print(tostring(g.os.stdin):match("^[%w.]+"), #seen)
      print(seen[1][1], seen[2][1], seen[3][1])
      print(seen[2][2] > seen[1][2])
      print(g.os.stdin:read("l"))
      print(flags(0) & NONBLOCK == 0)
    ]], { feed = "(printf 'one\\n'; sleep " .. h.TIME_SCALE
                 .. "; printf 'two\\nthree')" })
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal(
      "goroutines.stdio\t3\none\ttwo\tthree\ntrue\nnil\tEOF\ntrue\n", out)
  end)

  it("reads Lua's formats from a regular file, and seeks", function()
    local p = tmp()
    put(p, "12 3.5 word\nrest\nof it")
    local out, err, code = h.run_stdio([[
      local g = require "goroutines"
      local f = g.os.stdin
      print(tostring(f))
      print(f:read("n", "n", "l"))
      print(f:read(2), f:read("L"))
      print(f:read("a"))
      print(f:read("a") == "", f:read("l"))
      print(f:seek("set", 3), f:read("l"))
      print(f:write("x"))
    ]], { stdin = "<" .. p })
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal(table.concat({
      "goroutines.file (/dev/stdin)",
      "12\t3.5\t word",
      "re\tst\n",
      "of it",
      "true\tnil\tEOF",
      "3\t3.5 word",
      "nil\twrite /dev/stdin: bad file descriptor",
    }, "\n") .. "\n", out)
    os.remove(p)
  end)

  it("reads EOF at once from /dev/null", function()
    local out, err, code = h.run_stdio([[
      local g = require "goroutines"
      print(g.os.stdin:read("l"))
      print(g.os.stdin:read("a") == "", g.os.stdin:read(1))
      local n = 0
      for _ in g.os.stdin:lines() do n = n + 1 end
      print(n)
    ]], { stdin = "</dev/null" })
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("nil\tEOF\ntrue\tnil\tEOF\n0\n", out)
  end)

  it("fails with Go's messages once closed, and a pipe cannot seek", function()
    local out, err, code = h.run_stdio([[
      local g = require "goroutines"
      local f = g.os.stdin
      print(f:seek("set", 0))
      print(f:close())
      print(f:read("l"))
      print(f:close())
      print(f:seek())
      print(g.os.stdin == f)
      print(select(2, pcall(function() return f:read("x") end))
            :match("bad argument.*"))
    ]], { feed = "printf 'x\\n'" })
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal(table.concat({
      "nil\tseek /dev/stdin: illegal seek",
      "true",
      "nil\tread /dev/stdin: file already closed",
      "nil\tclose /dev/stdin: file already closed",
      "nil\tseek /dev/stdin: file already closed",
      "true",
      "bad argument #1 to 'read' (invalid format)",
    }, "\n") .. "\n", out)
  end)

  it("wakes a reader blocked on it when another goroutine closes it", function()
    local out, err, code = h.run_stdio([[
      local g = require "goroutines"
      local got = g.chan(1)
      g.go(function() got:send({ g.os.stdin:read("l") }) end)
      g.time.sleep(0.1)
      g.os.stdin:close()
      local r = got:recv()
      print(r[1], r[2])
    ]], { feed = "sleep 3" })
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("nil\tread /dev/stdin: file already closed\n", out)
  end)

  it("a read deadline on a pipe fails with i/o timeout, and reads go on", function()
    local out, err, code = h.run_stdio([[
      local g = require "goroutines"
      local f = g.os.stdin
      print(f:set_read_deadline(g.time.now() + 0.1))
      print(f:read("l"))
      print(f:set_read_deadline(nil))
      print(f:read("l"))
    ]], { feed = "(sleep " .. h.TIME_SCALE .. "; echo late)" })
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("true\nnil\tread /dev/stdin: i/o timeout\ntrue\nlate\n", out)
  end)

  it("does not keep the process alive when main ends during a read", function()
    -- The feed holds the pipe open for 5 s without writing: main returns
    -- after 0.1 s while a goroutine waits on stdin, and the process ends.
    local hold = 5 * h.TIME_SCALE
    local out, err, code, secs = h.run_stdio([[
      local g = require "goroutines"
      g.go(function() g.os.stdin:read("l"); print("read returned") end)
      g.go(function() g.os.stdin:read("a") end)
      g.time.sleep(0.1)
      print("main returns")
    ]], { feed = "sleep " .. hold })
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("main returns\n", out)
    assert.is_true(secs < hold - 1, "the script ran " .. secs .. " s")
  end)

  it("main waiting on stdin is not a deadlock", function()
    local out, err, code = h.run_stdio([[
      local g = require "goroutines"
      print(g.os.stdin:read("l"))
    ]], { feed = "(sleep 0.3; echo late)" })
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("late\n", out)
  end)

  it("belongs to the main state: a parallel goroutine gets an error", function()
    local out, err, code = h.run_stdio([[
      local g = require "goroutines"
      local ch = g.chan()
      g.parallel(function(c)
        for _, name in ipairs { "stdin", "stdout", "stderr" } do
          c:send(select(2, pcall(function() return g.os[name] end)))
        end
      end, ch)
      for i = 1, 3 do print(ch:recv()) end
      print(g.os.stdin:read("l"))
    ]], { feed = "echo main" })
    assert.are.equal("", err)
    assert.are.equal(0, code)
    local lines = {}
    for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.are.equal(4, #lines)
    for i, name in ipairs { "stdin", "stdout", "stderr" } do
      assert.is_true(h.has(lines[i], "g.os." .. name .. " belongs to the main state"),
                     lines[i])
    end
    assert.are.equal("main", lines[4])
  end)
end)

describe("g.os.stdout and g.os.stderr", function()
  it("keep program order with print and io.write, into a pipe", function()
    local out, err, code = h.run_stdio(FLAGS .. [[
      local g = require "goroutines"
      print("print 1")
      assert(g.os.stdout:write("write ", 1, "\n") == g.os.stdout)
      io.write("io.write 2\n")
      g.os.stdout:write("write 2\n")
      g.os.stderr:write("to stderr\n")
      print(tostring(g.os.stdout):match("^[%w.]+"), flags(1) & NONBLOCK == 0)
      print("last")
    ]], { stdout_pipe = true })
    assert.are.equal("to stderr\n", err)
    assert.are.equal(0, code)
    assert.are.equal("print 1\nwrite 1\nio.write 2\nwrite 2\n" ..
                     "goroutines.stdio\ttrue\nlast\n", out)
  end)

  it("write into a regular file, as a file of g.os", function()
    local out, err, code = h.run_stdio([[
      local g = require "goroutines"
      print("print")
      g.os.stdout:write("write\n")
      print(tostring(g.os.stdout))
      print(g.os.stdout:read("l"))
    ]], {})
    assert.are.equal("", err)
    assert.are.equal(0, code)
    assert.are.equal("print\nwrite\ngoroutines.file (/dev/stdout)\n" ..
                     "nil\tread /dev/stdout: bad file descriptor\n", out)
  end)

  it("a pipe whose reader left gives broken pipe, not SIGPIPE", function()
    -- `true` exits at once: every write then fails, and the script goes on.
    local out, err, code = h.run_stdio([[
      local g = require "goroutines"
      g.time.sleep(0.2)
      local ok, msg
      for i = 1, 100 do
        ok, msg = g.os.stdout:write(("x"):rep(4096))
        if not ok then break end
      end
      io.stderr:write(tostring(msg), "\n")
      print("print after")   -- fails too, quietly: SIGPIPE is ignored
      io.stderr:write("still here\n")
    ]], { stdout_to = "true" })
    assert.are.equal("write /dev/stdout: broken pipe\nstill here\n", err)
    assert.are.equal(0, code)
    assert.are.equal("", out)
  end)

  it("a write waits for a slow reader and lets the other goroutines run", function()
    -- 1 MiB into a pipe that the reader drains after 1 s: the write parks.
    local out, err, code = h.run_stdio([[
      local g = require "goroutines"
      local ticks = 0
      g.go(function()
        while true do ticks = ticks + 1; g.time.sleep(0.01) end
      end)
      g.time.sleep(0.05)
      local before = ticks
      assert(g.os.stdout:write(("y"):rep(1 << 20)))
      io.stderr:write(tostring(ticks - before > 10), "\n")
    ]], { stdout_to = "(sleep " .. h.TIME_SCALE .. "; wc -c)" })
    assert.are.equal("true\n", err)
    assert.are.equal(0, code)
    assert.are.equal("1048576", out:match("%d+"))
  end)
end)

describe("g.os standard streams and fds", function()
  it("leave no fd open once closed, and fds 0-2 as they were", function()
    local out, err, code = h.run_stdio(FLAGS .. [[
      local g = require "goroutines"
      local function nfds() return #assert(g.os.readdir("/proc/self/fd")) end
      -- The loop's first stream handle reserves an fd for good (libuv's
      -- fd for running out of fds): a listener takes it first.
      assert(g.net.listen("tcp", "127.0.0.1:0")):close()
      local before = nfds()
      local f0, f1, f2 = flags(0), flags(1), flags(2)
      assert(g.os.stdin:read("l") == "in")
      g.os.stdout:write("out\n")
      g.os.stderr:write("err\n")
      local during = nfds()
      g.os.stdin:close(); g.os.stdout:close(); g.os.stderr:close()
      print(during > before, nfds() == before)
      print(flags(0) == f0, flags(1) == f1, flags(2) == f2)
    ]], { feed = "echo in", stdout_pipe = true })
    assert.are.equal("err\n", err)
    assert.are.equal(0, code)
    assert.are.equal("out\ntrue\ttrue\ntrue\ttrue\ttrue\n", out)
  end)

  it("fds 0-2 closed at start become /dev/null, as Go's runtime makes them", function()
    -- Else the loop takes fd 0 for its epoll fd, and libuv aborts at exit.
    local out, err, code = h.run_stdio([[
      local g = require "goroutines"
      g.time.sleep(0.01)
      io.stderr:write(tostring(g.os.stdin:read("l")), " ", tostring(io.read("l")), "\n")
    ]], { stdin = "<&-" })
    assert.are.equal("nil nil\n", err)
    assert.are.equal(0, code)
    assert.are.equal("", out)
  end)

  it("a socket as stdin is read, non-blocking only while it is open", function()
    if not os.execute("command -v python3 >/dev/null 2>&1") then
      pending("python3 is not installed (it makes the socket pair)")
      return
    end
    local p = tmp()
    put(p, FLAGS .. [[
      local g = require "goroutines"
      local before = flags(0) & NONBLOCK
      local line = g.os.stdin:read("l")
      local during = flags(0) & NONBLOCK
      g.os.stdin:close()
      print(line, before, during, flags(0) & NONBLOCK)
    ]])
    local py = ([[
import os, socket, subprocess
a, b = socket.socketpair()
p = subprocess.Popen(os.environ["GR_LUA"].split() + [%q], stdin=b)
b.close()
a.sendall(b"over a socket\n")
p.wait()
print("status", p.returncode)
]]):format(p)
    local pyfile = tmp()
    put(pyfile, py)
    local pipe = assert(io.popen(("unset LD_PRELOAD; GR_LUA=%q LUA_PATH=%q LUA_CPATH=%q " ..
                                  "timeout 20 python3 %q")
                                 :format(os.getenv("LUA") or "lua5.4", package.path,
                                         package.cpath, pyfile)))
    local out = pipe:read("a")
    pipe:close()
    os.remove(p)
    os.remove(pyfile)
    assert.are.equal("over a socket\t0\t2048\t0\nstatus 0\n", out)
  end)

  it("a terminal (under script(1)) reads lines and stays blocking", function()
    if not os.execute("command -v script >/dev/null 2>&1") then
      pending("script(1) is not installed")
      return
    end
    local p = tmp()
    put(p, FLAGS .. [[
      local g = require "goroutines"
      local ticks = 0
      g.go(function()
        while true do ticks = ticks + 1; g.time.sleep(0.01) end
      end)
      local line = g.os.stdin:read("l")
      g.os.stdout:write("got ", line, " ", tostring(ticks > 0), "\n")
      print(tostring(g.os.stdin):match("^[%w.]+"),
            flags(0) & NONBLOCK == 0, flags(1) & NONBLOCK == 0)
    ]])
    local cmd = ("unset LD_PRELOAD; (sleep 0.5; printf 'typed\\n'; sleep 1) | " ..
                 "LUA_PATH=%q LUA_CPATH=%q timeout 20 script -qec %q /dev/null")
                :format(package.path, package.cpath,
                        (os.getenv("LUA") or "lua5.4") .. " " .. p)
    local pipe = assert(io.popen(cmd))
    local out = pipe:read("a"):gsub("\r", "")
    pipe:close()
    os.remove(p)
    assert.is_true(h.has(out, "got typed true\n"), out)
    assert.is_true(h.has(out, "goroutines.stdio\ttrue\ttrue\n"), out)
  end)
end)

describe("examples/cat_stdin.lua", function()
  it("copies stdin to stdout and reports while stdin is idle", function()
    local f = assert(io.open("examples/cat_stdin.lua"))
    local src = f:read("a")
    f:close()
    local out, err, code = h.run_stdio(src, {
      feed = "(printf 'a\\nb\\n'; sleep 2.5; printf 'c\\n')",
      stdout_pipe = true,
    })
    assert.are.equal(0, code)
    assert.are.equal("a\nb\nc\n", out)
    assert.is_true(h.has(err, " s, 2 lines, 4 bytes\n"), err)
    assert.is_true(h.has(err, "cat_stdin: done, 3 lines, 6 bytes\n"), err)
  end)
end)
