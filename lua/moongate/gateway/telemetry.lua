-- moongate.gateway.telemetry: GET /metrics (Prometheus text), GET /admin/traces and
-- GET /admin/traces/{id} (the trace store, raw text included where the tenant's policy kept it),
-- GET /admin/stats (step and model percentiles, usage per tenant, from the same store),
-- and this worker's gauges: breaker states, resident memory, open connections.
local json = require "moongate.json"
local metrics = require "moongate.metrics"
local errors = require "moongate.gateway.errors"

local M = {}

local STATE = { closed = 0, half_open = 1, open = 2 }

local breaker_state = metrics.gauge("moongate_breaker_state",
  "Circuit breaker per provider: 0 closed, 1 half open, 2 open.", { "provider" })
local rss = metrics.gauge("moongate_process_resident_memory_bytes", "Resident memory of each worker process.")
local conns = metrics.gauge("moongate_open_connections", "Client connections open on each worker.")

local gw_for_gauges
local page = 4096

local function sample()
  local f = io.open("/proc/self/statm", "rb")
  if f then
    local s = f:read("*l")
    f:close()
    local pages = s and tonumber(s:match("^%d+%s+(%d+)"))
    if pages then rss:set(pages * page) end
  end
  local l = package.loaded["moongate.server"] and package.loaded["moongate.server"].listener
  if l then conns:set(l:stats().connections) end
end

--- telemetry.init(gw): once per worker (and again on reload, with the new gateway): the gauges
--- sampled each tick, and the tick itself.
function M.init(gw)
  gw_for_gauges = gw
  breaker_state:collect(function()
    local g = gw_for_gauges
    local rows, names = {}, {}
    for name in pairs(g.providers) do names[#names + 1] = name end
    table.sort(names)
    for _, name in ipairs(names) do rows[#rows + 1] = { STATE[g.breaker:state(name).state] or 0, name } end
    return rows
  end)
  if not M.sampling then
    M.sampling = true
    metrics.sampler(sample)
  end
  metrics.start(1)
end

--- GET /metrics
function M.metrics()
  sample()
  return { status = 200, headers = { ["content-type"] = "text/plain; version=0.0.4; charset=utf-8" },
           body = metrics.render() }
end

-- ---- the trace store over HTTP (admin) -------------------------------------------------------

local function open_store()
  local path = require("moongate.trace.export").settings.store
  if not path then return nil, errors.response(404, "the trace store is off (trace.store = false)", "not_found") end
  local s, err = require("moongate.trace.store").open(path)
  if not s then return nil, errors.response(503, err, "trace_store_unavailable") end
  return s
end

local function ok(body)
  return { status = 200, headers = { ["content-type"] = "application/json" }, body = assert(json.encode(body)) }
end

--- GET /admin/traces?since=SECONDS&tenant=T&errors=1&slow=MS&limit=N
function M.list(req)
  local s, fail = open_store()
  if not s then return fail end
  local q = req.query and require("moongate.server").decode_args(req.query) or {}
  local since = tonumber(q.since)
  local rows = s:list{ since = since and (os.time() - since) or 0, tenant = q.tenant,
                       errors = q.errors == "1" or q.errors == "true", slow = tonumber(q.slow),
                       limit = math.min(tonumber(q.limit) or 50, 1000) }
  s:close()
  return ok({ object = "list", data = json.array(rows) })
end

--- GET /admin/traces/{request id | trace id}
function M.show(_, id)
  local s, fail = open_store()
  if not s then return fail end
  local row, err = s:get(id)
  s:close()
  if not row then return errors.response(404, err, "not_found") end
  row.spans = json.decode(row.spans)
  if row.raw then row.raw = json.decode(row.raw) end
  return ok(row)
end

--- GET /admin/stats?since=1h: p50/p95/p99 per step and per model (as `moongate stats`), and the
--- requests, tokens and cost per tenant, over the stored requests of the window (default 1h)
function M.stats(req)
  local tstore = require "moongate.trace.store"
  local q = req.query and require("moongate.server").decode_args(req.query) or {}
  local since = 3600
  if q.since ~= nil then
    since = type(q.since) == "string" and tstore.duration(q.since)
    if not since then
      return errors.response(400, "since takes a duration such as 30s, 10m, 2h, 1d", "invalid_since")
    end
  end
  local s, fail = open_store()
  if not s then return fail end
  local from = os.time() - since
  local t = s:stats(from)
  local tenants = s:tenants(from)
  s:close()
  return ok({ since_seconds = since, steps = json.array(t.steps), models = json.array(t.models),
              tenants = json.array(tenants) })
end

return M
