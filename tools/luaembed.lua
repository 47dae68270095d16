-- Writes a Lua source file as a C header holding its bytes, for the
-- runtime to load without the file (gr_open's package.preload):
--   lua5.4 tools/luaembed.lua NAME < in.lua > out.h
-- defines `static const char NAME[]` (NUL-terminated) and NAME_len.
local name = assert(arg[1], "usage: luaembed.lua NAME < in.lua > out.h")
local src = io.read("a")
local out = { ("/* Generated from lua/goroutines/init.lua by tools/luaembed.lua:"
               .. " do not edit. */\nstatic const char %s[] = {\n"):format(name) }
for i = 1, #src, 16 do
  local bytes = {}
  for j = i, math.min(i + 15, #src) do bytes[#bytes + 1] = src:byte(j) end
  out[#out + 1] = "  " .. table.concat(bytes, ",") .. ",\n"
end
out[#out + 1] = ("  0\n};\n#define %s_len (sizeof(%s) - 1)\n"):format(name, name)
io.write(table.concat(out))
