-- fuzz_copy: random values through the transfer rules (SPEC "Transfer
-- rules"), from a seed.
--
--   lua5.4 spec/fuzz_copy.lua SEED ITERATIONS    (defaults: 1, 200)
--
-- Each iteration builds a random value -- nested tables with cycles,
-- shared sub-tables, table keys and metatables; closures sharing upvalues;
-- strings with NULs; integers and floats (NaN, -0.0, math.mininteger...);
-- library C functions; channels, some holding their own handle -- and
-- checks that it comes back equal (a structural equality that follows
-- cycles and sharing) through a shared channel within this state, and
-- through g.parallel and back. Then it hides one value that cannot cross
-- (a coroutine, a userdata of io, an unknown C function) at a known path in
-- a fresh value, and checks that a send and a spawn both fail with the error
-- that names that path, and that nothing stays behind: no value queued and,
-- after a collection in every state, as many live channels as before.
--
-- Exits non-zero on the first mismatch, printing the seed and iteration.
-- `require "fuzz_copy"` returns the module without running it (M.run).

local g = require "goroutines"

local M = {}

-- xorshift64: the same sequence for a seed, whatever else uses math.random.
local state = 1
local function seed(s)
  state = s ~ 0x9E3779B97F4A7C15
  if state == 0 then state = 1 end
end
local function next64()
  local x = state
  x = x ~ (x << 13)
  x = x ~ (x >> 7)
  x = x ~ (x << 17)
  state = x
  return x
end
local function rand(n) return (next64() >> 1) % n + 1 end   -- 1..n
local function chance(p) return rand(1000) <= p * 1000 end
local function pick(list) return list[rand(#list)] end

-- Scalars ---------------------------------------------------------------

local SPECIAL_NUMBERS = {
  0, -1, 1, math.maxinteger, math.mininteger, 0.0, -0.0, 0 / 0, 1 / 0,
  -1 / 0, 0.1, -2.5, 2 ^ 53, 2 ^ 63, 1e-310, 3.0,
}

local function randstring()
  local k = rand(6)
  if k == 1 then return "" end
  if k == 2 then return "a\0b\0\0" .. rand(100) end
  local n = k == 3 and rand(3000) or rand(12)
  local b = {}
  for i = 1, n do b[i] = string.char(rand(256) - 1) end
  return table.concat(b)
end

local function randnumber()
  local k = rand(4)
  if k == 1 then return pick(SPECIAL_NUMBERS) end
  if k == 2 then return next64() end
  if k == 3 then return rand(1000) - 500 end
  local f = (next64() >> 11) / (1 << 20)
  return chance(0.5) and -f or f
end

local function randscalar()
  local k = rand(4)
  if k == 1 then return chance(0.5) end
  if k == 2 then return randstring() end
  return randnumber()
end

local function randkey()
  local k = rand(4)
  if k == 1 then return rand(8) end
  if k == 2 then return pick { "x", "name", "_k", "two words", "a.b" } end
  local v
  repeat v = randscalar() until v == v   -- not NaN
  return v
end

local CFUNCS = { string.upper, math.floor, print, table.concat, g.chan }
-- Module tables travel by name: the copy is the receiver's own.
local MODULES = { string, math, g, g.time }
local ismodule = {}
for _, m in ipairs(MODULES) do ismodule[m] = true end

-- Values ------------------------------------------------------------------

-- Closures over two upvalues; some share them.
local function closures(v1, v2)
  local a, b = v1, v2
  local function get() return a, b end
  local function seta(x) a = x end
  local function onlyb() return b end
  return get, seta, onlyb
end

local aliases = 0   -- scalar keys made for tables used as keys

-- Builds a random value of at most budget[1] more nodes; pool holds the
-- tables made so far (reusing one makes sharing, or a cycle).
local function gen(depth, budget, pool)
  budget[1] = budget[1] - 1
  if depth > 6 or budget[1] <= 0 then return randscalar() end
  local k = rand(12)
  if k <= 3 then return randscalar() end
  if k == 4 and #pool > 0 then return pick(pool) end
  if k == 5 then return chance(0.7) and pick(CFUNCS) or pick(MODULES) end
  if k == 6 then
    local get, seta, onlyb = closures(gen(depth + 1, budget, pool),
                                      gen(depth + 1, budget, pool))
    local t = { get, onlyb }
    if chance(0.5) then t[3] = seta end
    if chance(0.3) then
      local inner = get
      t[4] = function() return inner() end   -- a closure of a closure
    end
    return t
  end
  if k == 7 then
    local c = g.chan(rand(3) - 1)
    if c:cap() > 0 and chance(0.3) then c:send(randscalar()) end
    return c
  end
  local t = {}
  pool[#pool + 1] = t
  for _ = 1, rand(5) - 1 do
    local key = randkey()
    if chance(0.1) and #pool > 0 then
      -- A table as a key, also stored under a scalar key (see equal).
      key = pick(pool)
      aliases = aliases + 1
      t["@" .. aliases] = key   -- a name of its own: never overwritten
    end
    local v = gen(depth + 1, budget, pool)
    if v ~= nil then t[key] = v end
  end
  if chance(0.15) then
    setmetatable(t, chance(0.5) and #pool > 0 and pick(pool) or
                    { __index = gen(depth + 1, budget, pool) })
  end
  return t
end

-- Calls f(c) for each channel that v reaches.
local function eachchan(v, f, seen)
  seen = seen or {}
  if type(v) == "userdata" then return f(v) end
  if (type(v) ~= "table" and type(v) ~= "function") or seen[v] or
     ismodule[v] then
    return
  end
  seen[v] = true
  if type(v) == "function" then
    if debug.getinfo(v, "S").what == "C" then return end
    for i = 1, math.huge do
      local n, x = debug.getupvalue(v, i)
      if n == nil then break end
      eachchan(x, f, seen)
    end
    return
  end
  for k, x in next, v do
    eachchan(k, f, seen)
    eachchan(x, f, seen)
  end
  eachchan(getmetatable(v), f, seen)
end

function M.gen()
  local v = gen(0, { rand(40) }, {})
  -- Some channels that v reaches hold their own handle: a cycle that only
  -- a shared channel frees (one that never crossed anchors its values in
  -- its state's registry), so only those that cross with v.
  eachchan(v, function(c)
    if c:len() < c:cap() and chance(0.5) then c:send(c) end
  end)
  return v
end

-- Equality ---------------------------------------------------------------

-- Whether b is a faithful copy of a: same scalars (subtypes, NaN, the sign
-- of zero), same shape, and a one-to-one map between their tables and
-- functions (sharing and cycles kept), shared upvalues shared.
local function equal(a, b, m)
  local ta = type(a)
  if ta ~= type(b) then return false, "type " .. ta .. " vs " .. type(b) end
  if ta == "number" then
    if math.type(a) ~= math.type(b) then return false, "number subtype" end
    if a ~= a then return b ~= b, "NaN" end
    if a == 0 and b == 0 then return 1 / a == 1 / b, "sign of zero" end
    return a == b, "number " .. tostring(a) .. " vs " .. tostring(b)
  end
  if ta ~= "table" and ta ~= "function" then
    if ta == "userdata" then return a == b, "channel" end
    return a == b, "value " .. tostring(a)
  end
  if m.ab[a] ~= nil or m.ba[b] ~= nil then
    return m.ab[a] == b and m.ba[b] == a, "sharing of a " .. ta
  end
  if ismodule[a] then return rawequal(a, b), "module table" end
  if ta == "function" then
    if debug.getinfo(a, "S").what == "C" then return a == b, "C function" end
    if rawequal(a, b) then return false, "a Lua function not copied" end
  elseif rawequal(a, b) then
    return false, "a table not copied"
  end
  m.ab[a], m.ba[b] = b, a
  if ta == "function" then
    if string.dump(a) ~= string.dump(b) then return false, "bytecode" end
    for i = 1, math.huge do
      local na, va = debug.getupvalue(a, i)
      local nb, vb = debug.getupvalue(b, i)
      if na == nil then return nb == nil, "upvalue count" end
      if na ~= nb then return false, "upvalue name" end
      local ia, ib = debug.upvalueid(a, i), debug.upvalueid(b, i)
      if m.up[ia] ~= nil or m.pu[ib] ~= nil then
        if m.up[ia] ~= ib or m.pu[ib] ~= ia then
          return false, "upvalue sharing of " .. na
        end
      else
        m.up[ia], m.pu[ib] = ib, ia
        if na ~= "_ENV" then
          local ok, why = equal(va, vb, m)
          if not ok then return false, "(upvalue " .. na .. ")" .. why end
        end
      end
    end
  end
  -- Scalar keys first: they map the tables used as keys (see gen).
  local n = 0
  for k, v in next, a do
    if type(k) ~= "table" then
      n = n + 1
      local ok, why = equal(v, rawget(b, k), m)
      if not ok then return false, "[" .. tostring(k) .. "]" .. why end
    end
  end
  for k, v in next, a do
    if type(k) == "table" then
      n = n + 1
      local kb = m.ab[k]
      if kb == nil then return false, "table key not mapped" end
      local ok, why = equal(v, rawget(b, kb), m)
      if not ok then return false, "[table key]" .. why end
    end
  end
  for _ in next, b do n = n - 1 end
  if n ~= 0 then return false, "key count" end
  local ma, mb = getmetatable(a), getmetatable(b)
  if ma ~= nil or mb ~= nil then
    local ok, why = equal(ma, mb, m)
    if not ok then return false, "(metatable)" .. why end
  end
  return true
end

function M.equal(a, b)
  return equal(a, b, { ab = {}, ba = {}, up = {}, pu = {} })
end

-- Values that must fail ------------------------------------------------------

local POISONS = {
  { function() return coroutine.create(print) end, "a coroutine" },
  { function() return io.stdout end, "userdata" },
  { function() return string.gmatch("a", "a") end,
    "a C function that is not a loaded module's" },
}

-- The path segment that copy.c names for key k.
local function segment(k)
  k = math.tointeger(k) or k   -- a table stores 2.0 as the key 2
  if type(k) == "string" then
    if k:match("^[%a_][%w_]*$") then return "." .. k end
    return '["' .. k .. '"]'
  end
  if math.type(k) == "integer" then return "[" .. k .. "]" end
  return "[" .. type(k) .. "]"
end

-- A fresh value (no sharing: one path to each part) with a poison at the
-- end of a random path; returns it, the path and what the error names.
function M.poisoned()
  local p = pick(POISONS)
  local function build(depth)
    if depth == 0 then return p[1](), "" end
    local inner, path = build(depth - 1)
    local k = rand(3)
    if k == 1 then
      local up = inner
      return function() return up end, "(upvalue up)" .. path
    end
    local t = {}
    for _ = 1, rand(3) - 1 do t[randkey()] = gen(5, { 4 }, {}) end
    if k == 2 then
      local key = pick { rand(8), "x", "_k9", "two words", "a.b", 0.5, 3.0 }
      t[key] = inner
      return t, segment(key) .. path
    end
    return setmetatable(t, { __index = inner }), "(metatable).__index" .. path
  end
  local v, path = build(rand(5) - 1)
  return v, path, p[2]
end

-- The run ------------------------------------------------------------------

local CANNOT = " cannot be copied to another state"

local function quiesce(done)
  -- One worker: earlier jobs have started; let them end, collect there.
  g.parallel(function(r)
    for _ = 1, 3 do g.gosched() end
    collectgarbage()
    collectgarbage()
    r:send(true)
  end, done)
  done:recv()
  collectgarbage()
  collectgarbage()
end

local function fail(seed_, i, what)
  error(string.format("fuzz_copy: seed %d iteration %d: %s", seed_, i, what),
        0)
end

-- One iteration, in a function of its own: once it returns, its values
-- are garbage (a dead local of a running function may still be marked).
local function iteration(seed_, i, back, shared)
  local v = M.gen()
  shared:send(v)
  local ok, why = M.equal(v, (shared:recv()))
  if not ok then fail(seed_, i, "via a shared channel: " .. why) end
  g.parallel(function(r, x) r:send(x) end, back, v)
  ok, why = M.equal(v, (back:recv()))
  if not ok then fail(seed_, i, "via g.parallel: " .. why) end
  local path, what
  v, path, what = M.poisoned()
  local want = path .. ": " .. what .. CANNOT
  local err
  ok, err = pcall(shared.send, shared, v)
  if ok or not tostring(err):find("value" .. want, 1, true) then
    fail(seed_, i, "send: want " .. want .. ", got " .. tostring(err))
  end
  ok, err = pcall(g.parallel, function() end, v)
  if ok or not tostring(err):find("args[1]" .. want, 1, true) then
    fail(seed_, i, "spawn: want " .. want .. ", got " .. tostring(err))
  end
  if shared:len() ~= 0 then fail(seed_, i, "a failed send queued") end
end

M.every = 10   -- iterations between two checks of the live channels

function M.run(seed_, iterations)
  seed(seed_)
  g.gomaxprocs(1)
  local done, back, shared = g.chan(), g.chan(), g.chan(1)
  g.parallel(function(c) local _ = c end, shared)   -- shared from here on
  quiesce(done)
  local base = g._stats().chans
  for i = 1, iterations do
    iteration(seed_, i, back, shared)
    if i % M.every == 0 or i == iterations then
      quiesce(done)
      local live = g._stats().chans
      if live ~= base then
        fail(seed_, i, (live - base) .. " channels more than at the start")
      end
    end
  end
end

if ... == nil or tonumber((...)) then   -- run as a script
  local seed_ = math.tointeger(tonumber((...))) or 1
  local n = math.tointeger(tonumber(select(2, ...))) or 200
  M.run(seed_, n)
  print(string.format("fuzz_copy: seed %d: %d iterations ok", seed_, n))
end

return M
