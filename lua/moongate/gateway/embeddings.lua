-- moongate.gateway.embeddings: POST /v1/embeddings through the same routing, retries and breakers
-- as chat completions; the upstream's answer is relayed byte for byte.
local moongate = require "moongate"
local router = require "moongate.router"
local errors = require "moongate.gateway.errors"
local usage = require "moongate.gateway.usage"
local chat = require "moongate.gateway.chat"
local request = require "moongate.gateway.request"

local M = {}

local now = moongate.now
local format = string.format

function M.handle(gw, req, res, tenant)
  local t0 = req.start or now()
  local doc, name = request.decode(req)
  if not doc then return name end
  local input = doc.input
  if input == nil or input == "" or (type(input) == "table" and #input == 0) then
    return errors.response(400, "input must be a non-empty string or array", "invalid_request")
  end
  local mcfg, missing = request.model(gw, name)
  if not mcfg then return missing end
  local plan = router.default_plan(mcfg)
  local creq = { raw = req.body, doc = doc, model = name, stream = false,
                 forward_headers = chat.forward_headers(req.headers, req.id), idle = gw.idle_timeout, set = {} }
  local result, info, waited = chat.run_plan(gw, creq, plan,
    plan.deadline and (t0 + plan.deadline) or moongate.deadline(), "embeddings")
  if not result then
    local f = info
    if f.fail and f.fail.kind == "client" and f.fail.body then
      return { status = f.status, headers = { ["content-type"] = "application/json",
        ["x-moongate-attempts"] = tostring(f.attempts) }, body = f.fail.body }
    end
    local h = { ["x-moongate-attempts"] = tostring(f.attempts) }
    if f.retry_after then h["retry-after"] = tostring(f.retry_after) end
    return errors.response(f.status, f.message, f.code, h)
  end
  local tier = info.tier
  usage.record(tier.provider, tier.model or name, result.usage)
  return { status = 200, body = result.body, headers = {
    ["content-type"] = "application/json",
    ["x-moongate-provider"] = tier.provider,
    ["x-moongate-model"] = tier.model or name,
    ["x-moongate-attempts"] = tostring(info.attempts),
    ["x-moongate-overhead-ms"] = format("%.3f", (now() - t0 - waited) * 1000),
  } }
end

return M
