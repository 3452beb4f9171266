-- An edge stage of a config's own: refuses chat requests for tenants on a "business hours" plan
-- outside 08:00-18:00 UTC, stamps every answer with the tenant's plan, and counts what it saw.
local errors = require "moongate.gateway.errors"

local M = {}
M.settings = { "plans", "clock_hour" }   -- the config's top-level keys it reads (not typos)
local Stage = {}
Stage.__index = Stage

--- new(config, gw) -> stage | nil: nil when no tenant has a plan (the stage then costs nothing)
function M.new(config, gw)
  local plans = config.plans
  if not plans then return nil end
  return setmetatable({ plans = plans, hour = config.clock_hour or function() return tonumber(os.date("!%H")) end,
                        seen = 0, finished = 0 }, Stage)
end

function Stage:before(ctx)
  self.seen = self.seen + 1
  local plan = self.plans[ctx.tenant or ""]
  if not plan then return nil end
  ctx:header("x-plan", plan)
  local h = self.hour()
  if plan == "business-hours" and ctx.route == "chat" and (h < 8 or h >= 18) then
    return errors.response(403, "this plan answers from 08:00 to 18:00 UTC", "outside_business_hours")
  end
end

-- a finished, non-streamed answer on its way out
function Stage:response(ctx, r)
  r.headers = r.headers or {}
  r.headers["x-stages-seen"] = tostring(self.seen)
  return r
end

-- runs when the request ends however it ends (here: counts them)
function Stage:finally(ctx)
  self.finished = self.finished + 1
end

return M
