-- moongate.eval.schema: the JSON Schema subset golden sets use to check structured answers —
-- type, required, properties, additionalProperties = false, items, enum, minLength/maxLength.
local json = require "moongate.json"

local M = {}

local format = string.format

local KNOWN = { type = true, required = true, properties = true, additionalProperties = true, items = true,
                enum = true, minLength = true, maxLength = true, minimum = true, maximum = true,
                description = true, title = true, ["$schema"] = true }
local TYPES = { object = true, array = true, string = true, number = true, integer = true, boolean = true, null = true }

--- schema.check_schema(s) -> true | nil, err: is s a schema this validator understands?
function M.check_schema(s, where)
  where = where or "schema"
  if type(s) ~= "table" or json.is_array(s) then return nil, where .. " must be an object" end
  for k in pairs(s) do
    if not KNOWN[k] then return nil, format("%s: unsupported keyword '%s'", where, tostring(k)) end
  end
  local types = type(s.type) == "table" and s.type or { s.type }
  for _, t in ipairs(types) do
    if not TYPES[t] then return nil, format("%s: unknown type '%s'", where, tostring(t)) end
  end
  if s.properties ~= nil then
    if type(s.properties) ~= "table" then return nil, where .. ".properties must be an object" end
    for k, sub in pairs(s.properties) do
      local ok, err = M.check_schema(sub, where .. ".properties." .. tostring(k))
      if not ok then return nil, err end
    end
  end
  if s.items ~= nil then
    local ok, err = M.check_schema(s.items, where .. ".items")
    if not ok then return nil, err end
  end
  if s.required ~= nil and type(s.required) ~= "table" then return nil, where .. ".required must be a list" end
  if s.enum ~= nil and type(s.enum) ~= "table" then return nil, where .. ".enum must be a list" end
  return true
end

local function type_of(v)
  if v == json.null then return "null" end
  local t = type(v)
  if t == "table" then
    if json.is_array(v) or #v > 0 then return "array" end
    return "object"
  end
  if t == "number" then return v % 1 == 0 and "integer" or "number" end
  return t
end

local function type_ok(want, got)
  return want == got or (want == "number" and got == "integer")
end

local function same(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) ~= "table" then return a == b end
  return json.encode_sorted(a) == json.encode_sorted(b)
end

--- schema.validate(value, s[, path]) -> true | nil, err ("$.answer: expected string, got number")
function M.validate(v, s, path)
  path = path or "$"
  local got = type_of(v)
  -- an empty decoded object carries no mark either way: it is an object or an array as asked
  if got == "object" and next(v) == nil and s.type == "array" then got = "array" end
  if s.type ~= nil then
    local types = type(s.type) == "table" and s.type or { s.type }
    local ok = false
    for _, t in ipairs(types) do if type_ok(t, got) then ok = true end end
    if not ok then return nil, format("%s: expected %s, got %s", path, table.concat(types, " or "), got) end
  end
  if s.enum then
    local ok = false
    for _, e in ipairs(s.enum) do if same(e, v) then ok = true end end
    if not ok then return nil, format("%s: not one of the allowed values", path) end
  end
  if got == "string" then
    if s.minLength and #v < s.minLength then return nil, format("%s: shorter than %d", path, s.minLength) end
    if s.maxLength and #v > s.maxLength then return nil, format("%s: longer than %d", path, s.maxLength) end
  elseif got == "number" or got == "integer" then
    if s.minimum and v < s.minimum then return nil, format("%s: under the minimum %s", path, tostring(s.minimum)) end
    if s.maximum and v > s.maximum then return nil, format("%s: over the maximum %s", path, tostring(s.maximum)) end
  elseif got == "object" then
    for _, k in ipairs(s.required or {}) do
      if v[k] == nil then return nil, format("%s: missing required property '%s'", path, k) end
    end
    for k, sub in pairs(s.properties or {}) do
      if v[k] ~= nil then
        local ok, err = M.validate(v[k], sub, path .. "." .. k)
        if not ok then return nil, err end
      end
    end
    if s.additionalProperties == false then
      for k in pairs(v) do
        if not (s.properties and s.properties[k]) then return nil, format("%s: unexpected property '%s'", path, tostring(k)) end
      end
    end
  elseif got == "array" and s.items then
    for i, x in ipairs(v) do
      local ok, err = M.validate(x, s.items, format("%s[%d]", path, i - 1))
      if not ok then return nil, err end
    end
  end
  return true
end

return M
