-- The embedding API (goroutines.h): its C hosts are built by make
-- (spec/ctest/*.c, examples/host/*.c) and run here, each in a process of
-- its own, from /tmp and without LUA_PATH or LUA_CPATH.
local h = require "helpers"

local function lines(s)
  local t = {}
  for l in s:gmatch("[^\n]*") do t[#t + 1] = l end
  if t[#t] == "" then t[#t] = nil end
  return t
end

-- Runs a C test and checks that it exited 0 with exactly these lines.
local function expect(name, want, args, limit)
  local out, err, code = h.run_host("ctest", name, args, limit)
  assert.are.equal(0, code, "exit status " .. code .. "; stderr:\n" .. err)
  assert.are.same(want, lines(out))
  return out, err
end

describe("embedding", function()
  it("exports only goroutines.h's functions, from the module and the library", function()
    local build = assert(os.getenv("GR_BUILD"))
    local ok, how, code = os.execute(string.format(
      "sh tools/checksymbols.sh '%s/goroutines/core.so' '%s/libgoroutines.so'",
      build, build))
    assert.is_true(ok, "checksymbols: " .. tostring(how) .. " " .. tostring(code))
  end)

  it("gr_open loads the runtime into a host's state, and its workers find it", function()
    expect("open", {
      "true\tfunction\tfunction",
      "got\t10", "got\t20", "got\t30",
      "parallel 3\ttrue",
      "closed",
    })
  end)

  it("GR_RUN_DEFAULT runs until the state's parallel goroutines have ended too", function()
    expect("runparallel", { "quiet worker done", "gr_run returned",
                            "handler: goroutine 3", "gr_run returned" })
  end)

  it("gr_run and gr_resume are refused from inside gr_run, as from a finalizer between goroutines", function()
    expect("reenter", { "sum\t210", "refused some, accepted 0",
                        "gr_resume refused some, accepted 0" })
  end)

  it("a goroutine on a host channel waits; other deadlocks are still reported", function()
    expect("hostwait", {
      "report lists goroutine 1: no, goroutine 2: yes",
      "plain wait, host channels elsewhere: error: all goroutines are asleep - deadlock!",
      "main:\tfalse\tall goroutines are asleep - deadlock!",
      "received\t7\ttrue",
      "host channel wait: ok",
      "received\t7\ttrue",
      "received, then a plain wait: error: all goroutines are asleep - deadlock!",
      "selected\t7",
      "selected, then a plain wait: error: all goroutines are asleep - deadlock!",
      "main received\t7\ttrue",
      "main:\tfalse\tall goroutines are asleep - deadlock!",
    })
  end)

  it("a host thread may release a host channel while others wait on it", function()
    expect("hostrelease", { "timeouts 1 1", "send 1", "received 1" })
  end)

  it("gr_set_worker_init hands each worker an f with its own ud", function()
    expect("workerinit", { "worker inits: one a state at least, torn: 0" })
  end)

  it("gr_set_preempt_slice sets the slice that g.preempt_slice reads", function()
    expect("slice", { "0.01", "0.002" })
  end)

  it("uncaught errors go to the host's handler, or to main; lua_close never exits", function()
    local _, err = expect("errors", {
      "handler: goroutine 2: boom",
      "main goes on",
      "worker says\t5\ttrue",
      "handler: goroutine 3: far",
      "handled before close: 2",
      "handler: goroutine 4: late",
      "handled: 3, worker states: 1",
      "false\tgoroutine 5: boom",
      "closed without exiting",
    })
    assert.are.equal("", err)
  end)

  it("a host drives the scheduler with gr_go, gr_run and the backend fd", function()
    expect("run", {
      "pingpong: 20000",
      "under 2000 calls: yes",
      "timer pending: yes",
      "slept",
      "from the worker: late",
      "waited in poll: yes",
      "goroutine 7: boom",
      "all goroutines are asleep - deadlock!",
    })
  end)

  it("host channels carry host values between host threads and goroutines", function()
    local chanerr = "cannot send a %s on a host channel (it carries nil, "
                    .. "booleans, numbers and strings)"
    expect("hostchan", {
      "self nil", "self boolean 1", "self integer -42", "self number 2.5",
      "self string 3 a\\0b", "self string 0 (empty)",
      "true\tfalse\tbad argument #1 to 'check' (not a host channel (made by gr_chan_new))",
      "false\tbad argument #1 to 'check' (goroutines.chan expected, got number)",
      "false\t" .. chanerr:format("table"),
      "false\t" .. chanerr:format("function"),
      "count integer 6000",
      "sum integer 6006003000",
      "expected 6006003000",
      "from lua string 7 [dbl 3.0]",
      "from lua number 3",
      "lua got\tthanks\ttrue",
      "closed:\tnil\tfalse",
      "after close string 4 [kept]",
      "after close integer 7",
    })
  end)

  it("host strings of every length around the recycled size arrive byte-exact", function()
    expect("hoststrings", { "received\t3000\twrong\t0", "then\tnil\tnil\tfalse" })
  end)

  it("gr_resume parks a host's coroutine that blocks, as a goroutine with a stable id", function()
    expect("resume", {
      "yielded 42",
      "parked: yes, at once: yes",
      "2 cannot resume a coroutine that waits in a goroutine",
      "woke with\tA\ttrue",
      "goroutine 3: after the sleep",
      "same id after a yield\ttrue\ttrue",
      "same id after a park\ttrue",
      "the report names it: yes",
      "from a goroutine\t-4",
      "GR_EINVAL is -4",
    })
  end)

  it("lua_close of a busy embedded state returns soon and keeps host channels", function()
    local _, err = expect("shutdown", { "closed within 5 s: yes", "host thread: 7" })
    assert.are.equal("", err)
  end)

  it("lua_close returns soon with a worker inside a C call, and leaves it", function()
    local fifo = os.tmpname()
    local _, err = expect("stuck", { "closed within 3 s: yes", "its thread ended: yes" },
                          { fifo })
    os.remove(fifo)
    err = err:gsub("==%d+==[^\n]*\n", "")   -- valgrind's own lines
    -- What the goroutine raised once its call returned is printed, not
    -- handed to the host that is gone.
    assert.are.equal("goroutines: 1 worker thread still inside a C call at exit: "
                     .. "left running, its state not freed\n"
                     .. "goroutine 2: " .. fifo .. ":2: unexpected symbol near <eof>\n"
                     .. "stack traceback:\n\t[C]: in function 'dofile'\n",
                     err:match("^.-dofile'\n"))
  end)

  it("g.net works in a state a poll-loop host drives", function()
    expect("netpoll", { "echoed: HELLO" })
  end)

  it("gr_set_loop runs the goroutines from the host's own libuv loop", function()
    local out, err, code = h.run_host("ctest", "loop")
    assert.are.equal(0, code, "exit status " .. code .. "; stderr:\n" .. err)
    local got = lines(out)
    -- The goroutines' lines come as their timers and the host thread say;
    -- the host's own lines close the run.
    assert.are.same({ "uv_run returned, the host's timer ran: yes", "loop closed" },
                    { got[#got - 1], got[#got] })
    table.sort(got)
    assert.are.same({
      "from the host thread\t99\ttrue",
      "handler: goroutine 5: boom",
      "loop closed",
      "pingpong\t1000",
      "tick\t1", "tick\t2", "tick\t3",
      "uv_run returned, the host's timer ran: yes",
    }, got)
  end)

  it("gr_set_loop before gr_open; without a handler an error stops the loop for gr_run", function()
    local out, err, code = h.run_host("ctest", "loopopen")
    assert.are.equal(0, code, "exit status " .. code .. "; stderr:\n" .. err)
    local got = lines(out)
    assert.are.same({ "uv_run returned", "loop closed" }, { got[#got - 1], got[#got] })
    -- The first tick may come before the loop stops, or after.
    table.sort(got)
    assert.are.same({
      "after the stop: GR_ERROR goroutine 3: boom",
      "loop closed",
      "tick\t1", "tick\t2", "tick\t3",
      "uv_run returned",
    }, got)
  end)

  describe("examples/host", function()
    local function example(name)
      local out, err, code = h.run_host("examples", name)
      assert.are.equal(0, code, "exit status " .. code .. "; stderr:\n" .. err)
      return lines(out)
    end

    it("frame.c: goroutines advance within frames, timers fire, computing is preempted", function()
      local got = example("frame")
      -- The goroutine that computes ends among the ticks, where depends on
      -- the machine: every line is there once, the ticks in order.
      local ticks = {}
      for _, l in ipairs(got) do
        if l:match("^tick") then ticks[#ticks + 1] = l end
      end
      assert.are.same({ "tick\t1", "tick\t2", "tick\t3" }, ticks)
      table.sort(got)
      assert.are.same({
        "frames: under 600", "pings: 5000", "primes below 100000:\t9592",
        "tick\t1", "tick\t2", "tick\t3",
      }, got)
    end)

    it("poll.c: a poll loop wakes for the runtime's fd and timers", function()
      assert.are.same({
        "reply: 5 bytes: HELLO",
        "reply: 9 bytes: POLL LOOP",
        "reply: 3 bytes: BYE",
        "replies: 3",
      }, example("poll"))
    end)

    it("feed.c: host threads feed parallel goroutines over a host channel", function()
      assert.are.same({ "40000 items, 435560 bytes" }, example("feed"))
    end)
  end)
end)
