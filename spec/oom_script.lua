-- The workload of `make oom` (spec/oom.sh): a little of everything the
-- runtime allocates for, in the main state and in worker states. Under the
-- sweep any allocation may fail; the script must then end with a Lua
-- error (or succeed), never crash or hang.
local g = require "goroutines"
g.gomaxprocs(2)

local ch, out = g.chan(), g.chan(4)
local wg = g.sync.waitgroup()
local mu = g.sync.mutex()
local ctx, cancel = g.context.with_timeout(g.context.background(), 5)
for i = 1, 4 do
  wg:add(1)
  g.go(function()
    for j = 1, 5 do ch:send({ i = i, j = j, s = ("x"):rep(j) }) end
    wg:done()
  end)
end
g.go(function() wg:wait(); ch:close() end)
local n = 0
for v in ch:range() do
  mu:lock()
  n = n + v.j
  mu:unlock()
end
assert(n == 60, n)

-- Parallel goroutines: values cross by copy, results come back.
local res = g.chan()
for i = 1, 3 do
  g.parallel(function(k, c, t)
    local s = 0
    for _, v in ipairs(t) do s = s + v end
    c:send({ k = k, s = s })
  end, i, res, { 1, 2, 3, i })
end
local total = 0
for _ = 1, 3 do
  local i, v = g.select {
    res:on_recv(),
    ctx:done():on_recv(),
  }
  assert(i == 1, "timed out")
  total = total + v.s
end
assert(total == 24, total)

-- Timers and select.
local t = g.time.timer(0.001)
local tk = g.time.ticker(0.001)
local hits = 0
for _ = 1, 3 do
  g.select {
    t.c:on_recv(function() hits = hits + 1 end),
    tk.c:on_recv(function() hits = hits + 1 end),
  }
end
tk:stop()
g.time.after_func(0.001, function() out:send("af") end)
assert(out:recv() == "af")
-- Shared channels, select and a context across states; an error in a
-- worker that reaches main.
local jobs, done = g.chan(2), g.chan()
local wctx, wcancel = g.context.with_cancel(ctx)
g.parallel(function(j, d, c)
  local gg = require "goroutines"
  local n = 0
  while true do
    local i, v = gg.select { j:on_recv(), c:done():on_recv(),
                             gg.time.after(2):on_recv() }
    if i ~= 1 or v == nil then break end
    n = n + #v
  end
  d:send(n)
end, jobs, done, wctx)
for k = 1, 4 do jobs:send(("y"):rep(k)) end
-- Closed, jobs still gives what it holds: the worker counts all of it (a
-- cancel here would race the buffered values in the worker's select).
jobs:close()
assert(done:recv() == 10)
wcancel()
g.parallel(function() error({ code = 7 }) end)
local ok, e = pcall(g.time.sleep, 0.05)
assert(not ok and tostring(e):find("error object is a table value", 1, true),
       tostring(e))
cancel()
print("oom script done", hits)
