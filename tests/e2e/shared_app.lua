-- The app of tests/e2e/shared_workers.sh: every worker increments the same moongate.shared
-- counters, and says which process answered.
local shared = require "moongate.shared"
local ffi = require "ffi"
pcall(ffi.cdef, "int getpid(void);")

local M = {}
local counters = shared.dict("e2e")

function M.handle(req)
  local pid = ffi.C.getpid()
  if req.path == "/incr" then
    local n, err = counters.incr("hits", 1, 0)
    if not n then return { status = 500, body = { error = err } } end
    counters.incr("pid:" .. pid, 1, 0)
    return { status = 200, headers = { ["content-type"] = "text/plain" }, body = pid .. " " .. n }
  elseif req.path == "/count" then
    local per = {}
    for _, k in ipairs(counters.keys("pid:")) do per[k:sub(5)] = counters.get(k) end
    return { status = 200, body = { hits = counters.get("hits") or 0, per_worker = per } }
  end
  return { status = 404, body = { error = "no route" } }
end

return M
