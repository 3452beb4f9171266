-- moongate.json: JSON for Lua, exact where cJSON is not (int64, shortest floats, \u0000,
-- invalid UTF-8), with a null sentinel and array/object marks so decode(encode(x)) round-trips.
local ffi = require "ffi"
local core = require "moongate._json"

local setmetatable, getmetatable, type, tostring = setmetatable, getmetatable, type, tostring
local error = error

pcall(ffi.cdef, [[
long long strtoll(const char *nptr, char **endptr, int base);
]])

local C = ffi.C
local int64_t = ffi.typeof("int64_t")
local uint64_t = ffi.typeof("uint64_t")

local array_mt = { __name = "json.array" }
local object_mt = { __name = "json.object" }

-- Decoder hook: digits of an integer beyond 2^53 (already checked to fit int64) -> int64 cdata.
local function int64_from_string(s)
  return int64_t(C.strtoll(s, nil, 10))
end

-- Encoder hook: int64/uint64 cdata -> its exact decimal digits; other number cdata (int32_t,
-- double, float...) -> a Lua number; anything else (pointers, arrays, structs) -> nil.
local function cdata_to_string(v)
  if ffi.istype(int64_t, v) then
    return (tostring(v):sub(1, -3)) -- "123LL"
  elseif ffi.istype(uint64_t, v) then
    return (tostring(v):sub(1, -4)) -- "123ULL"
  end
  return tonumber(v)
end

local encode, decode = core.new(array_mt, object_mt, int64_from_string, cdata_to_string)

local M = {
  -- JSON null: a lightuserdata NULL (as lua-cjson's), kept in arrays and objects.
  null = core.null,
  encode = encode,
  decode = decode,
  array_mt = array_mt,
  object_mt = object_mt,
}

--- json.array(t?) -> t: mark t (or a new table) as an array, so an empty one prints [].
function M.array(t)
  t = t or {}
  if type(t) ~= "table" then error("json.array: expected a table, got " .. type(t), 2) end
  return setmetatable(t, array_mt)
end

--- json.object(t?) -> t: mark t (or a new table) as an object, so an empty one prints {}
--- even after json.array marks elsewhere, and number keys print as strings.
function M.object(t)
  t = t or {}
  if type(t) ~= "table" then error("json.object: expected a table, got " .. type(t), 2) end
  return setmetatable(t, object_mt)
end

--- json.is_array(t) -> boolean: true when t carries the array mark (decoded arrays do).
function M.is_array(t)
  return type(t) == "table" and getmetatable(t) == array_mt
end

--- json.encode_sorted(v) -> string: JSON text with object keys sorted, for output a person
--- or a test compares (policies, tool-call arguments), where encode's order is the table's.
local function is_sequence(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n == #t
end

local function encode_sorted(v)
  if type(v) ~= "table" or next(v) == nil then return encode(v) end
  local out = {}
  if getmetatable(v) == array_mt or (getmetatable(v) ~= object_mt and is_sequence(v)) then
    for i = 1, #v do out[i] = encode_sorted(v[i]) end
    return "[" .. table.concat(out, ",") .. "]"
  end
  local names = {}
  for k in pairs(v) do names[#names + 1] = tostring(k) end
  table.sort(names)
  for i, k in ipairs(names) do
    local val = v[k]
    if val == nil then val = v[tonumber(k)] end
    out[i] = encode(k) .. ":" .. encode_sorted(val)
  end
  return "{" .. table.concat(out, ",") .. "}"
end
M.encode_sorted = encode_sorted

return M
