-- moongate.gateway: the gateway's state for one worker, built once from the config: providers
-- resolved by kind, models, the breaker, the routing policy (hot-reloaded), retry settings.
local breaker = require "moongate.breaker"

local M = {}

local KINDS = { openai = true, anthropic = true, mock = true, extractive = true, ollama = true }

local function config_dir(config)
  return config and config.dir
end

-- resolve(path, config) -> absolute path: against the config's folder, then moongate's home.
function M.resolve(path, config)
  local absolute = require("moongate.config").absolute
  if path:sub(1, 1) == "/" then return absolute(path) end
  local dir = config_dir(config)
  if dir then
    local p = absolute(path, dir)
    local f = io.open(p, "rb")
    if f then f:close(); return p end
  end
  return absolute(path, require("moongate.base").home)
end

-- The config used when none names a provider: the extractive answerer for every model name,
-- over moongate's own docs when the retrieval pipeline is there.
function M.default_config()
  local home = require("moongate.base").home
  return {
    providers = { extractive = { kind = "extractive", index = home .. "/docs" } },
    models = { ["*"] = { route = { { provider = "extractive", timeout = 30 } }, deadline = 30 } },
  }
end

--- gateway.check_budgets(t) -> true | nil, err: step latency budgets, seconds per step name, and
--- enforce = true to cut upstream attempts at the `upstream` budget.
function M.check_budgets(t)
  if type(t) ~= "table" then return nil, "budgets must be a table of seconds per step" end
  for k, v in pairs(t) do
    if k == "enforce" then
      if type(v) ~= "boolean" then return nil, "budgets.enforce must be true or false" end
    elseif type(k) ~= "string" or type(v) ~= "number" or v <= 0 then
      return nil, "budgets." .. tostring(k) .. " must be a number of seconds > 0"
    end
  end
  if t.enforce and not t.upstream then return nil, "budgets.enforce needs an upstream budget to enforce" end
  return true
end

-- The settings each part of the config takes. A retry, breaker or upstream setting nothing
-- reads is a typo: an error. The top level, a model and a tier may carry settings of a routing
-- policy's or an edge stage's own (ctx.config, ctx.model): one moongate does not read is
-- listed, and named in a warning at startup.
local function set_of(list)
  local t = {}
  for _, k in ipairs(list) do t[k] = true end
  return t
end
local SETTINGS = {
  retry = set_of{ "max_attempts", "backoff", "backoff_max", "retry_after_max" },
  breaker = set_of{ "failures", "failure_rate", "min_requests", "window", "cooldown", "probe_timeout" },
  upstream = set_of{ "max_idle", "max_host_connections", "max_connections" },
}
local TOP = set_of{ "listen", "limits", "grace", "app", "access_log", "path", "dir",   -- the server's
  "providers", "models", "route_policy", "retry", "breaker", "idle_timeout", "upstream", "auth", "admin",
  "tenants", "quota", "quota_store", "caps", "prices", "trace", "cache", "flags", "releases", "edge",
  "redaction", "moderation", "budgets", "eval" }
local MODEL = set_of{ "route", "deadline", "degrade", "max_input_tokens", "max_output_tokens", "max_cost",
  "easy_route", "triage_model", "tools", "max_tool_iterations", "budgets", "cache" }
local TIER = set_of{ "provider", "model", "timeout", "attempts", "price", "weight" }

local function names(set)
  local out = {}
  for k in pairs(set) do out[#out + 1] = k end
  table.sort(out)
  return table.concat(out, ", ")
end

local function check_settings(cfg)
  for part, known in pairs(SETTINGS) do
    local t = cfg[part]
    if t ~= nil then
      if type(t) ~= "table" then return nil, "config: " .. part .. " must be a table" end
      for k in pairs(t) do
        if not known[k] then
          return nil, string.format("config: %s: unknown setting '%s' (expected %s)", part, tostring(k), names(known))
        end
      end
    end
  end
  local unknown = {}
  local function note(t, known, where)
    for k in pairs(t) do
      if not known[k] then unknown[#unknown + 1] = where .. tostring(k) end
    end
  end
  local app = rawget(cfg, "app")
  if app == nil or app == "moongate.app" then note(cfg, TOP, "") end   -- another app's config is its own
  for name, m in pairs(cfg.models) do
    if type(m) == "table" then
      note(m, MODEL, "models." .. tostring(name) .. ".")
      for _, list in ipairs{ "route", "easy_route" } do
        for i, tier in ipairs(type(m[list]) == "table" and m[list] or {}) do
          if type(tier) == "table" then note(tier, TIER, string.format("models.%s.%s[%d].", tostring(name), list, i)) end
        end
      end
    end
  end
  table.sort(unknown)
  return true, unknown
end

local function check_config(cfg)
  if cfg.budgets ~= nil then
    local ok, err = M.check_budgets(cfg.budgets)
    if not ok then return nil, "config: " .. err end
  end
  if type(cfg.providers) ~= "table" then return nil, "config: providers must be a table" end
  local cache = require "moongate.gateway.cache"
  local cok, cerr = cache.check_config(cfg.cache)
  if not cok then return nil, cerr end
  if type(cfg.models) ~= "table" then return nil, "config: models must be a table" end
  for name, p in pairs(cfg.providers) do
    if type(p) ~= "table" then return nil, "config: provider " .. name .. " must be a table" end
    local kind = p.kind or name
    if not KINDS[kind] then
      return nil, "config: provider " .. name .. ": unknown kind '" .. tostring(kind) .. "'"
    end
  end
  for name, m in pairs(cfg.models) do
    if type(m) ~= "table" or type(m.route) ~= "table" or #m.route == 0 then
      return nil, "config: model " .. name .. " needs a non-empty route"
    end
    for i, tier in ipairs(m.route) do
      if type(tier) ~= "table" or not cfg.providers[tier.provider] then
        return nil, string.format("config: model %s, tier %d: unknown provider '%s'", name, i,
          tostring(type(tier) == "table" and tier.provider))
      end
    end
    if m.tools ~= nil then
      if type(m.tools) ~= "table" then return nil, "config: model " .. name .. ": tools must be a list of plugin names" end
      for _, t in ipairs(m.tools) do
        if type(t) ~= "string" then return nil, "config: model " .. name .. ": tools must be a list of plugin names" end
      end
    end
    local mok, merr = cache.check_model(name, m.cache)
    if not mok then return nil, merr end
    if m.budgets ~= nil then
      local ok, err = M.check_budgets(m.budgets)
      if not ok then return nil, "config: model " .. name .. ": " .. err end
    end
    for i, tier in ipairs(m.easy_route or {}) do
      if type(tier) ~= "table" or not cfg.providers[tier.provider] then
        return nil, string.format("config: model %s, easy_route tier %d: unknown provider '%s'",
          name, i, tostring(type(tier) == "table" and tier.provider))
      end
    end
  end
  return check_settings(cfg)
end
M.check_config = check_config

-- new(config) -> gateway | nil, err
function M.new(config)
  local cfg = config
  if type(cfg) ~= "table" or (cfg.providers == nil and cfg.models == nil) then
    local d = M.default_config()
    cfg = setmetatable({ providers = d.providers, models = d.models }, { __index = cfg })
  end
  local ok, unread = check_config(cfg)
  if not ok then return nil, unread end
  local gw = {
    config = cfg,
    models = cfg.models,
    providers = {},
    retry = cfg.retry or {},
    idle_timeout = cfg.idle_timeout or 30,
    unread_settings = unread,   -- the app warns of those no edge stage claims either
    auth = cfg.auth,
    admin = cfg.admin ~= false,
    breaker = breaker.new(cfg.breaker),
    plugin_dirs = config and config.dir and { config.dir .. "/plugins" } or nil,
    policy_path = M.resolve(cfg.route_policy or "pipelines/route.lua", config),
  }
  for name, p in pairs(cfg.providers) do
    local kind = p.kind or name
    if kind == "ollama" then   -- Ollama speaks the OpenAI API under OLLAMA_HOST/v1
      local copy = { ollama = true }
      for k, v in pairs(p) do copy[k] = v end
      p, kind = copy, "openai"
    end
    if type(p.index) == "string" and p.index:sub(1, 1) ~= "/" then
      local copy = {}
      for k, v in pairs(p) do copy[k] = v end
      copy.index = M.resolve(p.index, config)
      p = copy
    end
    gw.providers[name] = require("moongate.providers." .. kind).new(name, p, cfg)
  end
  -- upstream connections: keep enough idle ones for a burst to come back to (curl's default
  -- cache shrinks with the transfers in flight, so connections would be closed and reopened)
  local up = cfg.upstream or {}
  local ok_http, http = pcall(require, "moongate.http")
  if ok_http and http.configure then
    http.configure{ max_idle = up.max_idle or 256, max_host_connections = up.max_host_connections or 0,
                    max_connections = up.max_connections or 0 }
  end
  -- the final tier of a model with `degrade = true`
  local ex = cfg.providers.extractive
  gw.degrade_provider = (ex and (ex.kind or "extractive") == "extractive") and gw.providers.extractive
    or require("moongate.providers.extractive").new("extractive", {})
  -- model names in a stable order for /v1/models
  local names = {}
  for name in pairs(cfg.models) do names[#names + 1] = name end
  table.sort(names)
  gw.model_names = names
  return gw
end

return M
