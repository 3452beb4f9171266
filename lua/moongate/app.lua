-- moongate.app: the default application served by `moongate serve`: GET /health, the
-- OpenAI-compatible gateway (/v1/chat/completions, /v1/embeddings, /v1/models, /admin/*) and the
-- web console's files (GET /console).
-- The server puts the config's folder first on package.path, and the examples' configs are
-- named moongate.lua: make sure `require "moongate"` means the runtime, not a config file.
do
  local m = package.loaded.moongate
  if type(m) ~= "table" or m.now == nil then
    local init = require("moongate.base").home .. "/lua/moongate/init.lua"
    package.loaded.moongate = assert(loadfile(init))("moongate")
  end
end

local gateway = require "moongate.gateway"
local errors = require "moongate.gateway.errors"
local edge = require "moongate.edge"
local trace = require "moongate.trace"
local telemetry = require "moongate.gateway.telemetry"

local M = {}

local gw

local function load_config()
  local ok, config = pcall(require, "moongate.config")
  if ok and type(config) == "table" and config.get then return config.get() end
  return nil
end

-- A setting nothing reads is most likely a typo (`timeuot`): said once, at startup.
local function warn_unread(unread, claimed)
  local left = {}
  for _, k in ipairs(unread) do if not claimed[k] then left[#left + 1] = k end end
  if #left > 0 then require("moongate.log").warn("config: settings nothing reads (a typo?)", { settings = left }) end
end

-- init(config) -> gw | nil, err: called once per worker before serving; a config that does not
-- hold is refused with its message.
function M.init(config)
  config = config or load_config()
  local ok, terr = trace.configure(config and config.trace, config)
  if not ok then return nil, "config: " .. terr end
  local g, err = gateway.new(config)
  if not g then return nil, err end
  telemetry.init(g)
  local chain, cerr = edge.new(g.config, g)
  if not chain then return nil, cerr end
  g.edge = chain
  warn_unread(g.unread_settings, chain.settings)
  gw = g
  return gw
end

local function get_gw()
  if not gw then
    local g, err = M.init(load_config())
    if not g then error(err, 0) end
  end
  return gw
end

local JSON = { ["content-type"] = "application/json" }

-- ---- routes ---------------------------------------------------------------------------------
-- A route: { name =, method = "GET"|"POST", admin = bool, handler = function(ctx, res) }.
-- GET routes answer HEAD too. Admin routes need the admin key when auth is configured, and are
-- off (404) with `admin = false` in the config. Every route but /health runs the edge chain.

local EXACT, PATTERNS = {}, {}

--- app.route(paths, route): serve route at each exact path in paths.
function M.route(paths, r)
  for _, p in ipairs(type(paths) == "table" and paths or { paths }) do EXACT[p] = r end
  return r
end

--- app.route_pattern(pattern, route): serve route at the paths matching a Lua pattern; its
--- first capture is ctx.capture.
function M.route_pattern(pattern, r)
  r.template = r.template or pattern
  PATTERNS[#PATTERNS + 1] = { pattern, r }
  return r
end

local function lookup(path)
  local r = EXACT[path]
  if r then return r end
  for i = 1, #PATTERNS do
    local cap = path:match(PATTERNS[i][1])
    if cap then return PATTERNS[i][2], cap end
  end
end

local function gateway_route(name)
  return function(ctx, res) return require("moongate.gateway." .. name).handle(ctx.gw, ctx.req, res, ctx.tenant) end
end
local function models_view(name)
  return function(ctx) return require("moongate.gateway.models")[name](ctx.gw) end
end

M.route({ "/v1/chat/completions", "/chat/completions" }, { name = "chat", method = "POST", handler = gateway_route("chat") })
M.route({ "/v1/embeddings", "/embeddings" }, { name = "embeddings", method = "POST", handler = gateway_route("embeddings") })
M.route({ "/v1/feedback", "/feedback" }, { name = "feedback", method = "POST",
  handler = function(ctx) return require("moongate.gateway.feedback").handle(ctx) end })
M.route({ "/v1/models", "/models" }, { name = "models", method = "GET", handler = models_view("list") })
M.route_pattern("^/v1/models/(.+)$", { name = "model", method = "GET", template = "/v1/models/{model}",
  handler = function(ctx) return require("moongate.gateway.models").one(ctx.gw, ctx.capture) end })
M.route("/admin/breakers", { name = "breakers", method = "GET", admin = true, handler = models_view("breakers") })
M.route("/admin/usage", { name = "usage", method = "GET", admin = true, handler = models_view("usage") })
M.route("/admin/flags", { name = "flags", method = "GET", admin = true,
  handler = function(ctx) return require("moongate.gateway.flags").show(ctx.gw) end })
M.route("/admin/versions", { name = "versions", method = "GET", admin = true,
  handler = function(ctx) return require("moongate.gateway.versions").show(ctx.gw) end })
M.route("/admin/stats", { name = "stats", method = "GET", admin = true,
  handler = function(ctx) return telemetry.stats(ctx.req) end })
M.route("/admin/releases", { name = "releases", method = "GET", admin = true,
  handler = function(ctx) return require("moongate.gateway.releases").show(ctx.gw) end })
M.route("/metrics", { name = "metrics", method = "GET", admin = true, handler = telemetry.metrics })
M.route("/admin/traces", { name = "traces", method = "GET", admin = true,
  handler = function(ctx) return telemetry.list(ctx.req) end })
M.route_pattern("^/admin/traces/([%w%-]+)$", { name = "trace", method = "GET", admin = true,
  template = "/admin/traces/{id}", handler = function(ctx) return telemetry.show(ctx.req, ctx.capture) end })
M.route_pattern("^/admin/breakers/([^/]+)/reset$", { name = "reset", method = "POST", admin = true,
  template = "/admin/breakers/{provider}/reset",
  handler = function(ctx) return require("moongate.gateway.models").reset(ctx.gw, ctx.capture) end })

M.route("/admin/cache/flush", { name = "cache_flush", method = "POST", admin = true,
  handler = function(ctx) return require("moongate.gateway.cache").flush_route(ctx) end })

local function not_found(method, path)
  return errors.response(404, "no route for " .. method .. " " .. path, "not_found")
end

function M.handle(req, res)
  local path, method = req.path, req.method
  if path == "/health" and (method == "GET" or method == "HEAD") then
    return { status = 200, headers = JSON, body = '{"status":"ok"}' }
  end
  if path:sub(1, 8) == "/console" and (#path == 8 or path:byte(9) == 47) then
    -- static files holding no data: no edge chain, no key (their data calls need one)
    return require("moongate.gateway.console").handle(get_gw(), req)
  end
  local r, capture = lookup(path)
  if not r then return not_found(method, path) end
  local g = get_gw()
  if r.admin and not g.admin then return not_found(method, path) end
  local ctx = edge.context(req, res, r.name, g, r.template or path)
  ctx.admin, ctx.capture = r.admin, capture
  if method ~= r.method and not (method == "HEAD" and r.method == "GET") then
    -- the key is checked first, so an unauthenticated caller learns nothing about routes
    local auth = g.edge.stages.auth
    local denied = auth and auth:before(ctx)
    if denied then return denied end
    return errors.response(405, "use " .. r.method .. " for " .. path, "method_not_allowed", { allow = r.method })
  end
  return edge.run(g.edge, ctx, r.handler)
end

return M
