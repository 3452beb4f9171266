-- moongate.gateway.models: GET /v1/models (the names the config exposes, with their tiers'
-- breaker states) and GET /admin/breakers, /admin/usage.
local json = require "moongate.json"
local usage = require "moongate.gateway.usage"

local M = {}

local function breaker_view(gw, provider)
  local s = gw.breaker:state(provider)
  local out = { state = s.state, failures = s.failures }
  if s.retry_in then out.retry_in = math.floor(s.retry_in * 10 + 0.5) / 10 end
  return out
end

function M.list(gw)
  local data = json.array()
  local created = gw.created or os.time()
  gw.created = created
  for _, name in ipairs(gw.model_names) do
    if name ~= "*" then
      local m = gw.models[name]
      local tiers = json.array()
      for _, t in ipairs(m.route) do
        local b = breaker_view(gw, t.provider)
        tiers[#tiers + 1] = { provider = t.provider, model = t.model or name, timeout = t.timeout or 30,
                              breaker = b.state }
      end
      data[#data + 1] = { id = name, object = "model", created = created, owned_by = "moongate",
                          moongate = { route = tiers, deadline = m.deadline, degrade = m.degrade == true } }
    end
  end
  return { status = 200, headers = { ["content-type"] = "application/json" },
           body = assert(json.encode({ object = "list", data = data })) }
end

function M.one(gw, name)
  local list = M.list(gw)
  for _, m in ipairs(json.decode(list.body).data) do
    if m.id == name then
      return { status = 200, headers = { ["content-type"] = "application/json" }, body = assert(json.encode(m)) }
    end
  end
  return require("moongate.gateway.errors").response(404,
    string.format("the model '%s' does not exist", name), "model_not_found")
end

function M.breakers(gw)
  local providers = json.object()
  local names = {}
  for name in pairs(gw.providers) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do providers[name] = breaker_view(gw, name) end
  return { status = 200, headers = { ["content-type"] = "application/json" },
           body = assert(json.encode({ providers = providers })) }
end

-- POST /admin/breakers/<provider>/reset: close a circuit by hand
function M.reset(gw, name)
  if not gw.providers[name] then
    return require("moongate.gateway.errors").response(404,
      string.format("no provider '%s'", name), "not_found")
  end
  gw.breaker:reset(name)
  return { status = 200, headers = { ["content-type"] = "application/json" },
           body = assert(json.encode({ provider = name, breaker = breaker_view(gw, name) })) }
end

function M.usage(gw)
  local t = usage.totals()
  if next(t) == nil then t = json.object() end
  return { status = 200, headers = { ["content-type"] = "application/json" },
           body = assert(json.encode({ usage = t })) }
end

return M
