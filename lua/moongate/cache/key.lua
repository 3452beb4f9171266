-- moongate.cache.key: what makes two chat requests the same request — the canonical form of a
-- request (key order independent) and its hash — and whether its answer may be reused at all.
local json = require "moongate.json"
local crypto = require "moongate.crypto"

local M = {}

-- Request fields that do not change the answer: how it is delivered and who is tracked. Every
-- other field (temperature, top_p, seed, max_tokens, stop, response_format, n, tools,
-- tool_choice, logit_bias, unknown ones...) is part of the key, so a new parameter can only
-- make the cache miss, never answer the wrong request.
M.DELIVERY = { stream = true, stream_options = true, user = true, store = true, metadata = true }

--- key.canonical(doc, context) -> string: the request's answer-changing fields and the context
--- that resolved it (tenant, routing policy version, flags...), as JSON with sorted keys.
function M.canonical(doc, context)
  local fields = {}
  for k, v in pairs(doc) do
    if not M.DELIVERY[k] then fields[k] = v end
  end
  return json.encode_sorted({ request = fields, context = context })
end

--- key.hash(doc, context) -> 64 hex digits
function M.hash(doc, context)
  return crypto.sha256_hex(M.canonical(doc, context))
end

--- key.reproducible(doc, idempotent) -> true | false, why: may an earlier answer stand for this
--- one? Yes with temperature 0 or a seed (the client asked for a repeatable answer), or on a
--- model the config marks idempotent (classification, extraction).
function M.reproducible(doc, idempotent)
  if idempotent then return true end
  if doc.temperature == 0 then return true end
  if type(doc.seed) == "number" then return true end
  return false, "not reproducible"
end

--- key.cache_control(header) -> no_cache, no_store: the client's Cache-Control directives
--- (no-cache: do not answer from the cache, but keep the new answer; no-store: neither).
function M.cache_control(h)
  if type(h) ~= "string" then return false, false end
  local no_cache, no_store = false, false
  for tok in h:lower():gmatch("[^,%s]+") do
    local name = tok:match("^([^=]+)")
    if name == "no-cache" then no_cache = true elseif name == "no-store" then no_store = true end
  end
  return no_cache, no_store
end

--- key.namespace(tenant) -> a short fixed-width id for the tenant's part of the store
function M.namespace(tenant)
  return crypto.sha256_hex("tenant\0" .. (tenant or "")):sub(1, 16)
end

return M
