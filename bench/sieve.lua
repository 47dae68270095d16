-- sieve: Go's classic concurrent prime sieve (a daisy chain of filters).
--
-- generate sends 2, 3, 4, ... on an unbuffered channel; main takes the
-- first value as a prime and inserts a filter goroutine for it at the end
-- of the chain. Finding P primes builds a chain of P filters; every
-- number travels through the filters of all primes below its smallest
-- factor. The goroutines left at the end are abandoned, as in the Go tour.
-- Same workload as go/sieve/main.go.
--
-- Usage: lua5.4 bench/sieve.lua [P, default 2000]
-- Output: RESULT sieve ms_total <ms>
local g = require "goroutines"

-- Sends the sequence 2, 3, 4, ... to channel ch.
local function generate (ch)
  local i = 2
  while true do
    ch:send(i)
    i = i + 1
  end
end

-- Copies the values from inp to out, dropping multiples of prime.
local function filter (inp, out, prime)
  while true do
    local i = inp:recv()
    if i % prime ~= 0 then out:send(i) end
  end
end

local n = math.tointeger(tonumber(arg[1])) or 2000
local t0 = g.time.now()
local ch = g.chan()
g.go(generate, ch)
local last
for _ = 1, n do
  local prime = ch:recv()
  last = prime
  local ch1 = g.chan()
  g.go(filter, ch, ch1, prime)
  ch = ch1
end
local elapsed = g.time.now() - t0
if n == 2000 and last ~= 17389 then  -- the 2000th prime
  error(string.format("sieve: prime %d is %s, want 17389", n, last))
end
print(string.format("RESULT sieve ms_total %.1f", elapsed * 1e3))
