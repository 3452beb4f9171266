-- moongate.app: the default application served by `moongate serve`: GET /health and the
-- OpenAI-compatible gateway (/v1/chat/completions, /v1/embeddings, /v1/models, /admin/*).
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

local M = {}

local gw, gw_err

local function load_config()
  local ok, config = pcall(require, "moongate.config")
  if ok and type(config) == "table" and config.get then return config.get() end
  return nil
end

-- init(config): called once per worker before serving.
function M.init(config)
  gw, gw_err = gateway.new(config or load_config())
  if not gw then error(gw_err, 0) end
  return gw
end

local function get_gw()
  if not gw then M.init(load_config()) end
  return gw
end

-- The tenant for a request: nil when auth is off; false when the key is missing or unknown.
local function authenticate(g, req)
  local auth = g.auth
  if not auth or not auth.keys then return nil end
  local h = req.headers.authorization
  local key = h and h:match("^[Bb]earer%s+(%S+)%s*$") or req.headers["x-api-key"]
  local tenant = key and auth.keys[key]
  if not tenant then return false end
  return tenant
end

local JSON = { ["content-type"] = "application/json" }

local ROUTES = {
  ["/v1/chat/completions"] = "chat", ["/chat/completions"] = "chat",
  ["/v1/embeddings"] = "embeddings", ["/embeddings"] = "embeddings",
  ["/v1/models"] = "models", ["/models"] = "models",
  ["/admin/breakers"] = "breakers", ["/admin/usage"] = "usage",
}

function M.handle(req, res)
  local path, method = req.path, req.method
  if path == "/health" and (method == "GET" or method == "HEAD") then
    return { status = 200, headers = JSON, body = '{"status":"ok"}' }
  end
  local route = ROUTES[path]
  local model_id
  local reset_name
  if not route then
    model_id = path:match("^/v1/models/(.+)$")
    if model_id then route = "model" end
    reset_name = path:match("^/admin/breakers/([^/]+)/reset$")
    if reset_name then route = "reset" end
  end
  if not route then
    return errors.response(404, "no route for " .. method .. " " .. path, "not_found")
  end
  local g = get_gw()
  local tenant = authenticate(g, req)
  if tenant == false then
    return errors.response(401, "a valid API key is required (Authorization: Bearer ...)",
      "invalid_api_key", { ["www-authenticate"] = "Bearer" })
  end
  if route == "chat" or route == "embeddings" then
    if method ~= "POST" then
      return errors.response(405, "use POST for " .. path, "method_not_allowed", { allow = "POST" })
    end
    return require("moongate.gateway." .. route).handle(g, req, res, tenant)
  end
  if route == "reset" then
    if not g.admin then return errors.response(404, "no route for " .. method .. " " .. path, "not_found") end
    if method ~= "POST" then
      return errors.response(405, "use POST for " .. path, "method_not_allowed", { allow = "POST" })
    end
    return require("moongate.gateway.models").reset(g, reset_name)
  end
  if method ~= "GET" and method ~= "HEAD" then
    return errors.response(405, "use GET for " .. path, "method_not_allowed", { allow = "GET" })
  end
  local models = require "moongate.gateway.models"
  if route == "models" then return models.list(g) end
  if route == "model" then return models.one(g, model_id) end
  if not g.admin then
    return errors.response(404, "no route for " .. method .. " " .. path, "not_found")
  end
  return models[route](g)
end

return M
