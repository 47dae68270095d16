-- tools/trace2svg.lua -- draws a trace of GOROUTINES_TRACE (trace-event
-- JSON) as an SVG timeline, without a browser: a row per OS thread, a bar
-- per goroutine run colored by goroutine, arrows for the flows (a wake, a
-- spawn) from the waker's run to the woken goroutine's next run, ticks for
-- preemptions and GC cycles (a run's tooltip says how it ended: blocked on
-- what, runnable, dead).
--
-- Usage: lua5.4 tools/trace2svg.lua trace.json out.svg [from_ms to_ms]
-- (from_ms, to_ms: the window to draw, in ms on the trace's clock, which
-- starts with the trace; by default from its first event to its last).

local here = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/"
local json = dofile(here .. "json.lua")

local input, output = arg[1], arg[2]
if not input or not output then
  io.stderr:write("usage: lua5.4 tools/trace2svg.lua trace.json out.svg " ..
                  "[from_ms to_ms]\n")
  os.exit(2)
end
local f = assert(io.open(input, "rb"))
local doc = json.decode(f:read("a"))
f:close()
local events = doc.traceEvents or doc

-- Threads, goroutine runs, flows and instants.
local tname, tids = {}, {}
local open, runs, starts, flows, marks = {}, {}, {}, {}, {}
local tmin, tmax = math.huge, -math.huge
local function seen (tid)
  if not tname[tid] then
    tname[tid] = "thread " .. tid
    tids[#tids + 1] = tid
  end
end
for i = 1, events.n or #events do
  local e = events[i]
  local ts, tid = e.ts, e.tid
  if e.ph == "M" and e.name == "thread_name" then
    seen(tid)
    tname[tid] = e.args.name
  elseif ts then
    seen(tid)
    if e.ph ~= "M" then
      tmin, tmax = math.min(tmin, ts), math.max(tmax, ts + (e.dur or 0))
    end
    if e.ph == "B" then
      local st = open[tid] or {}
      open[tid] = st
      st[#st + 1] = { tid = tid, t0 = ts, id = e.args and e.args.id,
                      name = e.name }
    elseif e.ph == "E" then
      local st = open[tid]
      local r = st and table.remove(st)
      if r then
        r.t1 = ts
        r.state = e.args and e.args.state
        runs[#runs + 1] = r
      end
    elseif e.ph == "X" then
      runs[#runs + 1] = { tid = tid, t0 = ts, t1 = ts + e.dur,
                          id = e.args and e.args.id, name = e.name,
                          runtime = true }
    elseif e.ph == "s" then
      starts[e.id] = { tid = tid, ts = ts, name = e.name }
    elseif e.ph == "f" and starts[e.id] then
      local s = starts[e.id]
      flows[#flows + 1] = { s.tid, s.ts, tid, ts, s.name }
    elseif e.ph == "i" then
      marks[#marks + 1] = { tid = tid, ts = ts, name = e.name }
    end
  end
end
for _, st in pairs(open) do   -- a trace cut short: runs to its end
  for _, r in ipairs(st) do
    r.t1 = tmax
    runs[#runs + 1] = r
  end
end
table.sort(tids)
if #tids == 0 then tmin, tmax = 0, 1 end

local from = tonumber(arg[3]) and tonumber(arg[3]) * 1000 or tmin
local to = tonumber(arg[4]) and tonumber(arg[4]) * 1000 or tmax
if to <= from then to = from + 1 end

-- Geometry.
local W, LEFT, RIGHT, TOP, ROW, BAR = 1400, 110, 20, 40, 34, 22
local row = {}
for i, tid in ipairs(tids) do row[tid] = TOP + (i - 1) * ROW end
local function x (ts)
  return LEFT + (ts - from) / (to - from) * (W - LEFT - RIGHT)
end
local function visible (t0, t1) return t1 >= from and t0 <= to end

local function color (id)
  if not id then return "#bbbbbb" end
  local hue = (id * 137.508) % 360
  return string.format("hsl(%.0f,65%%,%d%%)", hue, id % 2 == 0 and 55 or 68)
end
local function esc (s)
  return (tostring(s):gsub("[&<>\"]", { ["&"] = "&amp;", ["<"] = "&lt;",
                                        [">"] = "&gt;", ['"'] = "&quot;" }))
end

-- The goroutines, for the legend: id -> name of its runs.
local gnames, gids = {}, {}
for _, r in ipairs(runs) do
  if r.id and not r.runtime and not gnames[r.id] then
    gnames[r.id] = r.name
    gids[#gids + 1] = r.id
  end
end
table.sort(gids)

local LEGENDCOLS = 3
local legendrows = (#gids + LEGENDCOLS - 1) // LEGENDCOLS
local axis = TOP + #tids * ROW + 6
local H = axis + 40 + legendrows * 18 + 10

local out = {}
local function put (...) out[#out + 1] = string.format(...) end
put('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" ' ..
    'viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">\n',
    W, H, W, H)
put('<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" ' ..
    'markerWidth="6" markerHeight="6" orient="auto-start-reverse">' ..
    '<path d="M0,0 L10,5 L0,10 z" fill="#333"/></marker>' ..
    '<clipPath id="plot"><rect x="%d" y="%d" width="%d" height="%d"/>' ..
    '</clipPath></defs>\n', LEFT, TOP - 20, W - LEFT - RIGHT,
    #tids * ROW + 20)
put('<rect width="%d" height="%d" fill="white"/>\n', W, H)
put('<text x="%d" y="20" font-size="13" font-weight="bold">%s: %.3f ms' ..
    ' from %.3f ms</text>\n', LEFT, esc(input:match("[^/]*$")),
    (to - from) / 1000, from / 1000)

-- Rows.
for i, tid in ipairs(tids) do
  local y = row[tid]
  put('<rect x="%d" y="%d" width="%d" height="%d" fill="%s"/>\n', LEFT, y,
      W - LEFT - RIGHT, ROW - 4, i % 2 == 0 and "#f4f4f4" or "#fafafa")
  put('<text x="%d" y="%d" text-anchor="end">%s</text>\n', LEFT - 6,
      y + ROW / 2 + 2, esc(tname[tid]))
end

-- Time axis: about 10 ticks at a round step.
local span = (to - from)
local step = 10 ^ math.floor(math.log(span / 10, 10))
if span / step > 50 then step = step * 5 elseif span / step > 20 then
  step = step * 2 end
put('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#666"/>\n', LEFT, axis,
    W - RIGHT, axis)
local t = math.ceil(from / step) * step
while t <= to do
  local tx = x(t)
  put('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#666"/>\n', tx,
      axis, tx, axis + 4)
  put('<text x="%.1f" y="%d" text-anchor="middle">%g ms</text>\n', tx,
      axis + 16, t / 1000)
  t = t + step
end

-- Runs.
for _, r in ipairs(runs) do
  if visible(r.t0, r.t1) then
    local x0 = math.max(x(r.t0), LEFT)
    local x1 = math.min(x(r.t1), W - RIGHT)
    local w = math.max(x1 - x0, 1)
    local y = row[r.tid] + (ROW - 4 - BAR) / 2
    put('<rect x="%.2f" y="%.1f" width="%.2f" height="%d" fill="%s" ' ..
        'stroke="#00000040" stroke-width="0.5"><title>%s %.3f ms%s</title>' ..
        '</rect>\n', x0, y, w, r.runtime and BAR / 2 or BAR,
        r.runtime and "#999999" or color(r.id), esc(r.name),
        (r.t1 - r.t0) / 1000, r.state and " (" .. esc(r.state) .. ")" or "")
    if w > 18 and r.id and not r.runtime then
      put('<text x="%.2f" y="%.1f" font-size="10" fill="#111">g%d</text>\n',
          x0 + 2, y + BAR / 2 + 4, r.id)
    end
  end
end

-- Preemptions, GC: ticks on the row.
local markcolor = { preempt = "#8e44ad",
                    ["preempt request"] = "#8e44ad", GC = "#27ae60" }
for _, m in ipairs(marks) do
  if markcolor[m.name] and visible(m.ts, m.ts) then
    local y = row[m.tid]
    put('<line x1="%.2f" y1="%d" x2="%.2f" y2="%d" stroke="%s" ' ..
        'stroke-width="1.5"><title>%s</title></line>\n', x(m.ts), y,
        x(m.ts), y + 5, markcolor[m.name], esc(m.name))
  end
end

-- Flows (an arrow from outside the window is cut at its edge).
put('<g clip-path="url(#plot)">\n')
for _, fl in ipairs(flows) do
  local t1, ts1, t2, ts2, name = fl[1], fl[2], fl[3], fl[4], fl[5]
  if visible(math.min(ts1, ts2), math.max(ts1, ts2)) then
    local y1 = row[t1] + (ROW - 4) / 2
    local y2 = row[t2] + (ROW - 4) / 2
    if t1 == t2 then y2 = y2 + 0.01 end
    put('<path d="M%.2f,%.1f C%.2f,%.1f %.2f,%.1f %.2f,%.1f" fill="none" ' ..
        'stroke="%s" stroke-width="0.8" marker-end="url(#arrow)"/>\n',
        x(ts1), y1, x(ts1), y1 + (t1 == t2 and -14 or (y2 - y1) / 2),
        x(ts2), y2 - (t1 == t2 and 14 or (y2 - y1) / 2), x(ts2), y2,
        name == "wake" and "#333" or "#2e86c1")
  end
end
put('</g>\n')

-- Legend: the goroutines and the marks.
local ly = axis + 46
put('<text x="%d" y="%d">arrows: wake (black), go/parallel (blue); ' ..
    'ticks: preempt (purple), GC (green); grey: the ' ..
    'runtime waking a goroutine</text>\n', LEFT, ly - 12)
for i, id in ipairs(gids) do
  local col, r = (i - 1) % LEGENDCOLS, (i - 1) // LEGENDCOLS
  local lx = LEFT + col * (W - LEFT) // LEGENDCOLS
  put('<rect x="%d" y="%d" width="10" height="10" fill="%s"/>\n', lx,
      ly + r * 18, color(id))
  put('<text x="%d" y="%d">%s</text>\n', lx + 14, ly + r * 18 + 9,
      esc(gnames[id]))
end
put('</svg>\n')

local o = assert(io.open(output, "wb"))
o:write(table.concat(out))
o:close()
print(string.format("%s: %d threads, %d runs, %d flows", output, #tids,
                    #runs, #flows))
