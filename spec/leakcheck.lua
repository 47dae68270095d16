-- Loaded by spec/run.sh as busted's --helper: after every test, g.leaks()
-- collects the leaks the runtime finds in the suite's own state. A leak that
-- no spec asked for (they call g.leaks() themselves) is a false report, or a
-- spec that leaks by mistake: both fail the run, with the name of the test
-- that left it and the report.
local busted = require "busted"
local g = require "goroutines"

local found = {}

busted.subscribe({ "test", "end" }, function (element)
  for _, r in ipairs(g.leaks()) do
    found[#found + 1] = string.format(
      "%s: leaked goroutine %d [%s] at %s, created at %s",
      element.name, r.id, r.wait, r.where, r.created)
  end
  return nil, true
end)

busted.subscribe({ "exit" }, function ()
  if #found > 0 then
    io.stderr:write("leak check: ", #found, " unexpected leak(s)\n",
                    table.concat(found, "\n"), "\n")
    io.stderr:flush()
    os.exit(3)
  end
  return nil, true
end)
