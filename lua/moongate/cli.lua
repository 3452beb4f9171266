-- moongate.cli: dispatches `moongate <cmd>` to lua/moongate/cli/<cmd>.lua, run as the main
-- task; an error becomes exit code 1 with its traceback on stderr.
local M = {}

local function fail(msg, code)
  io.stderr:write("moongate: ", msg, "\n")
  return code or 1
end

function M.main(cmd, args)
  if not cmd:match("^[%w_%-]+$")
    or not package.searchpath("moongate.cli." .. cmd, package.path) then
    return fail("unknown command '" .. cmd .. "' (see `moongate --help`)", 2)
  end
  local ok, run = xpcall(require, debug.traceback, "moongate.cli." .. cmd)
  if not ok then return fail(run) end
  local ok2, code = xpcall(run, debug.traceback, args)
  if not ok2 then return fail(tostring(code)) end
  io.stdout:flush()
  return tonumber(code) or 0
end

-- Small helpers for the commands' own argument parsing.
function M.wants_help(args)
  for _, a in ipairs(args) do
    if a == "--help" or a == "-h" then return true end
  end
  return false
end

return M
