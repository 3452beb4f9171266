-- moongate.tenants: the sqlite store of tenants and hashed API keys.
local tenants = require "moongate.tenants"

describe("moongate.tenants", function()
  local dir = os.tmpname()
  os.remove(dir)
  os.execute("mkdir -p " .. dir)
  local n = 0
  local function fresh()
    n = n + 1
    local path = dir .. "/t" .. n .. ".db"
    return assert(tenants.open(path, { cache_ttl = 0 })), path
  end

  it("a created key finds its tenant and policy; a wrong secret does not", function()
    local s = fresh()
    assert(s:add_tenant("acme", { name = "Acme Corp", policy = { models = { "default" }, quota = { rpm = 60 } } }))
    local key, id = s:create_key("acme", { name = "ci" })
    assert.is_truthy(key:match("^mg%-" .. id .. "%-[%w_%-]+$"))
    assert.is_true(#key >= 3 + 8 + 1 + 43)   -- 32 random bytes of secret
    local t = s:lookup(key)
    assert.are.same({ id = "acme", name = "Acme Corp", disabled = false, key_id = id,
                      policy = { models = { "default" }, quota = { rpm = 60 } } }, t)
    assert.are.same({ nil, "unknown key" }, { s:lookup(key:sub(1, -2) .. (key:sub(-1) == "A" and "B" or "A")) })
    assert.are.same({ nil, "unknown key" }, { s:lookup("sk-not-ours") })
    assert.are.same({ { id = id, tenant_id = "acme", name = "ci", status = "active" } },
      (function() local l = s:list_keys("acme"); return { { id = l[1].id, tenant_id = l[1].tenant_id, name = l[1].name, status = l[1].status } } end)())
  end)

  it("stores only a hash: the plaintext never reaches the file", function()
    local s, path = fresh()
    assert(s:add_tenant("acme"))
    local key = s:create_key("acme")
    s:close()
    local f = assert(io.open(path, "rb")); local bytes = f:read("*a"); f:close()
    for _, ext in ipairs({ "-wal", "" }) do
      local g = io.open(path .. ext, "rb")
      if g then bytes = bytes .. g:read("*a"); g:close() end
    end
    -- the secret is everything after "mg-<id>-" (base64url: it may itself hold "-")
    local secret = assert(key:match("^mg%-%x+%-(.+)$"))
    assert.are.equal(43, #secret)
    assert.is_nil(bytes:find(secret, 1, true))
  end)

  it("revoked keys and disabled tenants are refused with their reason", function()
    local s = fresh()
    assert(s:add_tenant("acme"))
    local key, id = s:create_key("acme")
    assert(s:revoke(id))
    assert.are.same({ nil, "revoked" }, { s:lookup(key) })
    local key2 = s:create_key("acme")
    assert(s:disable("acme"))
    assert.are.same({ nil, "disabled" }, { s:lookup(key2) })
    assert(s:enable("acme"))
    assert.are.equal("acme", s:lookup(key2).id)
    assert.are.same({ nil, "no key nope" }, { s:revoke("nope") })
  end)

  it("rotation: both keys work inside the overlap, only the new one after", function()
    local s = fresh()
    assert(s:add_tenant("acme"))
    local old, old_id = s:create_key("acme")
    local t0 = require("moongate").now()
    local new, new_id = s:rotate(old_id, 3600, t0)
    assert.are_not.equal(old_id, new_id)
    assert.are.equal("acme", s:lookup(old, t0 + 3599).id)
    assert.are.equal("acme", s:lookup(new, t0 + 3599).id)
    assert.are.same({ nil, "expired" }, { s:lookup(old, t0 + 3601) })
    assert.are.equal("acme", s:lookup(new, t0 + 3601).id)
  end)

  it("keys that expire", function()
    local s = fresh()
    assert(s:add_tenant("acme"))
    local key = s:create_key("acme", { expires_in = 60 })
    local now = require("moongate").now()
    assert.are.equal("acme", s:lookup(key, now + 59).id)
    assert.are.same({ nil, "expired" }, { s:lookup(key, now + 61) })
  end)

  it("admin keys are not tenant keys and tenant keys are not admin keys", function()
    local s = fresh()
    assert(s:add_tenant("acme"))
    local admin = s:create_admin_key()
    local key = s:create_key("acme")
    assert.is_true(s:check_admin(admin))
    assert.is_false(s:check_admin(key))
    assert.are.same({ nil, "unknown key" }, { s:lookup(admin) })
  end)

  it("stores HMAC-SHA256(pepper, key) and nothing that gives the key back", function()
    local s = fresh()
    assert(s:add_tenant("acme"))
    local key, id = s:create_key("acme")
    local row = s.db:prepare("SELECT hash FROM keys WHERE id = ?")
    row:bind(id)
    local r = row:step()
    row:finalize()
    assert.are.equal(32, #r.hash)
    assert.are.equal(require("moongate.crypto").hmac_sha256(s.pepper, key), r.hash)
  end)

  it("caches by key id for cache_ttl: a revocation shows once the entry is older than that", function()
    local path = dir .. "/ttl.db"
    local s = assert(tenants.open(path, { cache_ttl = 0.2 }))
    local admin = assert(tenants.open(path, { cache_ttl = 0 })) -- another worker's connection
    assert(admin:add_tenant("acme"))
    local key, id = admin:create_key("acme")
    assert.are.equal(id, s:lookup(key).key_id)
    assert(admin:revoke(id))
    assert.are.equal("acme", s:lookup(key).id)            -- still cached
    assert.are.same({ nil, "unknown key" }, { s:lookup(key:sub(1, -2) .. (key:sub(-1) == "A" and "B" or "A")) })
    require("moongate").sleep(0.25)
    assert.are.same({ nil, "revoked" }, { s:lookup(key) })
    assert.are.same({ nil, "cache_ttl must be a number of seconds >= 0" }, { tenants.open(path, { cache_ttl = -1 }) })
    s:close(); admin:close()
  end)

  it("validates policies with clear errors", function()
    local s = fresh()
    assert.are.same({ nil, "unknown policy field 'modles'" }, { s:add_tenant("a", { policy = { modles = {} } }) })
    assert.are.same({ nil, "quota: unknown field 'rpn'" }, { s:add_tenant("a", { policy = { quota = { rpn = 1 } } }) })
    assert.are.same({ nil, "quota.rpm must be a number >= 0" }, { s:add_tenant("a", { policy = { quota = { rpm = "x" } } }) })
    assert.are.same({ nil, 'caps.on_exceed must be "refuse" or "truncate"' },
      { s:add_tenant("a", { policy = { caps = { on_exceed = "drop" } } }) })
    assert.are.same({ nil, "a tenant id is letters, digits, '.', '_' or '-'" }, { s:add_tenant("a b") })
    assert.are.same({ nil, "redaction: unknown field 'mdoe'" },
      { s:add_tenant("a", { policy = { redaction = { mode = "mask", mdoe = "x" } } }) })
    assert.are.same({ nil, "tools must be a list of names" }, { s:add_tenant("a", { policy = { tools = { 1 } } }) })
    assert(s:add_tenant("a", { policy = { tools = { "clock" }, log_raw = false, redaction = { mode = "mask" } } }))
    assert.are.same({ nil, "tenant a exists" }, { s:add_tenant("a") })
    assert.are.same({ nil, "no tenant zz" }, { s:create_key("zz") })
  end)
end)
