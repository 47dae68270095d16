-- cat with a heartbeat: copies stdin to stdout through g.os.stdin and
-- g.os.stdout, while a ticker goroutine reports on stderr, every second,
-- how many lines went through. Waiting for input blocks only the copying
-- goroutine, so the reports go on while stdin is idle. Ends at EOF.
--
--   (for i in 1 2 3; do echo "line $i"; sleep 1; done) | lua5.4 examples/cat_stdin.lua
--   lua5.4 examples/cat_stdin.lua < /etc/passwd > copy.txt
local g = require "goroutines"

local lines, bytes = 0, 0
local copied = g.chan()

-- Copies line by line, "L" keeping each newline; a failed write (stdout
-- closed by its reader: "write /dev/stdout: broken pipe") ends the copy.
g.go(function()
  for line in g.os.stdin:lines("L") do
    local ok, err = g.os.stdout:write(line)
    if not ok then
      g.os.stderr:write("cat_stdin: ", err, "\n")
      break
    end
    lines, bytes = lines + 1, bytes + #line
  end
  copied:close()
end)

local t0 = g.time.now()
local ticker = g.time.ticker(1)
local running = true
while running do
  g.select {
    ticker.c:on_recv(function()
      g.os.stderr:write(("cat_stdin: %.0f s, %d lines, %d bytes\n")
                        :format(g.time.since(t0), lines, bytes))
    end),
    copied:on_recv(function() running = false end),
  }
end
ticker:stop()
g.os.stderr:write(("cat_stdin: done, %d lines, %d bytes\n"):format(lines, bytes))
