-- moongate.edge.flags: the flags file evaluated once per request for its tenant and user (the
-- result is ctx.flags, recorded with the request), and the kill switch: a killed model is
-- refused here, a killed provider is skipped by the router like an open circuit.
local errors = require "moongate.gateway.errors"

local M = {}
local Stage = {}
Stage.__index = Stage

--- new(config, gw) -> stage | nil (no `flags` file in the config)
function M.new(config, gw)
  if config.flags == nil then return nil end
  if type(config.flags) ~= "string" then return nil, "flags must be the path of a flags file" end
  local flags = require "moongate.flags"
  local path = require("moongate.gateway").resolve(config.flags, config)
  local set, err = flags.load(path)
  if not set then return nil, err end
  local st = setmetatable({ flags = flags, path = path }, Stage)
  -- the router asks the breaker before each attempt; a killed provider is refused there
  gw.breaker.killed = function(provider)
    local cur = flags.load(path)
    return cur ~= nil and flags.killed(cur, "provider", provider) == true
  end
  return st
end

function Stage:before(ctx)
  local flags = self.flags
  local set = flags.load(self.path)   -- the current version: the file is hot-reloaded
  if not set then return nil end
  local req = ctx.req
  local route = ctx.route
  local doc = (route == "chat" or route == "embeddings") and ctx:doc()
  local user = req.headers["x-moongate-user"] or (doc and type(doc.user) == "string" and doc.user) or nil
  ctx.flag_set = set
  ctx.flags = flags.evaluate(set, { tenant = ctx.tenant, user = user, overrides = ctx.policy.flags })
  ctx:header("x-moongate-flags-version", tostring(set.version))
  local model = doc and doc.model
  if type(model) == "string" and flags.killed(set, "model", model) then
    return errors.response(503, string.format("the model '%s' is switched off", model), "model_disabled")
  end
  return nil
end

return M
