-- moongate.gateway.errors: every gateway error as an OpenAI-shaped response
-- ({"error":{"message","type","code"}}) with the status that says what happened.
local json = require "moongate.json"

local M = {}

-- status -> OpenAI error type
local TYPES = {
  [400] = "invalid_request_error", [401] = "authentication_error", [403] = "permission_error",
  [404] = "invalid_request_error", [405] = "invalid_request_error", [408] = "timeout_error",
  [413] = "invalid_request_error", [429] = "rate_limit_error", [500] = "server_error",
  [502] = "upstream_error", [503] = "service_unavailable", [504] = "timeout_error",
}

-- The JSON text of an error object: {"error":{...}} (used for bodies and stream error events).
function M.body(status, message, code, extra)
  local err = { message = message, type = TYPES[status] or "server_error", code = code or json.null,
                param = json.null }
  if extra then for k, v in pairs(extra) do err[k] = v end end
  local ctx = require("moongate").context()
  if ctx and ctx.request_id then err.request_id = ctx.request_id end
  return (json.encode({ error = err }))
end

-- A complete response table for the server: status, JSON headers, body.
function M.response(status, message, code, headers, extra)
  local h = headers or {}
  h["content-type"] = "application/json"
  return { status = status, headers = h, body = M.body(status, message, code, extra) }
end

return M
