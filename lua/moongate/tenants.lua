-- moongate.tenants: tenants, their policies and their API keys in sqlite — the production
-- alternative to the config's `auth.keys` map. Keys are shown once and stored only as hashes.
--
-- A key reads `mg-<key id>-<secret>`: the id (8 hex digits, public) finds the row, the secret
-- (32 random bytes, base64url) is checked by comparing HMAC-SHA256(pepper, key) in constant
-- time; the pepper is random per store and never leaves it. Lookups are cached per worker for
-- cache_ttl seconds (default 2): a revocation or a disabled tenant takes effect within that.
local sqlite = require "moongate.sqlite"
local json = require "moongate.json"
local crypto = require "moongate.crypto"
local moongate = require "moongate"

local M = {}

local Store = {}
Store.__index = Store

local SCHEMA = [[
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tenants (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, policy TEXT NOT NULL DEFAULT '{}',
  disabled INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS keys (
  id TEXT PRIMARY KEY, tenant_id TEXT REFERENCES tenants (id), name TEXT NOT NULL DEFAULT '',
  hash BLOB NOT NULL, admin INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL,
  expires_at REAL, revoked_at REAL, replaced_by TEXT);
CREATE INDEX IF NOT EXISTS keys_tenant ON keys (tenant_id);
]]
M.SCHEMA_VERSION = "1"

-- ---- policy validation ------------------------------------------------------------------------

local QUOTA = { rpm = true, concurrent = true, tokens_in_per_min = true, tokens_out_per_min = true,
  tokens_in_per_day = true, tokens_out_per_day = true, spend_per_day = true, spend_per_month = true }
local CAPS = { max_input_tokens = true, max_output_tokens = true, on_exceed = true }
local REDACTION = { off = true, mask = true, placeholder = true, refuse = true }

local function list_of_strings(v, what)
  if type(v) ~= "table" then return nil, what .. " must be a list of names" end
  for _, s in ipairs(v) do if type(s) ~= "string" then return nil, what .. " must be a list of names" end end
  return true
end

local function numbers(t, allowed, what)
  if type(t) ~= "table" then return nil, what .. " must be a table" end
  for k, v in pairs(t) do
    if not allowed[k] then return nil, what .. ": unknown field '" .. tostring(k) .. "'" end
    if k ~= "on_exceed" and (type(v) ~= "number" or v < 0) then
      return nil, what .. "." .. k .. " must be a number >= 0"
    end
  end
  return true
end

--- tenants.validate_policy(policy) -> true | nil, err: unknown fields are errors (typos caught).
function M.validate_policy(p)
  if type(p) ~= "table" then return nil, "a policy must be a table" end
  for k, v in pairs(p) do
    local ok, err = true, nil
    if k == "models" or k == "pipelines" or k == "tools" then ok, err = list_of_strings(v, k)
    elseif k == "flags" then ok = type(v) == "table"; err = "flags must map flag names to values"
    elseif k == "quota" then ok, err = numbers(v, QUOTA, "quota")
    elseif k == "caps" then
      ok, err = numbers(v, CAPS, "caps")
      if ok and v.on_exceed ~= nil and v.on_exceed ~= "refuse" and v.on_exceed ~= "truncate" then
        ok, err = nil, "caps.on_exceed must be \"refuse\" or \"truncate\""
      end
    elseif k == "redaction" then
      ok = type(v) == "table" and REDACTION[v.mode] ~= nil
      err = "redaction must be { mode = \"off\"|\"mask\"|\"placeholder\"|\"refuse\" }"
      if ok then
        for rk in pairs(v) do
          if rk ~= "mode" then ok, err = nil, "redaction: unknown field '" .. tostring(rk) .. "'"; break end
        end
      end
    elseif k == "log_raw" then ok = type(v) == "boolean"; err = "log_raw must be true or false"
    else ok, err = nil, "unknown policy field '" .. tostring(k) .. "'" end
    if not ok then return nil, err end
  end
  return true
end

-- ---- the store --------------------------------------------------------------------------------

local function exec_rows(self, sql, ...)
  local st = self.stmts[sql]
  if not st then
    local err
    st, err = self.db:prepare(sql)
    if not st then error("tenants: " .. tostring(err), 2) end
    self.stmts[sql] = st
  end
  st:reset()
  if select("#", ...) > 0 then st:bind(...) end
  return assert(st:all())
end

--- tenants.open(path, { cache_ttl = 2 }) -> store | nil, err (creates the schema)
function M.open(path, opts)
  opts = opts or {}
  if type(path) ~= "string" then error("tenants.open: path must be a string", 2) end
  local ttl = opts.cache_ttl
  if ttl ~= nil and (type(ttl) ~= "number" or ttl < 0) then return nil, "cache_ttl must be a number of seconds >= 0" end
  local db, err = sqlite.open(path)
  if not db then return nil, err end
  local ok, serr = db:exec(SCHEMA)
  if not ok then db:close(); return nil, serr end
  local self = setmetatable({ db = db, stmts = {}, cache = {}, cache_ttl = opts.cache_ttl or 2 }, Store)
  local rows = exec_rows(self, "SELECT key, value FROM meta")
  local meta = {}
  for _, r in ipairs(rows) do meta[r.key] = r.value end
  if meta.schema_version and meta.schema_version ~= M.SCHEMA_VERSION then
    db:close()
    return nil, "tenants: schema version " .. meta.schema_version .. " is not supported"
  end
  if not meta.pepper then
    meta.pepper = crypto.hex(crypto.random(32))
    exec_rows(self, "INSERT OR IGNORE INTO meta (key, value) VALUES ('pepper', ?), ('schema_version', ?)",
      meta.pepper, M.SCHEMA_VERSION)
    meta.pepper = exec_rows(self, "SELECT value FROM meta WHERE key = 'pepper'")[1].value
  end
  self.pepper = meta.pepper
  return self
end

function Store:close()
  for _, st in pairs(self.stmts) do st:finalize() end
  self.stmts = {}
  self.db:close()
end

local function record(row)
  if not row then return nil end
  return { id = row.id, name = row.name, disabled = row.disabled == 1, policy = json.decode(row.policy) or {},
           created_at = row.created_at }
end

--- store:add_tenant(id, { name =, policy = }) -> record | nil, err
function Store:add_tenant(id, o)
  o = o or {}
  if type(id) ~= "string" or not id:match("^[%w_.%-]+$") then
    return nil, "a tenant id is letters, digits, '.', '_' or '-'"
  end
  local policy = o.policy or {}
  local ok, err = M.validate_policy(policy)
  if not ok then return nil, err end
  if self:tenant(id) then return nil, "tenant " .. id .. " exists" end
  exec_rows(self, "INSERT INTO tenants (id, name, policy, created_at) VALUES (?, ?, ?, ?)",
    id, o.name or id, assert(json.encode(policy)), moongate.now())
  return self:tenant(id)
end

--- store:tenant(id) -> record | nil
function Store:tenant(id)
  return record(exec_rows(self, "SELECT * FROM tenants WHERE id = ?", id)[1])
end

--- store:list_tenants() -> list of records
function Store:list_tenants()
  local out = {}
  for _, r in ipairs(exec_rows(self, "SELECT * FROM tenants ORDER BY id")) do out[#out + 1] = record(r) end
  return out
end

local function update_tenant(self, id, sql, ...)
  if not self:tenant(id) then return nil, "no tenant " .. tostring(id) end
  exec_rows(self, sql, ...)
  self.cache = {}
  return true
end

--- store:set_policy(id, policy) -> true | nil, err
function Store:set_policy(id, policy)
  local ok, err = M.validate_policy(policy)
  if not ok then return nil, err end
  return update_tenant(self, id, "UPDATE tenants SET policy = ? WHERE id = ?", assert(json.encode(policy)), id)
end

--- store:disable(id) / store:enable(id) -> true | nil, err
function Store:disable(id) return update_tenant(self, id, "UPDATE tenants SET disabled = 1 WHERE id = ?", id) end
function Store:enable(id) return update_tenant(self, id, "UPDATE tenants SET disabled = 0 WHERE id = ?", id) end

-- ---- keys -------------------------------------------------------------------------------------

local function digest(self, plaintext) return crypto.hmac_sha256(self.pepper, plaintext) end

local function new_key(self, tenant_id, name, expires_at, admin)
  local id
  repeat id = crypto.hex(crypto.random(4)) until not exec_rows(self, "SELECT 1 AS x FROM keys WHERE id = ?", id)[1]
  local plaintext = "mg-" .. id .. "-" .. crypto.base64url(crypto.random(32))
  exec_rows(self, "INSERT INTO keys (id, tenant_id, name, hash, admin, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
    id, tenant_id, name or "", sqlite.blob(digest(self, plaintext)), admin and 1 or 0, moongate.now(), expires_at)
  return plaintext, id
end

--- store:create_key(tenant_id, { name =, expires_in = seconds }) -> plaintext, key_id | nil, err
--- The plaintext is returned once and never stored.
function Store:create_key(tenant_id, o)
  o = o or {}
  if not self:tenant(tenant_id) then return nil, "no tenant " .. tostring(tenant_id) end
  if o.expires_in ~= nil and (type(o.expires_in) ~= "number" or o.expires_in <= 0) then
    return nil, "expires_in must be a positive number of seconds"
  end
  return new_key(self, tenant_id, o.name, o.expires_in and (moongate.now() + o.expires_in) or nil, false)
end

--- store:list_keys(tenant_id?) -> list of { id, tenant_id, name, created_at, expires_at, revoked_at, status }
--- (never the secret or its hash)
function Store:list_keys(tenant_id, now)
  now = now or moongate.now()
  local rows = tenant_id
    and exec_rows(self, "SELECT * FROM keys WHERE tenant_id = ? AND admin = 0 ORDER BY created_at, id", tenant_id)
    or exec_rows(self, "SELECT * FROM keys WHERE admin = 0 ORDER BY tenant_id, created_at, id")
  local out = {}
  for _, r in ipairs(rows) do
    local status = r.revoked_at and "revoked" or (r.expires_at and r.expires_at <= now and "expired") or "active"
    out[#out + 1] = { id = r.id, tenant_id = r.tenant_id, name = r.name, created_at = r.created_at,
                      expires_at = r.expires_at, revoked_at = r.revoked_at, status = status }
  end
  return out
end

--- store:revoke(key_id) -> true | nil, err
function Store:revoke(key_id)
  if not exec_rows(self, "SELECT 1 AS x FROM keys WHERE id = ?", key_id)[1] then return nil, "no key " .. tostring(key_id) end
  exec_rows(self, "UPDATE keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", moongate.now(), key_id)
  self.cache = {}
  return true
end

--- store:rotate(key_id, overlap_seconds, now?) -> new plaintext, new key_id | nil, err
--- The old key keeps working for overlap_seconds (so clients can switch), then is expired.
function Store:rotate(key_id, overlap, now)
  now = now or moongate.now()
  local old = exec_rows(self, "SELECT * FROM keys WHERE id = ? AND admin = 0", key_id)[1]
  if not old then return nil, "no key " .. tostring(key_id) end
  if old.revoked_at then return nil, "key " .. key_id .. " is revoked" end
  overlap = overlap or 0
  if type(overlap) ~= "number" or overlap < 0 then return nil, "the overlap must be a number of seconds >= 0" end
  return self.db:transaction(function()
    local plaintext, id = new_key(self, old.tenant_id, old.name, old.expires_at, false)
    local ends = now + overlap
    if old.expires_at and old.expires_at < ends then ends = old.expires_at end
    exec_rows(self, "UPDATE keys SET expires_at = ?, replaced_by = ? WHERE id = ?", ends, id, key_id)
    self.cache = {}
    return plaintext, id
  end)
end

local KEY_PATTERN = "^mg%-(%x%x%x%x%x%x%x%x)%-[%w_%-]+$"

-- The key row behind a plaintext, checked in constant time | nil, reason
local function find(self, plaintext, admin)
  if type(plaintext) ~= "string" then return nil, "unknown key" end
  local id = plaintext:match(KEY_PATTERN)
  if not id then return nil, "unknown key" end
  local row = exec_rows(self, "SELECT * FROM keys WHERE id = ? AND admin = ?", id, admin and 1 or 0)[1]
  if not row or not crypto.equal(row.hash, digest(self, plaintext)) then return nil, "unknown key" end
  return row
end

--- store:lookup(plaintext, now?) -> { id, name, disabled, policy, key_id } | nil, reason
--- reason: "unknown key", "revoked", "expired", "disabled". The row and its tenant are cached
--- by key id for cache_ttl seconds; a cache hit still checks the secret (HMAC, constant time).
function Store:lookup(plaintext, now)
  local t = moongate.now()
  now = now or t
  if type(plaintext) ~= "string" then return nil, "unknown key" end
  local id = plaintext:match(KEY_PATTERN)
  if not id then return nil, "unknown key" end
  local hit = self.cache[id]
  local row, tenant
  if hit and hit.until_t > t then
    if not crypto.equal(hit.row.hash, digest(self, plaintext)) then return nil, "unknown key" end
    row, tenant = hit.row, hit.tenant
  else
    local err
    row, err = find(self, plaintext, false)
    -- only keys whose secret checked out are cached: the cache cannot be filled by guessing
    if not row then return nil, err end
    tenant = self:tenant(row.tenant_id)
    self.cache[id] = { row = row, tenant = tenant, until_t = t + self.cache_ttl }
  end
  if row.revoked_at then return nil, "revoked" end
  if row.expires_at and row.expires_at <= now then return nil, "expired" end
  if not tenant then return nil, "unknown key" end
  if tenant.disabled then return nil, "disabled" end
  return { id = tenant.id, name = tenant.name, disabled = false, policy = tenant.policy, key_id = row.id }
end

--- store:create_admin_key() -> plaintext: an admin key (any number may exist; revoke with revoke()).
function Store:create_admin_key()
  return (new_key(self, nil, "admin", nil, true))
end

--- store:has_admin_key() -> bool
function Store:has_admin_key()
  return exec_rows(self, "SELECT 1 AS x FROM keys WHERE admin = 1 AND revoked_at IS NULL")[1] ~= nil
end

--- store:check_admin(plaintext) -> bool
function Store:check_admin(plaintext)
  local row = find(self, plaintext, true)
  return row ~= nil and row.revoked_at == nil
end

return M
