-- `moongate test [PATHS]`: busted specs inside the runtime, in a scheduler task, so a spec's
-- `require "moongate"` is the real thing and a spec may wait (sleep, HTTP).
local usage = [[
usage: moongate test [BUSTED OPTIONS] [PATHS...]

Runs busted specs (default: tests/lua under the current folder) inside the moongate
runtime. Exits 0 when every spec passed, 1 otherwise.
]]

return function(args)
  if args[1] == "--help" or args[1] == "-h" then
    io.write(usage)
    return 0
  end
  local a = { [0] = "busted" }
  local has_path = false
  for i, v in ipairs(args) do
    a[i] = v
    if v:sub(1, 1) ~= "-" then has_path = true end
  end
  if not has_path then a[#a + 1] = "tests/lua" end
  -- helpers kept next to the specs (a throwaway redis-server, a temp folder) are require-able
  for i = 1, #a do
    local v = a[i]
    if v:sub(1, 1) ~= "-" then
      local dir = v:match("%.lua$") and (v:match("^(.*)/[^/]*$") or ".") or v
      package.path = dir .. "/?.lua;" .. package.path
    end
  end
  _G.arg = a
  local ok, err = pcall(require("busted.runner"), { standalone = false })
  if not ok then
    -- busted signals failures by raising error() with no message on Lua 5.1
    if err ~= nil then io.stderr:write(tostring(err), "\n") end
    return 1
  end
  return 0
end
