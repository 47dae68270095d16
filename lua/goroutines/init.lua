-- goroutines: Go's concurrency model for Lua 5.4.
-- The C core (goroutines.core) does the work; this file is the public face:
-- it re-exports the core's functions and makes the module callable, so that
-- g(f, ...) is g.go(f, ...).
local core = require "goroutines.core"

local M = {}
for name, value in pairs(core) do
  M[name] = value
end

local go = core.go
return setmetatable(M, {
  __call = function(_, f, ...)
    return go(f, ...)
  end,
})
