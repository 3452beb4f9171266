-- moongate.edge.auth: the API key -> tenant and its policy. Keys come from the config's map
-- (zero setup) or the sqlite tenants store (`moongate tenants`, `moongate keys`); admin routes
-- need the admin key. Also checks the models a tenant's policy allows.
local errors = require "moongate.gateway.errors"

local M = {}
local Stage = {}
Stage.__index = Stage

local function presented_key(h)
  local a = h.authorization
  if a then
    local k = a:match("^[Bb]earer%s+(%S+)%s*$")
    if k then return k end
  end
  return h["x-api-key"]
end
M.presented_key = presented_key

local WWW = "Bearer"

local function unauthorized(msg)
  return errors.response(401, msg, "invalid_api_key", { ["www-authenticate"] = WWW })
end

--- new(config, gw) -> stage | nil (no auth configured: every route is open)
function M.new(config, gw)
  local auth = config.auth
  if auth == nil then return nil end
  if type(auth) ~= "table" then return nil, "auth must be a table" end
  if auth.keys ~= nil and type(auth.keys) ~= "table" then return nil, "auth.keys must map keys to tenant names" end
  local st = setmetatable({ keys = auth.keys or {}, policies = config.tenants or {},
                            admin_key = auth.admin_key or os.getenv("MOONGATE_ADMIN_KEY") }, Stage)
  if st.admin_key == "" then st.admin_key = nil end
  if type(st.policies) ~= "table" then return nil, "tenants must map tenant names to policies" end
  if auth.db then
    local tenants = require "moongate.tenants"
    local path = require("moongate.gateway").resolve(auth.db, config)
    local store, err = tenants.open(path, { cache_ttl = auth.cache_ttl })
    if not store then return nil, "auth.db: " .. tostring(err) end
    st.store = store
  end
  return st
end

function Stage:is_admin(key)
  if self.admin_key and require("moongate.crypto").equal(key, self.admin_key) then return true end
  return self.store ~= nil and self.store:check_admin(key) == true
end

-- The tenant behind a key: id, policy | nil, error response
function Stage:tenant_of(key)
  local name = self.keys[key]
  if name then
    if type(name) ~= "string" then name = tostring(name) end
    return name, self.policies[name]
  end
  local store = self.store
  if store then
    local t, reason = store:lookup(key)
    if t then return t.id, t.policy end
    if reason == "disabled" then
      return nil, errors.response(403, "this tenant is disabled", "tenant_disabled")
    end
    if reason == "revoked" then return nil, unauthorized("this API key has been revoked") end
    if reason == "expired" then return nil, unauthorized("this API key has expired") end
  end
  return nil, unauthorized("a valid API key is required (Authorization: Bearer ...)")
end

function Stage:before(ctx)
  local key = presented_key(ctx.req.headers)
  if ctx.admin then
    if not key then return unauthorized("the admin key is required (Authorization: Bearer ...)") end
    if self:is_admin(key) then ctx.tenant = nil; ctx.is_admin = true; return nil end
    local t = self:tenant_of(key)
    if t then return errors.response(403, "this endpoint needs the admin key, not a tenant's", "admin_key_required") end
    return unauthorized("the admin key is required (Authorization: Bearer ...)")
  end
  if not key then return unauthorized("a valid API key is required (Authorization: Bearer ...)") end
  local id, policy = self:tenant_of(key)
  if not id then
    if self:is_admin(key) then
      return errors.response(403, "the admin key is for /admin only; use a tenant's key", "tenant_key_required")
    end
    return policy
  end
  ctx.tenant = id
  if policy then ctx.policy = policy end
  local allowed = policy and policy.models
  if allowed and (ctx.route == "chat" or ctx.route == "embeddings") then
    local doc = ctx:doc()
    local model = doc and doc.model
    if type(model) == "string" then
      local ok = false
      for i = 1, #allowed do if allowed[i] == model then ok = true; break end end
      if not ok then
        return errors.response(403, string.format("the model '%s' is not allowed for this tenant", model),
          "model_not_allowed")
      end
    end
  end
  return nil
end

return M
