-- moongate.gateway.usage: token accounting per provider and upstream model, summed across workers
-- in moongate.shared (a per-process table when the shared store is not built in).
local M = {}

local store

-- A per-process stand-in with the shared store's API.
local function local_store()
  local data = {}
  return {
    incr = function(k, by, init) data[k] = (data[k] or init or 0) + by; return data[k] end,
    get = function(k) return data[k] end,
    keys = function(prefix)
      local out = {}
      for k in pairs(data) do
        if not prefix or k:sub(1, #prefix) == prefix then out[#out + 1] = k end
      end
      return out
    end,
  }
end

local function open_store()
  if package.searchpath("moongate.shared", package.path) then
    local ok, shared = pcall(require, "moongate.shared")
    if ok and shared then return shared.dict and shared.dict("usage") or shared end
  end
  return local_store()
end

local function get_store()
  if not store then store = open_store() end
  return store
end

-- Keys per provider and model, built once; bounded, since a catch-all model passes client-chosen
-- names through.
local keys_cache, cached = {}, 0
local function keys_for(provider, model)
  local id = provider .. "\0" .. model
  local k = keys_cache[id]
  if not k then
    local p = "usage:" .. provider .. ":" .. model .. ":"
    k = { req = p .. "requests", pt = p .. "prompt_tokens", ct = p .. "completion_tokens" }
    if cached >= 1024 then keys_cache, cached = {}, 0 end
    keys_cache[id] = k
    cached = cached + 1
  end
  return k
end

local context = require("moongate").context

-- record(provider, model, usage): usage is OpenAI's usage object (or nil: the request still counts).
-- The request's edge context (quota reconciliation, spans) gets the same figures.
function M.record(provider, model, usage)
  local s = get_store()
  local k = keys_for(provider, model)
  s.incr(k.req, 1, 0)
  local c = context()
  local e = c and c.edge
  if e then e.provider, e.model = provider, model end
  if type(usage) == "table" then
    local pt, ct = tonumber(usage.prompt_tokens), tonumber(usage.completion_tokens)
    if pt then s.incr(k.pt, pt, 0) end
    if ct then s.incr(k.ct, ct, 0) end
    if e then
      local u = e.usage
      u.calls = u.calls + 1
      if pt then u.prompt_tokens = u.prompt_tokens + pt; u.reported = true end
      if ct then u.completion_tokens = u.completion_tokens + ct end
    end
  end
end

-- totals() -> { [provider] = { [model] = { requests =, prompt_tokens =, completion_tokens = } } }
function M.totals()
  local s = get_store()
  local out = {}
  local keys = s.keys and s.keys("usage:") or {}
  for _, key in ipairs(keys) do
    local provider, model, field = key:match("^usage:([^:]+):(.+):([%a_]+)$")
    if provider then
      out[provider] = out[provider] or {}
      out[provider][model] = out[provider][model] or {}
      out[provider][model][field] = tonumber(s.get(key)) or 0
    end
  end
  return out
end

return M
