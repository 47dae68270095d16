-- SPEC "Diagnostics": GOROUTINES_TRACE=file.json and g.trace.start(path),
-- g.trace.stop() write a trace-event JSON file that Perfetto and
-- chrome://tracing open: a track per OS thread, a slice per goroutine run,
-- block and wake events with their reasons, hand-offs as flows,
-- preemptions and GC. Each trace here is recorded by a child process and
-- read back with tools/json.lua.

local h = require "spec.helpers"
local json = dofile("tools/json.lua")

local function slurp (path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function readexample (name)
  return slurp("examples/" .. name)
end

-- Runs src in a child with GOROUTINES_TRACE set (unless notrace); returns
-- its stdout and the decoded trace.
local function traced (src, notrace)
  local path = os.tmpname()
  local out, err, code = h.run_script(src, 120,
                                      not notrace and
                                      { GOROUTINES_TRACE = path } or nil)
  assert.are.equal(0, code, err)
  assert.are.equal("", err)
  if notrace then
    os.remove(path)
    return out
  end
  local text = slurp(path)
  os.remove(path)
  return out, json.decode(text), text
end

-- Checks what any trace must be, and returns a summary of it:
--   threads[tid] = name; slices = { {tid, t0, t1, id, name} };
--   flows = { {name, s = event, f = event} }; instants = { event }.
local function validate (doc)
  local evs = doc.traceEvents
  assert.is_table(evs, "traceEvents")
  local threads, last, stack = {}, {}, {}
  local slices, instants, starts, ends, flows = {}, {}, {}, {}, {}
  for i = 1, evs.n do
    local e = evs[i]
    assert.is_string(e.ph, "event " .. i .. " has no ph")
    assert.is_number(e.pid)
    if e.ph == "M" then
      if e.name == "thread_name" then threads[e.tid] = e.args.name end
    else
      local tid, ts = e.tid, e.ts
      assert.is_number(tid, "event " .. i .. " has no tid")
      assert.is_number(ts, "event " .. i .. " has no ts")
      assert.is_true(ts >= 0)
      assert.is_true(ts >= (last[tid] or 0),
                     ("event %d on thread %d goes back in time"):format(i, tid))
      last[tid] = ts
      local st = stack[tid] or {}
      stack[tid] = st
      if e.ph == "B" then
        st[#st + 1] = { tid = tid, t0 = ts, id = e.args.id, name = e.name }
      elseif e.ph == "E" then
        local s = table.remove(st)
        assert.is_not_nil(s, ("event %d: an E without its B"):format(i))
        s.t1 = ts
        s.state = e.args.state
        slices[#slices + 1] = s
      elseif e.ph == "X" then
        assert.is_true(e.dur >= 0)
        slices[#slices + 1] = { tid = tid, t0 = ts, t1 = ts + e.dur,
                                name = e.name, runtime = true }
      elseif e.ph == "s" then
        assert.is_nil(starts[e.id], "flow " .. e.id .. " starts twice")
        starts[e.id] = e
      elseif e.ph == "f" then
        ends[#ends + 1] = e
      elseif e.ph == "i" then
        instants[#instants + 1] = e
      else
        error("unexpected phase " .. e.ph)
      end
    end
  end
  -- The threads' events are in the file by thread: a flow's end may come
  -- before its start (on another thread).
  for _, e in ipairs(ends) do
    local s = starts[e.id]
    assert.is_not_nil(s, "flow " .. e.id .. " ends but never starts")
    assert.are.equal(s.name, e.name)
    assert.is_true(s.ts <= e.ts)
    flows[#flows + 1] = { name = e.name, s = s, f = e }
    starts[e.id] = nil
  end
  for tid, st in pairs(stack) do
    assert.are.equal(0, #st, ("thread %d: a B without its E"):format(tid))
    assert.is_string(threads[tid], ("thread %d has no name"):format(tid))
  end
  local function inslice (e)
    for _, s in ipairs(slices) do
      if s.tid == e.tid and s.t0 <= e.ts and e.ts <= s.t1 then return s end
    end
  end
  for _, fl in ipairs(flows) do
    fl.from = inslice(fl.s)
    fl.to = inslice(fl.f)
    assert.is_not_nil(fl.from, "flow " .. fl.s.id .. " starts in no slice")
    assert.is_not_nil(fl.to, "flow " .. fl.f.id .. " ends in no slice")
  end
  return { threads = threads, slices = slices, flows = flows,
           instants = instants }
end

-- The goroutine slices of id.
local function runsof (t, id)
  local r = {}
  for _, s in ipairs(t.slices) do
    if s.id == id and not s.runtime then r[#r + 1] = s end
  end
  return r
end

local function instants (t, name)
  local r = {}
  for _, e in ipairs(t.instants) do
    if e.name == name then r[#r + 1] = e end
  end
  return r
end

describe("GOROUTINES_TRACE", function()
  it("traces examples/pipeline.lua from its start to its end", function()
    local src = readexample("pipeline.lua")
    local plain = traced(src, true)
    local out, doc = traced(src)
    assert.are.equal(plain, out)   -- the trace changes nothing it prints
    local t = validate(doc)
    assert.are.equal("main", t.threads[1])
    -- Goroutine 1's first run opens the trace, its last one closes it.
    local main = runsof(t, 1)
    assert.are.equal("goroutine 1 main", main[1].name)
    -- Every g.go is a flow from the spawner to the goroutine's first run,
    -- which bears its function's name.
    local gos = instants(t, "go")
    assert.is_true(#gos >= 10)
    local firstrun, lines = {}, {}
    for _, fl in ipairs(t.flows) do
      if fl.name == "go" then firstrun[fl.to.id] = fl end
    end
    local ran = 0
    for _, e in ipairs(gos) do
      -- (one spawned as main ends may never run)
      local fl = firstrun[e.args.id]
      local runs = runsof(t, e.args.id)
      if #runs > 0 then ran = ran + 1 end
      assert.are.equal(#runs > 0, fl ~= nil)
      assert.are.equal(runs[1], fl and fl.to)
      if fl then
        assert.are.equal(("goroutine %d %s"):format(e.args.id, e.args.fn),
                         fl.to.name)
      end
      lines[tonumber(e.args.fn:match("^.+:(%d+)$"))] = true
    end
    assert.is_true(ran >= 10)
    -- gen's, sq's, merge's forward and closer goroutines (line defined).
    assert.are.same({ [13] = true, [28] = true, [45] = true, [58] = true },
                    lines)
    -- A run that blocks ends with Go's wait reason as its state; wakes
    -- join the waker's run to the woken goroutine's next run.
    local reasons = {}
    for _, s in ipairs(t.slices) do
      if s.state then reasons[s.state] = true end
    end
    assert.is_true(reasons["select"])
    assert.is_true(reasons["chan receive"])
    assert.is_true(reasons["sync.WaitGroup.Wait"])
    assert.is_true(reasons["dead"])
    local wakes = 0
    for _, fl in ipairs(t.flows) do
      if fl.name == "wake" then
        wakes = wakes + 1
        assert.are_not.equal(fl.from, fl.to)
        assert.is_true(fl.f.ts == fl.to.t0)   -- where the run begins
      end
    end
    assert.is_true(wakes >= 10)
  end)

  it("names goroutines by the ids g.id() returns", function()
    local out, doc = traced [[
      local g = require "goroutines"
      local ch, wg = g.chan(), g.sync.waitgroup()
      print("main " .. g.id())
      for _ = 1, 3 do
        wg:add(1)
        g.go(function()
          print("go " .. g.id())
          ch:send(g.id())
          wg:done()
        end)
      end
      for _ = 1, 3 do ch:recv() end
      wg:wait()
    ]]
    local t = validate(doc)
    local printed, traced_ids = {}, {}
    for id in out:gmatch("%a+ (%d+)") do printed[tonumber(id)] = true end
    for _, s in ipairs(t.slices) do
      if not s.runtime then
        traced_ids[s.id] = true
        assert.are.equal(s.id, tonumber(s.name:match("^goroutine (%d+)")))
      end
    end
    assert.are.same(printed, traced_ids)
    assert.are.equal(4, #(function () local n = {} for k in pairs(printed)
      do n[#n + 1] = k end return n end)())
  end)

  it("puts a parallel goroutine on a worker's track, with its copy",
     function()
    local out, doc = traced [[
      local g = require "goroutines"
      local ch = g.chan()
      local id = g.parallel(function(c, t)
        c:send(g.id() .. " " .. #t)
      end, ch, { 1, 2, 3, 4, 5, 6, 7, 8 })
      print(id, (ch:recv()))
    ]]
    local id, seen, n = out:match("^(%d+)\t(%d+) (%d+)\n$")
    id = tonumber(id)
    assert.are.equal(id, tonumber(seen))
    assert.are.equal("8", n)
    local t = validate(doc)
    local runs = runsof(t, id)
    assert.is_true(#runs >= 1)
    for _, s in ipairs(runs) do
      assert.is_truthy(t.threads[s.tid]:match("^worker %d+$"))
    end
    local par = instants(t, "parallel")
    assert.are.equal(1, #par)
    assert.are.equal(id, par[1].args.id)
    assert.is_true(par[1].args.bytes > 0)
    assert.is_true(par[1].args.copy_us >= 0)
    assert.are.equal("main", t.threads[par[1].tid])
    local fl
    for _, f in ipairs(t.flows) do if f.name == "parallel" then fl = f end end
    assert.is_not_nil(fl)
    assert.are.equal(1, fl.from.id)
    assert.are.equal(runs[1], fl.to)
    -- The worker's send wakes main, blocked in place: a cross-thread wake.
    local cross = false
    for _, f in ipairs(t.flows) do
      if f.name == "wake" and f.s.tid ~= f.f.tid and f.to.id == 1 then
        cross = true
      end
    end
    assert.is_true(cross)
  end)

  it("records preemptions, timer wakes and GC cycles", function()
    local _, doc = traced [[
      local g = require "goroutines"
      g.preempt_slice(0.001)
      local done = g.chan()
      local id = g.go(function()
        local t0, x = g.time.now(), 0
        while g.time.now() - t0 < 0.2 do x = x + 1 end
        done:send(x)
      end)
      local slept = g.chan()
      g.go(function() g.time.sleep(0.01) slept:send(true) end)
      collectgarbage()
      collectgarbage()
      done:recv()
      slept:recv()   -- the sleeper runs again after its timer's wake
      print(id)
    ]]
    local t = validate(doc)
    local pre = instants(t, "preempt")
    assert.is_true(#pre >= 1)
    local req = instants(t, "preempt request")
    assert.is_true(#req >= 1)
    assert.are.equal("monitor", t.threads[req[1].tid])
    assert.are.equal(pre[1].args.id, req[1].args.id)
    assert.is_true(#instants(t, "GC") >= 2)
    -- The timer's wake starts in a slice of the runtime's own.
    local timer = false
    for _, fl in ipairs(t.flows) do
      if fl.name == "wake" and fl.from.runtime and
         fl.from.name == "wake" then timer = true end
    end
    assert.is_true(timer)
  end)
end)

describe("g.trace", function()
  it("starts once, stops once, and reports a file it cannot open",
     function()
    local path = os.tmpname()
    local out, err, code = h.run_script(([[
      local g = require "goroutines"
      local early, ch = g.chan(), g.chan()
      g.go(function() ch:send(early:recv()) end)   -- 2, parked before
      g.gosched()
      print(g.trace.stop())
      print(g.trace.start(%q))
      print(g.trace.start(%q))
      g.go(function() early:send(g.id()) end)      -- 3
      print((ch:recv()))
      print(g.trace.stop())
      print(g.trace.stop())
      print(g.trace.start("/nonexistent/dir/trace.json"))
    ]]):format(path, path), 60)
    assert.are.equal(0, code, err)
    assert.are.equal("false\ntrue\nnil\ttracing is already enabled\n3\n" ..
                     "true\nfalse\nnil\t/nonexistent/dir/trace.json: No " ..
                     "such file or directory\n", out)
    local t = validate(json.decode(slurp(path)))
    os.remove(path)
    assert.are.equal("goroutine 1 main", runsof(t, 1)[1].name)
    -- A goroutine that was running before the trace began is named by its
    -- function all the same (line 3 of the script).
    assert.is_truthy(runsof(t, 2)[1].name:match("^goroutine 2 .+:3$"))
    assert.is_truthy(runsof(t, 3)[1].name:match("^goroutine 3 .+:8$"))
  end)

  it("raises on a path that is not a string", function()
    local out, err, code = h.run_script([[
      local g = require "goroutines"
      print(pcall(g.trace.start, {}))
    ]], 60)
    assert.are.equal(0, code, err)
    assert.are.equal("false\tbad argument #1 to '?' (string expected, " ..
                     "got table)\n", out)
  end)
end)
