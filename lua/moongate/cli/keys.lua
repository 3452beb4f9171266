-- `moongate keys create|list|revoke|rotate`: tenants' API keys in the sqlite store.
local lib = require "moongate.cli.lib.admin_db"

local usage = [[
usage: moongate keys COMMAND [ARGS] [--db PATH] [--admin-key KEY] [--json]

commands:
  create TENANT [--name NAME] [--expires-in SECONDS]   a new key, printed once
  list [TENANT]                                        keys (never their secrets)
  revoke KEY_ID                                        refused (401) from now on
  rotate KEY_ID [--overlap SECONDS]                    a new key; the old one keeps working
                                                       for the overlap (default 86400), then
                                                       is refused as expired

Every command needs the admin key (--admin-key or MOONGATE_ADMIN_KEY). A revocation reaches
running gateways within their key cache's lifetime (auth.cache_ttl, 2 s by default).
]]

local function seconds(v, what)
  if v == nil then return nil end
  local n = tonumber(v)
  if not n or n < 0 then error({ msg = what .. " must be a number of seconds" }) end
  return n
end

local function print_new(o, key, id, tenant)
  if o.json then lib.json_out({ key = key, id = id, tenant = tenant })
  else
    io.write(key, "\n")
    io.stderr:write("key ", id, " for tenant ", tenant, ". It will not be shown again.\n")
  end
end

return function(args)
  local ok, o = pcall(lib.parse, args, { help = true, json = true }, { name = true, overlap = true, ["expires-in"] = true })
  if not ok then return lib.fail(type(o) == "table" and o.msg or tostring(o), 2) end
  local cmd, arg = o.words[1], o.words[2]
  if o.help or not cmd then io.write(usage); return o.help and 0 or 2 end
  if cmd ~= "create" and cmd ~= "list" and cmd ~= "revoke" and cmd ~= "rotate" then
    return lib.fail("unknown keys command '" .. cmd .. "'", 2)
  end
  if cmd ~= "list" and not arg then return lib.fail("keys " .. cmd .. " needs " .. (cmd == "create" and "a tenant" or "a key id"), 2) end
  local pok, expires, overlap = pcall(function() return seconds(o["expires-in"], "--expires-in"), seconds(o.overlap, "--overlap") end)
  if not pok then return lib.fail(type(expires) == "table" and expires.msg or tostring(expires), 2) end
  local store, err, code = lib.open(o, true)
  if not store then return lib.fail(err, code) end
  local rc = 0
  if cmd == "create" then
    local key, id = store:create_key(arg, { name = o.name, expires_in = expires })
    if not key then rc = lib.fail(id, 1) else print_new(o, key, id, arg) end
  elseif cmd == "list" then
    local list = store:list_keys(arg)
    if o.json then lib.json_out(list)
    else
      for _, k in ipairs(list) do k.tenant, k.created, k.expires = k.tenant_id, lib.date(k.created_at), lib.date(k.expires_at) end
      lib.table_out(list, { "id", "tenant", "name", "status", "created", "expires" })
    end
  elseif cmd == "revoke" then
    local r, e = store:revoke(arg)
    if not r then rc = lib.fail(e, 1) else io.write("revoked key ", arg, "\n") end
  else
    local key, id = store:rotate(arg, overlap or 86400)
    if not key then rc = lib.fail(id, 1)
    else
      local tenant
      for _, k in ipairs(store:list_keys()) do if k.id == id then tenant = k.tenant_id end end
      print_new(o, key, id, tenant)
    end
  end
  store:close()
  return rc
end
