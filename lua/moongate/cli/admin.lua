-- `moongate admin init`: creates the tenants database and prints its first admin key, once.
local lib = require "moongate.cli.lib.admin_db"

local usage = [[
usage: moongate admin init [--db PATH]

Creates the tenants database (default: $MOONGATE_DB, else ./moongate.db) and prints an admin
key, once: it is stored only as a hash. The admin key is what `moongate tenants`, `moongate
keys` and the gateway's /admin endpoints ask for (--admin-key or MOONGATE_ADMIN_KEY).
Run it again on a database that has an admin key and it refuses, unless given that key
(--admin-key), when it prints an additional one.
]]

return function(args)
  local ok, o = pcall(lib.parse, args, { help = true })
  if not ok then return lib.fail(type(o) == "table" and o.msg or tostring(o), 2) end
  if o.help or o.words[1] ~= "init" then
    io.write(usage)
    return o.help and 0 or 2
  end
  local store, err, code = lib.open(o, false)
  if not store then return lib.fail(err, code) end
  if store:has_admin_key() then
    local key = o["admin-key"] or os.getenv("MOONGATE_ADMIN_KEY")
    if not key or not store:check_admin(key) then
      store:close()
      return lib.fail("this database has an admin key already; give it with --admin-key to create another", 2)
    end
  end
  local key = store:create_admin_key()
  store:close()
  io.write(key, "\n")
  io.stderr:write("This admin key will not be shown again. Keep it secret.\n")
  return 0
end
