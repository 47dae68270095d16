-- leaks: what leak detection frees, and what it costs the collector.
--
-- free N (default 100000): N goroutines each block in a receive on a
-- channel that only they hold, so all of them leak. g.leaks() finds them;
-- then two full collections. Prints the Lua heap (collectgarbage "count")
-- and the resident set (VmRSS) before the spawn, with the goroutines
-- parked, and after; and how long g.leaks() took. "Before" follows a
-- first round of the same size (heap_kb_cold is the level before it).
--
-- gc N (default 1000000): N goroutines parked in a receive on one channel
-- that main holds (reachable: no leak). g.leaks() weakens them all (with
-- leak detection on; timed apart: it runs two full collections), then
-- full collections are timed (median of 5).
--
-- Without arguments, runs `free` and `gc` in child processes, alternately
-- with leak detection on and off (GOROUTINES_DEBUG=leakcheck=0), REPEAT
-- times (default 5; BENCH_REPEAT), and prints the medians and the ratio.
-- Same workloads as go/leaks/main.go (where Go frees nothing: its leaked
-- goroutines stay).
--
-- Output: RESULT leaks <metric> <value> lines.
local g = require "goroutines"

local now = g.time.now

local function status_kb (field)
  local f = io.open("/proc/self/status", "r")
  if not f then return 0 end
  local s = f:read("a")
  f:close()
  return tonumber(s:match(field .. ":%s*(%d+)")) or 0
end

-- Lets every goroutine reach its receive: one that the monitor preempted
-- (a collection step inside its time slice) waits for the next round.
local function settle ()
  for _ = 1, 5 do g.gosched() end
end

local function median (t)
  table.sort(t)
  return t[(#t + 1) // 2]
end

local function result (metric, value, fmt)
  print(string.format("RESULT leaks %s " .. (fmt or "%.3f"), metric, value))
end

local function free (n)
  local function spawn ()
    for _ = 1, n do g.go(function (ch) ch:recv() end, g.chan()) end
  end
  collectgarbage()
  collectgarbage()
  local cold = collectgarbage("count")
  -- A first round of the same size: the registry (one ref per goroutine)
  -- and the scheduler's tables keep the size they grew to, leaks or not.
  spawn()
  settle()
  assert(#g.leaks() == n)
  collectgarbage()
  collectgarbage()
  local kb0, rss0 = collectgarbage("count"), status_kb("VmRSS")
  result("heap_kb_cold", cold, "%.0f")
  spawn()
  settle()
  local kb1, rss1 = collectgarbage("count"), status_kb("VmRSS")
  local t0 = now()
  local found = #g.leaks()
  local detect = now() - t0
  collectgarbage()
  collectgarbage()
  local kb2, rss2 = collectgarbage("count"), status_kb("VmRSS")
  result("found_" .. n, found, "%d")
  result("leaks_s_" .. n, detect)
  result("heap_kb_before", kb0, "%.0f")
  result("heap_kb_parked", kb1, "%.0f")
  result("heap_kb_after", kb2, "%.0f")
  result("heap_after_over_before", kb2 / kb0)
  result("rss_kb_before", rss0, "%d")
  result("rss_kb_parked", rss1, "%d")
  result("rss_kb_after", rss2, "%d")
  result("rss_given_back", (rss1 - rss2) / math.max(1, rss1 - rss0))
end

local function gc (n)
  local ch = g.chan()
  local function worker () ch:recv() end
  for _ = 1, n do g.go(worker) end
  settle()
  local t0 = now()
  assert(#g.leaks() == 0)   -- weakens them all (none off): no leak
  result("first_gc_s", now() - t0)
  local ts = {}
  for i = 1, 5 do
    t0 = now()
    collectgarbage()
    ts[i] = now() - t0
  end
  result("gc_s_" .. n, median(ts))
  ch:close()   -- they all end: nothing is left for the close
  for _ = 1, 3 do g.gosched() end
end

-- Runs this script as a child with args and env, returns metric -> value.
local function child (args, env)
  local lua = arg[-1] or "lua5.4"
  local cmd = string.format("%s %s %s %s", env, lua, arg[0], args)
  local p = assert(io.popen(cmd, "r"))
  local out = {}
  for line in p:lines() do
    local m, v = line:match("^RESULT leaks (%S+) (%S+)")
    if m then out[m] = tonumber(v) end
  end
  assert(p:close(), cmd .. " failed")
  return out
end

local function drive ()
  local repeats = tonumber(os.getenv("BENCH_REPEAT")) or 5
  local on, off = "env -u GOROUTINES_DEBUG",
                  "env GOROUTINES_DEBUG=leakcheck=0"
  local heap, rss, found, detect = {}, {}, {}, {}
  for i = 1, repeats do
    local r = child("free 100000", on)
    heap[i], rss[i] = r.heap_after_over_before, r.rss_given_back
    found[i], detect[i] = r.found_100000, r.leaks_s_100000
  end
  result("free_found_100000", median(found), "%d")
  result("free_leaks_s_100000", median(detect))
  result("free_heap_after_over_before", median(heap))
  result("free_rss_given_back", median(rss))
  local with, without, first = {}, {}, {}
  for i = 1, repeats do   -- alternate: the machine's load changes
    local a = child("gc 1000000", on)
    local b = child("gc 1000000", off)
    with[i], without[i], first[i] = a.gc_s_1000000, b.gc_s_1000000,
                                    a.first_gc_s
    io.stderr:write(string.format("gc run %d: with %.3f s, without %.3f s, "
      .. "g.leaks() with %.3f s\n", i, with[i], without[i], first[i]))
  end
  result("gc_s_1000000_with", median(with))
  result("gc_s_1000000_without", median(without))
  result("gc_ratio", median(with) / median(without))
  result("leaks_s_1000000_with", median(first))
end

local mode, n = arg[1], math.tointeger(tonumber(arg[2]))
if mode == "free" then free(n or 100000)
elseif mode == "gc" then gc(n or 1000000)
else drive() end
