-- `moongate run SCRIPT.lua [ARGS]`: run a script inside the runtime. The process exits when
-- the main chunk returns (0) or raises (1, traceback on stderr); tasks left behind are cancelled.
local usage = [[
usage: moongate run SCRIPT.lua [ARGS...]

Runs SCRIPT.lua as a task inside the moongate runtime: `require "moongate"` gives
spawn, sleep, http, json, ... exactly as in handlers. The global `arg` holds the
arguments (arg[0] is the script). Exits 0 when the main chunk returns, 1 with the
traceback when it raises; tasks still running then are cancelled.
]]

return function(args)
  if #args == 0 or args[1] == "--help" or args[1] == "-h" then
    io.write(usage)
    return #args == 0 and 2 or 0
  end
  local script = args[1]
  local chunk, err = loadfile(script)
  if not chunk then
    io.stderr:write("moongate run: ", err, "\n")
    return 1
  end
  local a = { [0] = script }
  for i = 2, #args do a[i - 1] = args[i] end
  _G.arg = a
  local ok, e = xpcall(chunk, debug.traceback, unpack(a))
  if not ok then
    io.stderr:write(tostring(e), "\n")
    return 1
  end
  return 0
end
