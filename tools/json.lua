-- tools/json.lua -- a small JSON reader (RFC 8259) for the trace tools and
-- spec/trace_spec.lua: decode(text) returns the value, or raises
-- "json: <what> at byte N". Objects become tables, arrays sequences (with
-- n = their length, so that a null element keeps its place), null is
-- json.null, numbers are Lua numbers (integers when they are written so).

local json = {}

json.null = setmetatable({}, { __tostring = function () return "null" end })

local byte, sub, find, char = string.byte, string.sub, string.find, utf8.char

local escapes = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b",
                  f = "\f", n = "\n", r = "\r", t = "\t" }

local function fail (what, pos)
  error(string.format("json: %s at byte %d", what, pos), 0)
end

local value

local function skip (s, pos)
  return find(s, "[^ \t\r\n]", pos) or #s + 1
end

local function str (s, pos)   -- pos: after the opening quote
  local parts, n = {}, 0
  while true do
    local a, b = find(s, '^[^"\\%c]*', pos)
    n = n + 1
    parts[n] = sub(s, a, b)
    pos = b + 1
    local c = sub(s, pos, pos)
    if c == '"' then return table.concat(parts), pos + 1 end
    if c ~= "\\" then fail(c == "" and "unfinished string"
                           or "control character in string", pos) end
    local e = sub(s, pos + 1, pos + 1)
    if escapes[e] then
      n = n + 1
      parts[n] = escapes[e]
      pos = pos + 2
    elseif e == "u" then
      local hex = sub(s, pos + 2, pos + 5)
      if not find(hex, "^%x%x%x%x$") then fail("bad \\u escape", pos) end
      local cp = tonumber(hex, 16)
      pos = pos + 6
      if cp >= 0xD800 and cp <= 0xDBFF and
         find(s, "^\\u[dD][c-fC-F]%x%x", pos) then
        cp = 0x10000 + (cp - 0xD800) * 0x400 +
             (tonumber(sub(s, pos + 2, pos + 5), 16) - 0xDC00)
        pos = pos + 6
      end
      n = n + 1
      parts[n] = char(cp)
    else
      fail("bad escape", pos)
    end
  end
end

local function num (s, pos)
  local a, b = find(s, "^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
  local text = a and sub(s, a, b)
  if not text or not find(text, "^-?0$") and not find(text, "^-?[1-9]")
     and not find(text, "^-?0[.eE]") then
    fail("bad number", pos)
  end
  local v = math.tointeger(tonumber(text)) or tonumber(text)
  if v == nil then fail("bad number", pos) end
  return v, b + 1
end

local function array (s, pos)   -- pos: after "["
  local t, n = {}, 0
  pos = skip(s, pos)
  if sub(s, pos, pos) == "]" then t.n = 0 return t, pos + 1 end
  while true do
    local v
    v, pos = value(s, pos)
    n = n + 1
    t[n] = v
    pos = skip(s, pos)
    local c = sub(s, pos, pos)
    if c == "]" then t.n = n return t, pos + 1 end
    if c ~= "," then fail("',' or ']' expected", pos) end
    pos = pos + 1
  end
end

local function object (s, pos)   -- pos: after "{"
  local t = {}
  pos = skip(s, pos)
  if sub(s, pos, pos) == "}" then return t, pos + 1 end
  while true do
    pos = skip(s, pos)
    if sub(s, pos, pos) ~= '"' then fail("string key expected", pos) end
    local k
    k, pos = str(s, pos + 1)
    pos = skip(s, pos)
    if sub(s, pos, pos) ~= ":" then fail("':' expected", pos) end
    t[k], pos = value(s, pos + 1)
    pos = skip(s, pos)
    local c = sub(s, pos, pos)
    if c == "}" then return t, pos + 1 end
    if c ~= "," then fail("',' or '}' expected", pos) end
    pos = pos + 1
  end
end

function value (s, pos)
  pos = skip(s, pos)
  local c = byte(s, pos)
  if c == 34 then return str(s, pos + 1)            -- "
  elseif c == 123 then return object(s, pos + 1)    -- {
  elseif c == 91 then return array(s, pos + 1)      -- [
  elseif c == 45 or (c and c >= 48 and c <= 57) then return num(s, pos)
  elseif sub(s, pos, pos + 3) == "true" then return true, pos + 4
  elseif sub(s, pos, pos + 4) == "false" then return false, pos + 5
  elseif sub(s, pos, pos + 3) == "null" then return json.null, pos + 4
  end
  fail(c and "unexpected character" or "unexpected end", pos)
end

function json.decode (s)
  local v, pos = value(s, 1)
  pos = skip(s, pos)
  if pos <= #s then fail("trailing characters", pos) end
  return v
end

return json
