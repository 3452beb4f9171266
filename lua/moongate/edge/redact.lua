-- moongate.edge.redact: PII out of the prompt before it leaves for a provider, by the tenant's
-- policy (or the config's `redaction` default): masked, replaced by placeholders that are put
-- back into a non-streamed answer for the same caller, or the request refused.
local errors = require "moongate.gateway.errors"
local json = require "moongate.json"

local M = {}
local Stage = {}
Stage.__index = Stage

--- new(config, gw) -> stage | nil (no redaction default and no tenant policies that could ask for it)
function M.new(config, gw)
  local any = config.redaction ~= nil or (config.auth and config.auth.db) ~= nil
  for _, p in pairs(config.tenants or {}) do any = any or (type(p) == "table" and p.redaction ~= nil) end
  if not any then return nil end
  return setmetatable({ pii = require "moongate.pii", default = config.redaction }, Stage)
end

local function input_texts(doc)
  local input = doc.input
  if type(input) == "string" then return { input }, true end
  return type(input) == "table" and input or {}, false
end

function Stage:before(ctx)
  local policy = ctx.policy.redaction or self.default
  if not policy or policy.mode == nil or policy.mode == "off" then return nil end
  local route = ctx.route
  if route ~= "chat" and route ~= "embeddings" then return nil end
  local doc = ctx:doc()
  if not doc then return nil end
  local pii = self.pii
  local map = policy.mode == "placeholder" and {} or nil
  local n, findings
  if route == "chat" then
    if type(doc.messages) ~= "table" then return nil end
    local _
    n, _, findings = pii.redact_messages(doc.messages, policy, map)
  else
    local texts, single = input_texts(doc)
    n = 0
    for i, s in ipairs(texts) do
      if type(s) == "string" then
        local out, c, f = pii.redact(s, policy, map)
        if not out then n, findings = nil, f; break end
        texts[i], n = out, n + c
      end
    end
    if n and single then doc.input = texts[1] end
  end
  if not n then
    local kinds, seen = {}, {}
    for _, f in ipairs(findings or {}) do
      if not seen[f.type] then seen[f.type] = true; kinds[#kinds + 1] = f.type end
    end
    return errors.response(400, "the request contains personal data this tenant may not send (" ..
      table.concat(kinds, ", ") .. ")", "pii_detected")
  end
  ctx.redactions = n
  if n > 0 then
    ctx:set_doc(doc)
    ctx:header("x-moongate-redactions", tostring(n))
    if map and next(map) ~= nil then ctx.pii_map = map end
  end
  return nil
end

-- A non-streamed chat answer gets the caller's own values back in place of the placeholders.
function Stage:response(ctx, r)
  local map = ctx.pii_map
  if not map or ctx.route ~= "chat" or r.status ~= 200 or type(r.body) ~= "string" then return r end
  local doc = json.decode(r.body)
  if type(doc) ~= "table" or type(doc.choices) ~= "table" then return r end
  for _, c in ipairs(doc.choices) do
    local m = type(c) == "table" and c.message
    if type(m) == "table" and type(m.content) == "string" then m.content = self.pii.restore(m.content, map) end
  end
  r.body = assert(json.encode(doc))
  return r
end

return M
