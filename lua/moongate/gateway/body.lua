-- moongate.gateway.body: edits to a request body that keep the client's bytes where possible.
-- The upstream gets the client's JSON byte for byte, except the top-level fields moongate sets.
local json = require "moongate.json"

local M = {}

local find, sub = string.find, string.sub

-- Where the value of a top-level "model" string sits in raw: s, e (inside the quotes), or nil
-- when it is not a plain string appearing exactly once (then the caller re-encodes).
-- A "model" key inside a JSON string cannot match: its quotes would be escaped.
local function model_span(raw)
  local _, e1 = find(raw, '"model"%s*:%s*"')
  if not e1 then return nil end
  if find(raw, '"model"%s*:', e1 + 1) then return nil end
  local close = find(raw, '"', e1 + 1, true)
  if not close then return nil end
  local value = sub(raw, e1 + 1, close - 1)
  if find(value, "\\", 1, true) then return nil end
  return e1 + 1, close - 1
end
M.model_span = model_span

-- rewrite(raw, doc, set) -> body string. set: top-level key -> value (json-encodable). A key absent
-- from doc is inserted after the opening brace; "model" is spliced in place; anything else (or
-- anything unusual) re-encodes doc with the changes applied.
function M.rewrite(raw, doc, set)
  local prefix, reencode = nil, false
  local ms, me
  for k, v in pairs(set) do
    if doc[k] == v then
      -- nothing to change
    elseif doc[k] == nil then
      local ev = json.encode(v)
      prefix = (prefix or "") .. json.encode(k) .. ":" .. ev .. ","
    elseif k == "model" and type(v) == "string" and not ms then
      ms, me = model_span(raw)
      if not ms then reencode = true end
    else
      reencode = true
    end
  end
  if reencode then
    for k, v in pairs(set) do doc[k] = v end
    return (assert(json.encode(doc)))
  end
  local out = raw
  if ms then
    out = sub(out, 1, ms - 1) .. sub(json.encode(set.model), 2, -2) .. sub(out, me + 1)
  end
  if prefix then
    local brace = find(out, "{", 1, true)
    local rest = sub(out, brace + 1)
    if not find(rest, "^%s*}") then
      out = sub(out, 1, brace) .. prefix .. rest
    else
      out = sub(out, 1, brace) .. sub(prefix, 1, -2) .. rest
    end
  end
  return out
end

return M
