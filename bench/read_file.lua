-- read_file: g.os.read_file of a 100 MiB file, then g.os.open(path):lines()
-- over it, in MB/s (10^6 bytes a second). The file is made in /tmp first
-- (not timed; then in the page cache, as for Go) and removed at the end:
-- lines of 100 bytes, "line 00000001 " padded with x to 99, then "\n".
-- Same workload as go/read_file/main.go (os.ReadFile, bufio.Scanner with
-- Text(): a string per line, as lines() makes).
--
-- Usage: lua5.4 bench/read_file.lua [MiB, default 100]
-- Output: RESULT read_file read_file_MB_per_s <MB/s>
--         RESULT read_file lines_MB_per_s <MB/s>
local g = require "goroutines"

local mib = tonumber(arg and arg[1]) or 100
local nlines = mib * 1048576 // 100
local size = nlines * 100
local path = os.tmpname()

-- The file, written with Lua's io in blocks of 1,000 lines.
local f = assert(io.open(path, "wb"))
local block = {}
for i = 1, nlines do
  local s = ("line %08d "):format(i)
  block[#block + 1] = s .. ("x"):rep(99 - #s) .. "\n"
  if #block == 1000 or i == nlines then
    f:write(table.concat(block))
    block = {}
  end
end
f:close()

local t0 = g.time.now()
local data = assert(g.os.read_file(path))
local secs = g.time.since(t0)
assert(#data == size, "read_file read " .. #data .. " bytes")
data = nil
collectgarbage()
print(("RESULT read_file read_file_MB_per_s %.1f"):format(size / secs / 1e6))

t0 = g.time.now()
local file = assert(g.os.open(path))
local n, bytes = 0, 0
for line in file:lines() do
  n = n + 1
  bytes = bytes + #line + 1
end
file:close()
secs = g.time.since(t0)
assert(n == nlines and bytes == size, "lines read " .. n .. " lines")
print(("RESULT read_file lines_MB_per_s %.1f"):format(size / secs / 1e6))
os.remove(path)
