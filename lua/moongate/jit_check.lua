-- moongate.jit_check: what LuaJIT's compiler did while a function ran, as jit.v's trace log,
-- so a spec can assert that a hot loop compiled (no "NYI", no "stitch").
local v = require "jit.v"

local M = {}

--- jit_check.trace_log(fn) -> the trace log of running fn (after flushing earlier traces).
-- Lines about jit.v's own code, which can get traced while it switches off, are left out.
function M.trace_log(fn)
  local out = os.tmpname()
  jit.flush()
  v.on(out)
  local ok, err = pcall(fn)
  v.off()
  local f = assert(io.open(out))
  local log = f:read("*a"):gsub("[^\n]*[ (/]v%.lua:[^\n]*\n?", "")
  f:close()
  os.remove(out)
  if not ok then error(err, 0) end
  return log
end

return M
