-- The network examples, run as a user runs them, each in a child process:
-- examples/echo_server.lua (a graceful shutdown on SIGINT) and
-- examples/crawler.lua (a fan-out over servers it starts itself).

local g = require "goroutines"
local h = require "spec.helpers"

local LUA = os.getenv("LUA") or "lua5.4"
local SCALE = h.TIME_SCALE

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function shquote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- Runs a file with arguments (a shell word list) in a child process, as
-- h.run_script runs a chunk: stdout, stderr, exit status.
local function run(path, args)
  local out, err = os.tmpname(), os.tmpname()
  local _, how, code = os.execute(("LUA_PATH=%s LUA_CPATH=%s timeout -k 5 %d %s %s %s >%s 2>%s"):format(
    shquote(package.path), shquote(package.cpath), math.ceil(120 * SCALE), LUA, path,
    args, out, err))
  if how == "signal" then code = 128 + code end
  local stdout, stderr = slurp(out), slurp(err)
  os.remove(out)
  os.remove(err)
  return stdout, stderr, code
end

-- Waits until f() returns a value, for at most limit seconds.
local function await(limit, f)
  local deadline = g.time.now() + limit * SCALE
  repeat
    local v = f()
    if v then return v end
    g.time.sleep(0.02)
  until g.time.now() > deadline
  return nil
end

describe("examples/echo_server.lua", function()
  it("shuts down on SIGINT: stops accepting, lets live conns finish, closes the rest, exits 0", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir " .. shquote(dir)))
    finally(function() os.execute("rm -rf " .. shquote(dir)) end)
    local out, pidf, rcf = dir .. "/out", dir .. "/pid", dir .. "/rc"
    local grace = 2 * SCALE
    -- The server runs in the background; the shell records its pid and,
    -- once it ends, its exit status. (Not under timeout(1), which would
    -- pass SIGINT on twice: a second SIGINT ends the server at once.)
    assert(os.execute(("LUA_PATH=%s LUA_CPATH=%s sh -c %s &"):format(
      shquote(package.path), shquote(package.cpath),
      shquote(("%s examples/echo_server.lua serve 127.0.0.1:0 %g >%s 2>&1 & echo $! >%s; wait $!; echo $? >%s")
              :format(LUA, grace, out, pidf, rcf)))))
    local addr = await(30, function()
      return (slurp(out) or ""):match("^listening on (127%.0%.0%.1:%d+)\n")
    end)
    assert.is_truthy(addr, slurp(out))
    local pid = assert(await(5, function() return (slurp(pidf) or ""):match("%d+") end))
    finally(function()   -- a server that did not end: no stray process
      if not slurp(rcf) then os.execute("kill -KILL " .. pid .. " 2>/dev/null") end
    end)

    -- Two connections, each served once: one will finish in the grace
    -- period, the other stays idle until the server closes it.
    local finishing = assert(g.net.dial("tcp", addr, 5))
    local idle = assert(g.net.dial("tcp", addr, 5))
    for _, c in ipairs {finishing, idle} do
      c:set_deadline(g.time.now() + 30 * SCALE)
      c:write("hello\n")
      assert.are.equal("hello", c:read("l"))
    end

    assert(os.execute("kill -INT " .. pid))
    assert.is_truthy(await(30, function()
      return (slurp(out) or ""):find("stopped accepting", 1, true)
    end), slurp(out))
    assert.matches("connect: connection refused$", select(2, g.net.dial("tcp", addr, 5)))
    finishing:write("still served\n")
    assert.are.equal("still served", finishing:read("l"))
    finishing:close()
    assert.are.same({nil, "EOF"}, {idle:read("l")})   -- closed after the grace period
    idle:close()

    local rc = await(30, function() return (slurp(rcf) or ""):match("%d+") end)
    assert.are.equal(table.concat({
      "listening on " .. addr,
      "got SIGINT",
      ("stopped accepting; waiting up to %g s for 2 connections"):format(grace),
      "grace period over: closing 1 connection",
      "server stopped: 2 connections served",
      ""}, "\n"), slurp(out))
    assert.are.equal("0", rc)
  end)

  it("the demo ends by itself", function()
    local stdout, stderr, code = run("examples/echo_server.lua", "5 10")
    assert.are.equal("", stderr)
    assert.are.equal(0, code)
    assert.matches("\n5 clients, 50 round trips in [%d.]+ s %(%d+/s%); 5 connections served\n$", stdout)
  end)
end)

describe("examples/crawler.lua", function()
  it("crawls every page once, whatever the number of fetchers, in a stable order", function()
    local want = [[
crawled 10 URLs from site1/ with %d fetchers:
  site1/         200  Home         3 links
  site1/about    200  About us     2 links
  site1/missing  404
  site2/         200  Site two     3 links
  site2/team     200  The team     2 links
  site3/         200  A blog       2 links
  site3/blog     200  Posts        3 links
  site3/blog/1   200  First post   1 link
  site3/blog/2   200  Second post  2 links
  site4/         dial tcp site4: connect: connection refused
8 pages, 2 broken links, 9 requests served
]]
    for _, n in ipairs {1, 4, 16} do
      local stdout, stderr, code = run("examples/crawler.lua", tostring(n))
      assert.are.equal("", stderr)
      assert.are.equal(0, code)
      assert.are.equal(want:format(n), stdout)
    end
  end)
end)
