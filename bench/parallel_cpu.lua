-- parallel_cpu: does a CPU-bound Lua kernel scale over worker threads?
--
-- The kernel is a pure-Lua integer loop (a linear congruential generator
-- whose outputs are summed): no allocation, no library call, about 1.5 s
-- of work at the default size on the machine of bench/README.md.
--
--   main1 -- the kernel once in the main state (the baseline);
--   par1  -- the kernel once inside one g.parallel goroutine, timed inside
--            the goroutine (so thread start and transfer are left out);
--   seq2  -- the kernel twice in sequence in the main state;
--   par2  -- two g.parallel goroutines each run the kernel at once; main
--            waits for both results on a channel (wall time from the first
--            g.parallel to the second result).
-- Every run must return the same sum (checked). par1 runs before seq2 and
-- par2, so the workers already exist when par2 is timed.
-- Same workload as go/parallel_cpu/main.go.
--
-- Usage: lua5.4 bench/parallel_cpu.lua [iterations, default 150000000]
-- Output:
--   RESULT parallel_cpu kernel_ms_main <main1, ms>
--   RESULT parallel_cpu speedup_2 <seq2 / par2; 2.0 = perfect on 2 cores>
--   RESULT parallel_cpu kernel_ratio_parallel_vs_main <par1 / main1; 1.0 = no slowdown>
local g = require "goroutines"

local now = g.time.now

-- The kernel: locals only, so it runs the same in any state.
local function kernel (n)
  local x, s = 1, 0
  for _ = 1, n do
    x = (x * 1103515245 + 12345) & 0x7fffffff
    s = s + (x >> 16)
  end
  return s
end

-- Runs in a worker state: kernel and now are copied there (kernel by
-- bytecode, now by name as a function of the goroutines module).
local function job (n, out)
  local t0 = now()
  local s = kernel(n)
  out:send({ sum = s, secs = now() - t0 })
end

local n = math.tointeger(tonumber(arg[1])) or 150000000
local out = g.chan()

-- main1
local t0 = now()
local expect = kernel(n)
local main1 = now() - t0

-- par1
g.parallel(job, n, out)
local r = out:recv()
assert(r.sum == expect, "parallel_cpu: bad sum in a parallel goroutine")
local par1 = r.secs

-- seq2
t0 = now()
local s1, s2 = kernel(n), kernel(n)
local seq2 = now() - t0
assert(s1 == expect and s2 == expect, "parallel_cpu: bad sum")

-- par2
t0 = now()
g.parallel(job, n, out)
g.parallel(job, n, out)
local ra, rb = out:recv(), out:recv()
local par2 = now() - t0
assert(ra.sum == expect and rb.sum == expect, "parallel_cpu: bad sum in par2")

print(string.format("RESULT parallel_cpu kernel_ms_main %.1f", main1 * 1e3))
print(string.format("RESULT parallel_cpu speedup_2 %.3f", seq2 / par2))
print(string.format("RESULT parallel_cpu kernel_ratio_parallel_vs_main %.3f",
                    par1 / main1))
