-- moongate.observe: what every request through the edge reports when it ends — its root span's
-- attributes (HTTP and generative-AI semantic conventions, plus moongate's own), the trace handed
-- to the store and exporter, and the request metrics.
local trace = require "moongate.trace"
local metrics = require "moongate.metrics"
local prices = require "moongate.prices"

local M = {}

local now = require("moongate").now

local requests = metrics.counter("moongate_requests_total",
  "Requests answered, by route, tenant, model alias, provider that answered and HTTP status.",
  { "route", "tenant", "model", "provider", "status" })
local duration = metrics.histogram("moongate_request_duration_seconds",
  "Time from the request's first byte to its last response byte, by route and model alias.", { "route", "model" })
local tokens = metrics.counter("moongate_tokens_total",
  "Tokens used, by tenant, upstream model and direction (input, output).", { "tenant", "model", "direction" })
local cost = metrics.counter("moongate_cost_total",
  "Spend from the config's price table (its currency units), by tenant and upstream model.", { "tenant", "model" })


-- Routes that read the telemetry itself: counted, not traced (a scrape every 15 s would bury
-- the requests worth reading in the trace store).
local UNTRACED = { metrics = true, traces = true, trace = true }

--- observe.start(ctx): the request's root span, named as HTTP servers name theirs.
function M.start(ctx, req)
  if UNTRACED[ctx.route] then ctx.span = trace.NOOP; return trace.NOOP end
  local root = trace.request(req, req.method .. " " .. (ctx.route_path or req.path))
  ctx.span = root
  local b = ctx.gw and ctx.gw.config.budgets
  if b and not root.noop then root.tr.budgets = b end
  return root
end

-- The model the client asked for, and the config entry that served it (the metrics' label: a
-- catch-all "*" entry takes any name, and a label per client-chosen name would be unbounded).
local function model_of(ctx)
  local d = rawget(ctx.req, "doc")
  local m = type(d) == "table" and d.model
  if type(m) ~= "string" then return nil, "" end
  local models = ctx.gw and ctx.gw.models
  return m, (models and models[m] == nil and models["*"] ~= nil) and "*" or m
end

--- observe.status_of(ctx) -> the status the client got (499: none was sent, the client left first)
local function status_of(ctx) return ctx.res.status or ctx.status or 499 end
M.status_of = status_of

local function spent_of(ctx, alias)
  local u = ctx.usage
  if u.calls == 0 then return nil end
  local p = prices.of(ctx.gw and ctx.gw.config.prices, ctx.model, alias)
  return p and prices.cost(p, u.prompt_tokens, u.completion_tokens)
end

--- observe.cost_of(ctx) -> what the request's upstream calls cost from the config's price table
--- (priced by upstream model, else by the alias the client asked for, else "*"), or nil
function M.cost_of(ctx) return spent_of(ctx, (model_of(ctx))) end

-- The request as its trace tells it: the root span's attributes, and the summary stored with it
-- (moongate.trace.finish_request calls this only for a trace the store or the collector takes).
local function describe(ctx, root)
  local req = ctx.req
  local status = status_of(ctx)
  local alias = model_of(ctx)
  local u = ctx.usage
  local tenant, route = ctx.tenant, ctx.route
  local provider, upstream = ctx.provider, ctx.model
  local tin, tout = u.prompt_tokens, u.completion_tokens
  local spent = spent_of(ctx, alias)
  local remote, host, port = req.remote, nil, nil
  if remote then host, port = remote:match("^%[?(.-)%]?:(%d+)$") end
  local calls = u.calls > 0
  local on, flags = nil, rawget(ctx, "flags")
  if type(flags) == "table" then
    on = {}
    for name, v in pairs(flags) do if v then on[#on + 1] = name end end
    table.sort(on)
  end
  -- with what the request's own steps set on the root (a cache hit...)
  root:set_all{
    ["http.request.method"] = req.method, ["url.path"] = req.path, ["http.route"] = ctx.route_path,
    ["http.response.status_code"] = status, ["moongate.request_id"] = ctx.id, ["moongate.route"] = route,
    ["client.address"] = host or remote, ["client.port"] = port and tonumber(port),
    ["user_agent.original"] = req.headers["user-agent"], ["moongate.tenant"] = tenant,
    ["gen_ai.request.model"] = alias, ["gen_ai.response.model"] = upstream, ["gen_ai.provider.name"] = provider,
    ["gen_ai.usage.input_tokens"] = calls and tin or nil, ["gen_ai.usage.output_tokens"] = calls and tout or nil,
    ["moongate.cost"] = spent, ["moongate.flags"] = on,
    ["moongate.redactions"] = (ctx.redactions or 0) > 0 and ctx.redactions or nil,
    ["moongate.safety.refused"] = ctx.refused,
  }
  local policy = ctx.policy or {}
  return {
    request_id = ctx.id, route = route, tenant = tenant, model = alias, status = status,
    upstream = provider and (provider .. "/" .. (upstream or "")) or nil,
    tokens_in = calls and tin or nil, tokens_out = calls and tout or nil, cost = spent,
    prompt = route == "chat" and req.body or nil, response = ctx.response_text,
    raw = policy.log_raw == true,
  }
end

--- observe.finish(ctx): called once the request's task ends (the response is sent or cut).
function M.finish(ctx)
  local root = ctx.span
  local status = status_of(ctx)
  local alias, label = model_of(ctx)
  local u = ctx.usage
  local upstream = ctx.model
  local route = ctx.route
  local t = ctx.tenant or "-"
  requests:inc(1, route, t, label, ctx.provider or "", status)
  duration:observe(now() - ctx.t0, route, label)
  if u.calls > 0 then
    tokens:inc(u.prompt_tokens, t, upstream or "", "input")
    tokens:inc(u.completion_tokens, t, upstream or "", "output")
    local spent = spent_of(ctx, alias)
    if spent then cost:inc(spent, t, upstream or "") end
  end
  if root.noop then return end
  local budgets = root.tr.budgets
  local ob = budgets and budgets.overhead
  if ob and ctx.overhead and ctx.overhead > ob then trace.overrun(root, "overhead", ctx.overhead, ob) end
  if status >= 500 and not root.status then root:fail("HTTP " .. status) end
  trace.finish_request(root, describe, ctx)
end

return M
