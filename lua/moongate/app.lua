-- moongate.app: the default application served by `moongate serve` with no config.
-- GET /health answers 200 {"status":"ok"}; the gateway routes are added here.
local M = {}

function M.handle(req, res)
  if req.path == "/health" and (req.method == "GET" or req.method == "HEAD") then
    return { status = 200, headers = { ["content-type"] = "application/json" }, body = '{"status":"ok"}' }
  end
  return {
    status = 404,
    headers = { ["content-type"] = "application/json" },
    body = '{"error":{"message":"not found","type":"invalid_request_error","code":"not_found"}}',
  }
end

return M
