-- A seeded random test of channels and select across states.
--
-- Usage: lua5.4 spec/fuzz_select.lua [SEED [ROUNDS]]   (defaults: time, 20)
--
-- Each round makes a few channels of random capacities, hands some of them
-- to parallel goroutines (so they become shared), and lets goroutines of
-- the main state and of the workers run random selects over them: sends
-- of unique values (integers, strings, tables, tables holding a channel,
-- which shares an unshared one), receives, disabled cases,
-- a default, duplicate channels, and a timeout case that keeps any select
-- from waiting for ever. The main goroutine may close a channel while the
-- others run. At the end every value that a send completed must have been
-- received exactly once, by a select, a receive or the final drain; no
-- other value may appear. A failure prints the seed and the round.
local g = require "goroutines"

local seed = math.tointeger(tonumber(arg and arg[1])) or os.time()
local rounds = math.tointeger(tonumber(arg and arg[2])) or 20

-- The work of one goroutine: ops random selects over chans, each value a
-- unique id from base upward. Returns the ids it sent and received.
local function player (chans, base, ops, rseed)
  local gg = require "goroutines"
  local rnd = rseed
  local function rand (n)
    rnd = (rnd * 1103515245 + 12345) % 2147483648
    return rnd % n + 1
  end
  local sent, got, nextid = {}, {}, base
  local function idof (v)
    if type(v) == "table" then return v.id end
    if type(v) == "string" then return math.tointeger(tonumber(v:sub(2))) end
    return v
  end
  for _ = 1, ops do
    local cases, kinds, ids = {}, {}, {}
    for i = 1, rand(4) do
      local c = chans[rand(#chans)]
      local k = rand(5)
      if k <= 2 then
        nextid = nextid + 1
        local id = nextid
        local v = ({ id, "s" .. id, { id = id, pad = "x" },
                     { id = id, ch = chans[rand(#chans)] } })[rand(4)]
        cases[i], kinds[i], ids[i] = c:on_send(v), "send", id
      elseif k <= 4 then
        cases[i], kinds[i] = c:on_recv(), "recv"
      else
        cases[i], kinds[i] = false, "off"
      end
    end
    if rand(4) == 1 then cases.default = true
    else cases[#cases + 1] = gg.time.after(0.003):on_recv() end
    local ok, i, v, vok = pcall(gg.select, cases)
    if not ok then
      -- Only a send on a channel that was closed may fail.
      assert(tostring(i):find("send on closed channel", 1, true), i)
    elseif kinds[i] == "send" then
      sent[#sent + 1] = ids[i]
    elseif kinds[i] == "recv" and vok then
      got[#got + 1] = idof(v)
    end
    if rand(8) == 1 then gg.gosched() end
  end
  return sent, got
end

local function round (r)
  local rseed = seed * 1000 + r
  math.randomseed(rseed)
  local chans = {}
  for i = 1, math.random(1, 4) do chans[i] = g.chan(math.random(0, 3)) end
  local results = g.chan(16)
  local nworkers, nlocal = math.random(0, 2), math.random(1, 3)
  for w = 1, nworkers do
    local mine = {}
    for i = 1, #chans do
      if math.random(2) == 1 or i == 1 then mine[#mine + 1] = chans[i] end
    end
    g.parallel(function (cs, base, ops, s, out, play)
      local ok, sent, got = pcall(play, cs, base, ops, s)
      out:send({ ok = ok, err = not ok and tostring(sent) or nil,
                 sent = ok and sent or {}, got = ok and got or {} })
    end, mine, w * 1000000, math.random(20, 60), rseed + w, results, player)
  end
  for l = 1, nlocal do
    g.go(function ()
      local ok, sent, got = pcall(player, chans, (10 + l) * 1000000,
                                  math.random(20, 60), rseed + 100 + l)
      results:send({ ok = ok, err = not ok and tostring(sent) or nil,
                     sent = ok and sent or {}, got = ok and got or {} })
    end)
  end
  local closed = {}
  if math.random(3) == 1 then
    g.time.sleep(math.random() * 0.01)
    local i = math.random(#chans)
    chans[i]:close()
    closed[i] = true
  end
  local sent, got = {}, {}
  local deadline = g.time.timer(30)
  for _ = 1, nworkers + nlocal do
    local i, res = g.select { results:on_recv(), deadline.c:on_recv() }
    assert(i == 1, ("seed %d round %d: a player never finished"):format(seed, r))
    assert(res.ok, ("seed %d round %d: %s"):format(seed, r, res.err))
    for _, id in ipairs(res.sent) do sent[#sent + 1] = id end
    for _, id in ipairs(res.got) do got[#got + 1] = id end
  end
  deadline:stop()
  -- What is still buffered was sent but not received yet.
  for _, c in ipairs(chans) do
    while c:len() > 0 do
      local v, ok = c:recv()
      assert(ok)
      if type(v) == "table" then v = v.id
      elseif type(v) == "string" then v = math.tointeger(tonumber(v:sub(2))) end
      got[#got + 1] = v
    end
  end
  local count = {}
  for _, id in ipairs(sent) do count[id] = (count[id] or 0) + 1 end
  for _, id in ipairs(got) do
    assert(count[id] == 1, ("seed %d round %d: value %s received but not "
                            .. "sent, or twice"):format(seed, r, tostring(id)))
    count[id] = 0
  end
  for id, n in pairs(count) do
    assert(n == 0, ("seed %d round %d: value %d sent but never received")
                   :format(seed, r, id))
  end
  return #sent
end

local total = 0
for r = 1, rounds do total = total + round(r) end
print(("fuzz_select: seed %d, %d rounds, %d values, all delivered once")
      :format(seed, rounds, total))
