-- parallel.lua -- two CPU-bound goroutines on two worker threads.
--
-- g.parallel is g.go for another core: f and its arguments are copied into
-- a worker thread's own Lua state, and only runtime objects (here the
-- results channel) are shared. Each goroutine counts the primes in half of
-- 1..N; the main goroutine adds the two counts.
--
-- Run: lua5.4 examples/parallel.lua (with LUA_PATH/LUA_CPATH set as in the README)

local g = require "goroutines"

local N = 1500000

local function isprime(n)              -- an upvalue of count: copied with it
  if n < 2 then return false end
  if n % 2 == 0 then return n == 2 end
  for d = 3, math.floor(math.sqrt(n)), 2 do
    if n % d == 0 then return false end
  end
  return true
end

local function count(lo, hi, results)
  local n = 0
  for i = lo, hi do
    if isprime(i) then n = n + 1 end
  end
  results:send({lo = lo, hi = hi, primes = n})
end

g.gomaxprocs(2)                        -- two worker threads (default: one per CPU)
local results = g.chan()
g.parallel(count, 1, N // 2, results)
g.parallel(count, N // 2 + 1, N, results)

local a, b = results:recv(), results:recv()   -- copies, in either order
if a.lo > b.lo then a, b = b, a end
for _, r in ipairs {a, b} do
  print(("primes in %d..%d: %d"):format(r.lo, r.hi, r.primes))
end
print(("primes in 1..%d: %d"):format(N, a.primes + b.primes))
