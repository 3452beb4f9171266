-- The floor under the gateway: a moongate app that only relays the request to the upstream with
-- moongate.http (libcurl) and its answer back: no routing, no edge, no spans, no JSON decoded.
-- Set against `off`, it shows what the gateway's own work costs; set against nginx, what
-- moongate's server and upstream client cost before any of it.
local http = require "moongate.http"
local up = os.getenv("MOONGATE_BENCH_UPSTREAM")
local HEADERS = { ["content-type"] = "application/json", authorization = "Bearer sk-upstream" }
local JSON = { ["content-type"] = "application/json" }
local SSE = { ["content-type"] = "text/event-stream", ["cache-control"] = "no-cache" }

local function relay(req, res)
  local stream = req.body:find('"stream":true', 1, true) ~= nil
  local r, err = http.request{ method = "POST", body = req.body, headers = HEADERS, timeout = 5, stream = stream,
    url = up .. (stream and "/stream" or "") .. "/v1/chat/completions" }
  if not r then return { status = 502, headers = JSON, body = '{"error":"' .. tostring(err) .. '"}' } end
  if not stream then return { status = r.status, headers = JSON, body = r.body } end
  res:start(r.status, SSE)
  while true do
    local chunk = r:read(30)
    if not chunk then break end
    res:write(chunk)
  end
  r:close()
  res:finish()
end

return { app = relay, access_log = false, trace = false }
