-- g.preempt_slice: the time slice after which a goroutine that computes
-- is preempted, per state.
local g = require "goroutines"
local h = require "helpers"

-- Two goroutines compute for `secs` each, taking turns only when they are
-- preempted; returns how many times the turn changed.
local function switches(secs)
  local done, last, n = g.chan(), nil, 0
  local function compute(me)
    local stop = g.time.now() + secs
    while g.time.now() < stop do
      if last ~= me then last, n = me, n + 1 end
    end
    done:send(true)
  end
  g.go(compute, "a")
  g.go(compute, "b")
  h.recv_within(done, 30)
  h.recv_within(done, 30)
  return n - 1
end

describe("g.preempt_slice", function()
  local default
  before_each(function() default = g.preempt_slice() end)
  after_each(function() g.preempt_slice(default) end)

  it("is 0.01 by default, and returns the previous slice", function()
    assert.are.equal(0.01, default)
    assert.are.equal(0.01, g.preempt_slice(0.002))
    assert.are.equal(0.002, g.preempt_slice())
    assert.are.equal(0.002, g.preempt_slice(0.5))
    assert.are.equal(0.5, g.preempt_slice(nil))
  end)

  it("rejects what is not a number of seconds from 0.0001 to 3600", function()
    for _, bad in ipairs { 0, -1, 0.00001, 3601, 1 / 0, 0 / 0 } do
      local err = h.error_of(g.preempt_slice, bad)
      assert.is_true(h.has(err, "preempt_slice' (must be a number of "
                           .. "seconds from 0.0001 to 3600)"), err)
    end
    assert.matches("number expected, got string", h.error_of(g.preempt_slice, "x"))
    assert.are.equal(default, g.preempt_slice())
  end)

  it("a short slice makes computing goroutines take turns often", function()
    g.preempt_slice(0.002)
    -- 0.3 s of computing each: about 200 turns at 2 ms; a loaded machine
    -- gets fewer, never as few as a long slice gives.
    assert.is_true(switches(0.3) >= 10)
  end)

  it("a long slice lets a goroutine compute without being preempted", function()
    g.preempt_slice(5)
    assert.are.equal(1, switches(0.3))
  end)
end)
