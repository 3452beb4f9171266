-- moongate.server: the Lua half of the HTTP server. The C core parses and builds each request;
-- here each one is dispatched to the app in its own task, with 500/504 answers and the listener's life.
local core = require "moongate._http_server"
local sched = require "moongate._sched"
local log = require "moongate.log"
local config = require "moongate.config"

local type, tostring, xpcall, pcall = type, tostring, xpcall, pcall
local traceback = debug.traceback
local now, deadline, context = sched.now, sched.deadline, sched.context

local M = {}

-- ---- requests -----------------------------------------------------------------------------

local function unescape(s)
  s = s:gsub("+", " ")
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

--- Decode a query string: "a=1&b=x%20y&a=2&flag" -> {a = {"1", "2"}, b = "x y", flag = true}.
function M.decode_args(q)
  local args = {}
  if q == nil or q == "" then return args end
  for pair in q:gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=(.*)$")
    if k then v = unescape(v) else k, v = pair, true end
    k = unescape(k)
    local old = args[k]
    if old == nil then
      args[k] = v
    elseif type(old) == "table" then
      old[#old + 1] = v
    else
      args[k] = { old, v }
    end
  end
  return args
end

local req_methods = {}

--- req:json() -> value | nil, err: the body decoded as JSON.
function req_methods:json()
  local body = self.body
  if body == nil or body == "" then return nil, "empty body" end
  return require("moongate.json").decode(body)
end

M.request_mt = {
  __index = function(req, k)
    if k == "args" then
      local a = M.decode_args(rawget(req, "query"))
      rawset(req, "args", a)
      return a
    end
    return req_methods[k]
  end,
}

-- ---- the app ------------------------------------------------------------------------------

local handle_fn   -- the current app's handle(req, res); replaced on reload

--- server.load_app(cfg) -> app | nil, err: cfg.app as a module name (required afresh), a table
--- with handle(), or a function(req, res); its init(cfg) runs here.
function M.load_app(cfg, fresh)
  local spec = cfg.app or "moongate.app"
  local app
  if type(spec) == "string" then
    if fresh then package.loaded[spec] = nil end
    local ok, mod = xpcall(require, traceback, spec)
    if not ok then return nil, "cannot load app '" .. spec .. "': " .. tostring(mod) end
    app = mod
  elseif type(spec) == "function" then
    app = { handle = spec }
  else
    app = spec
  end
  if type(app) ~= "table" or type(app.handle) ~= "function" then
    return nil, "the app must define handle(req, res)"
  end
  if type(app.init) == "function" then
    -- an error raised is a bug (with its traceback); nil, message is a config the app refuses
    local ok, err, refused = xpcall(app.init, traceback, cfg)
    if not ok then return nil, "app init failed: " .. tostring(err) end
    if err == nil and refused ~= nil then return nil, tostring(refused) end
  end
  return app
end

--- server.set_app(app): new requests go to app.handle; in-flight ones finish on the old one.
function M.set_app(app) handle_fn = app.handle end

local function on_error(e)
  return { msg = tostring(e), tb = traceback(tostring(e), 2) }
end

local function past_deadline()
  local d = deadline()
  return d ~= nil and now() >= d - 0.001
end

local function answer_failure(res, what, err)
  if past_deadline() then
    log.warn("handler timed out", { error = err and err.msg })
    if not res.started then
      res:error(504, "the request handler timed out", "server_error", "timeout")
    end
    return
  end
  log.error(what, err and { error = err.msg, traceback = err.tb } or nil)
  if not res.started then
    res:error(500, "internal server error", "server_error", "internal_error")
  end
  -- a started stream is left unfinished: the core cuts the connection, so the client sees
  -- a truncated body rather than a complete-looking one
end

-- Runs in the request's own task; the core cancels it when the client goes away or at the deadline.
local function dispatch(req, res)
  context().request_id = req.id
  local ok, r = xpcall(handle_fn, on_error, req, res)
  if res.finished then return end
  if not ok then return answer_failure(res, "handler raised", r) end
  if past_deadline() and not res.started then
    -- whatever it returns, a handler that outlived its deadline is cut: 504
    return answer_failure(res, "handler returned after its deadline")
  end
  if type(r) == "table" then
    local body = r.body
    local headers = r.headers
    if type(body) == "table" then
      local err
      body, err = require("moongate.json").encode(body)
      if not body then return answer_failure(res, "cannot encode the response body", { msg = err }) end
      if headers == nil then headers = { ["content-type"] = "application/json" } end
    end
    local sent, err = pcall(res.send, res, r.status or 200, headers, body)
    if not sent then return answer_failure(res, "bad response from handler", { msg = tostring(err) }) end
  elseif res.started then
    res:finish()
  elseif r == nil then
    answer_failure(res, "handler returned no response")
  else
    answer_failure(res, "handler returned a " .. type(r) .. ", not a response table")
  end
end

-- ---- the listener -------------------------------------------------------------------------

--- server.parse_listen("HOST:PORT" | "[v6]:PORT" | ":PORT" | "PORT") -> host, port | nil, err
function M.parse_listen(s)
  local host, port = s:match("^%[([^%]]+)%]:(%d+)$")
  if not host then host, port = s:match("^([^:]*):(%d+)$") end
  if not host and s:match("^%d+$") then host, port = "127.0.0.1", s end
  port = tonumber(port)
  if not host or not port or port > 65535 then
    return nil, "bad listen address '" .. s .. "' (expected HOST:PORT)"
  end
  if host == "" or host == "*" then host = "0.0.0.0" end
  return host, port
end

local function limits_of(cfg)
  local l = cfg.limits
  return {
    access_log = cfg.access_log ~= false,
    header_bytes = l.header_bytes, headers = l.headers, body_bytes = l.body_bytes,
    header_timeout = l.header_timeout, body_timeout = l.body_timeout,
    keepalive_timeout = l.keepalive_timeout, handler_timeout = l.handler_timeout,
    stream_idle_timeout = l.stream_idle_timeout, connections = l.connections,
  }
end

--- server.start(cfg, opts) -> listener | nil, err. cfg is a normalized config; opts.listen
--- overrides cfg.listen; opts.reuseport shares the port between workers.
function M.start(cfg, opts)
  opts = opts or {}
  local app, err = M.load_app(cfg)
  if not app then return nil, err end
  config.set(cfg)
  M.set_app(app)
  local host, port = M.parse_listen(opts.listen or cfg.listen or "127.0.0.1:8080")
  if not host then return nil, port end
  local o = limits_of(cfg)
  o.host, o.port, o.reuseport, o.handler, o.req_mt = host, port, opts.reuseport, dispatch, M.request_mt
  local l, lerr = core.listen(o)
  if l then M.listener = l end   -- this worker's listener, for its gauges (open connections)
  return l, lerr
end

--- server.reload(path, listener?) -> true | nil, err: load the config again and re-require the
--- app; new requests use it (and the new limits, when listener is given), in-flight requests
--- finish on the old one. On failure the old one stays.
function M.reload(path, listener)
  local cfg, err
  if path then cfg, err = config.load(path) else cfg = config.default() end
  if not cfg then return nil, err end
  local app, err2 = M.load_app(cfg, true)
  if not app then return nil, err2 end
  config.set(cfg)
  M.set_app(app)
  if listener then listener:set_limits(limits_of(cfg)) end
  return true
end

return M
