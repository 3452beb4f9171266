-- The app the server's end-to-end tests run (tests/e2e/server_*.sh): one route per behaviour.
local mg = require "moongate"
local log = require "moongate.log"
local config = require "moongate.config"
local process = require "moongate._process"

local M = { version = "v1" }
local streams = { started = 0, cancelled_after = 0 }

function M.init(cfg)
  M.greeting = cfg.greeting or "hello"
end

local routes = {}

routes["/hello"] = function()
  return { status = 200, headers = { ["content-type"] = "text/plain" }, body = M.greeting }
end

routes["/echo"] = function(req)
  return { status = 200, body = {
    method = req.method, path = req.path, query = req.query, args = req.args,
    headers = req.headers, body_len = #req.body, body_head = req.body:sub(1, 16),
    body_tail = req.body:sub(-16), id = req.id, ctx_id = mg.context().request_id,
    version = req.version, remote_ok = req.remote:match("^127%.0%.0%.1:%d+$") ~= nil,
    start_ok = type(req.start) == "number" and req.start <= mg.now(),
  } }
end

routes["/json"] = function(req)
  local v, err = req:json()
  if v == nil then
    return { status = 400, body = { error = { message = err, type = "invalid_request_error", code = "invalid_json" } } }
  end
  return { status = 200, body = { got = v } }
end

routes["/raise"] = function() error("boom in handler") end
routes["/forever"] = function() mg.sleep(3600) return { status = 200, body = "woke" } end
routes["/slow"] = function(req)
  mg.sleep(tonumber(req.args.s) or 1)
  return { status = 200, body = "slept" }
end
routes["/nothing"] = function() end
routes["/bad-header"] = function() return { status = 200, headers = { ["x-bad"] = "a\r\nb" }, body = "x" } end
routes["/pid"] = function() return { status = 200, body = tostring(process.pid()) } end
routes["/config"] = function()
  local c = config.get()
  return { status = 200, body = { dir = c.dir, resolved = config.resolve("data/x.txt"), greeting = c.greeting } }
end
routes["/stats"] = function()
  return { status = 200, body = { live_tasks = mg.live_tasks(), streams = streams } }
end
routes["/log"] = function()
  log.info("from handler", { authorization = "Bearer secret-token-123", note = "key sk-abcdef123456", n = 7 })
  return { status = 200, body = "logged" }
end

routes["/stream"] = function(req, res)
  local n = tonumber(req.args.n) or 3
  res:start(200, { ["content-type"] = "text/event-stream" })
  for i = 1, n do
    assert(res:write("data: " .. i .. "\n\n"))
    mg.sleep(0.02)
  end
  res:finish()
end

-- writes for longer than handler_timeout (1 s), never pausing as long as stream_idle_timeout
routes["/stream-long"] = function(req, res)
  res:start(200, { ["content-type"] = "text/event-stream" })
  for i = 1, 8 do
    assert(res:write("data: " .. i .. "\n\n"))
    mg.sleep(0.25)
  end
  res:finish()
end

-- starts, then stalls past stream_idle_timeout (1 s)
routes["/stream-stall"] = function(req, res)
  res:start(200, { ["content-type"] = "text/event-stream" })
  res:write("data: 1\n\n")
  mg.sleep(3600)
end

routes["/stream-forever"] = function(req, res)
  streams.started = streams.started + 1
  res:start(200, { ["content-type"] = "text/event-stream" })
  local i = 0
  while true do
    i = i + 1
    if not res:write("data: " .. i .. "\n\n") then break end
    mg.sleep(0.02)
  end
  streams.cancelled_after = -1   -- never reached when the server cancels the task
end

routes["/big"] = function(req, res)
  -- a streamed body of `mb` MiB; against a client that does not read, res:write waits
  local mb = tonumber(req.args.mb) or 8
  local chunk = string.rep("x", 65536)
  res:start(200, { ["content-type"] = "application/octet-stream", ["content-length"] = tostring(mb * 2 ^ 20) })
  for _ = 1, mb * 16 do
    local t0 = mg.now()
    if not res:write(chunk) then return end
    if mg.now() - t0 > 0.1 then streams.waited = (streams.waited or 0) + 1 end
  end
  res:finish()
end

routes["/abort"] = function(req, res)
  if req.args.after then
    res:start(200, { ["content-type"] = "text/plain" })
    res:write("partial")
  end
  res:abort()
  assert(res.finished)
  assert(res:abort())                                 -- idempotent
  streams.after_abort = select(2, res:write("x")) or "sent"   -- "closed"
end

routes["/framing"] = function()
  -- a whole response's framing is the server's: these two are dropped
  return { status = 200, headers = { ["content-length"] = "999", ["transfer-encoding"] = "chunked" }, body = "abc" }
end

routes["/close-me"] = function()
  return { status = 200, headers = { connection = "close" }, body = "bye" }
end

routes["/bad-stream-header"] = function(req, res)
  local h = {}
  for i = 1, 64 do h["x-pad-" .. i] = string.rep("p", 1000) end
  h["x-bad"] = "a\r\nb"
  res:start(200, h)   -- raises: nothing was sent, so the client gets a 500
end

routes["/stream-raise"] = function(req, res)
  res:start(200, { ["content-type"] = "text/event-stream" })
  res:write("data: 1\n\n")
  error("stream broke")
end

function M.handle(req, res)
  local r = routes[req.path]
  if r then return r(req, res) end
  if req.path == "/health" then return { status = 200, body = '{"status":"ok"}' } end
  return { status = 404, headers = { ["content-type"] = "application/json" },
    body = '{"error":{"message":"not found","type":"invalid_request_error","code":"not_found"}}' }
end

return M
