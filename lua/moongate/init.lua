-- moongate: the runtime's Lua face. Scheduling primitives come from the C scheduler; every
-- other area (moongate.http, moongate.json, moongate.tokenizer, ...) is loaded on first use.
local sched = require "moongate._sched"
local base = require "moongate.base"

local M = {
  version = base.version,
  home = base.home,
  spawn = sched.spawn,         -- spawn(fn, ...) -> handle: handle:wait([timeout]), :cancel()
  sleep = sched.sleep,         -- sleep(seconds) -> true | nil, "timeout" (deadline first)
  yield = sched.yield,         -- let other tasks and I/O run
  now = sched.now,             -- wall clock, seconds as a float
  deadline = sched.deadline,   -- the running task's absolute deadline, or nil
  set_deadline = sched.set_deadline,
  current = sched.current,
  context = sched.context,     -- per-task table, shared with the tasks it spawns
  defer = sched.defer,         -- defer(fn [, arg]): fn(ok, err) / fn(arg, ok, err) when the task ends, however it ends
  live_tasks = sched.live_tasks,
}

-- moongate.timeout(budget): the running task's deadline becomes min(current, now + budget).
function M.timeout(budget)
  return sched.set_deadline(sched.now() + budget)
end

local searchpath = package.searchpath

return setmetatable(M, {
  __index = function(t, k)
    if type(k) ~= "string" or k:sub(1, 1) == "_" then return nil end
    local name = "moongate." .. k
    if not searchpath(name, package.path) then return nil end
    local mod = require(name)
    rawset(t, k, mod)
    return mod
  end,
})
