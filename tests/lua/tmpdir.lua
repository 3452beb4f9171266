-- tests/lua/tmpdir.lua: a fresh, empty folder for a spec (`local tmpdir = require "tmpdir"`).
local store = require "moongate.retrieval.store"

return function()
  local p = os.tmpname()
  os.remove(p)
  assert(store.mkdir(p))
  return p
end
