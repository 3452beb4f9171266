-- `moongate tenants add|list|show|set|disable|enable`: the tenants in the sqlite store.
local lib = require "moongate.cli.lib.admin_db"
local json = require "moongate.json"

local usage = [[
usage: moongate tenants COMMAND [ARGS] [--db PATH] [--admin-key KEY] [--json]

commands:
  add ID [--name NAME] [--policy JSON]   a new tenant (policy: see docs/tenants.md)
  list                                   every tenant
  show ID                                one tenant, its policy and its keys
  set ID --policy JSON                   replace a tenant's policy
  disable ID / enable ID                 refuse (403) or accept the tenant's keys again

Every command needs the admin key (--admin-key or MOONGATE_ADMIN_KEY).
]]

local function policy_of(o)
  if not o.policy then return {} end
  local p = json.decode(o.policy)
  if type(p) ~= "table" then return nil, "--policy must be a JSON object" end
  if json.is_array(p) and next(p) ~= nil then return nil, "--policy must be a JSON object" end
  return p
end

local function show(store, id, o)
  local t = store:tenant(id)
  if not t then return lib.fail("no tenant " .. id, 1) end
  local keys = store:list_keys(id)
  if o.json then
    t.keys = keys
    lib.json_out(t)
    return 0
  end
  io.write("tenant   ", t.id, "\nname     ", t.name, "\ndisabled ", t.disabled and "yes" or "no",
    "\npolicy   ", json.encode_sorted(t.policy), "\n\n")
  for _, k in ipairs(keys) do k.created, k.expires = lib.date(k.created_at), lib.date(k.expires_at) end
  lib.table_out(keys, { "id", "name", "status", "created", "expires" })
  return 0
end

return function(args)
  local ok, o = pcall(lib.parse, args, { help = true, json = true }, { name = true, policy = true })
  if not ok then return lib.fail(type(o) == "table" and o.msg or tostring(o), 2) end
  local cmd, id = o.words[1], o.words[2]
  if o.help or not cmd then io.write(usage); return o.help and 0 or 2 end
  local needs_id = { add = true, show = true, set = true, disable = true, enable = true }
  if cmd ~= "list" and not needs_id[cmd] then return lib.fail("unknown tenants command '" .. cmd .. "'", 2) end
  if needs_id[cmd] and not id then return lib.fail("tenants " .. cmd .. " needs a tenant id", 2) end
  local store, err, code = lib.open(o, true)
  if not store then return lib.fail(err, code) end
  local rc = 0
  if cmd == "list" then
    local list = store:list_tenants()
    if o.json then lib.json_out(list)
    else lib.table_out(list, { "id", "name", "disabled", "policy" }) end
  elseif cmd == "show" then
    rc = show(store, id, o)
  else
    local res, e
    if cmd == "set" and o.policy == nil then   -- set without one would wipe the tenant's policy
      store:close(); return lib.fail("tenants set needs --policy JSON", 2)
    end
    if cmd == "add" or cmd == "set" then
      local p, perr = policy_of(o)
      if not p then store:close(); return lib.fail(perr, 2) end
      if cmd == "add" then res, e = store:add_tenant(id, { name = o.name, policy = p })
      else res, e = store:set_policy(id, p) end
    else
      res, e = store[cmd](store, id)
    end
    if not res then rc = lib.fail(e, 1)
    else io.write(cmd == "add" and "added" or cmd == "set" and "updated" or cmd .. "d", " tenant ", id, "\n") end
  end
  store:close()
  return rc
end
