-- moongate.trace.export: the worker's background task that takes finished traces from
-- moongate.trace's queue, draws their ids, encodes them once as OTLP JSON, writes them to the
-- trace store and posts them to the collector.
--
-- One export is in flight at a time; a batch that finds the collector still busy (slow) is
-- dropped and counted, as is a batch the collector refuses or cannot take. The store is written
-- in small transactions with a yield between batches, so the requests being served wait for one
-- batch at most.
local moongate = require "moongate"
local json = require "moongate.json"
local metrics = require "moongate.metrics"
local otlp = require "moongate.trace.otlp"

local M = {}

local concat, format = table.concat, string.format

local C = {
  interval = 1,          -- seconds between two looks at the queue
  batch = 128,           -- traces per store transaction and per export
  retention = 7 * 86400, -- seconds a stored trace is kept
  max_traces = 100000,   -- rows kept in the store
  store = nil,           -- path, or false for none
  otlp = nil,            -- { endpoint =, headers =, timeout = }
}
M.settings = C

local exported = metrics.counter("moongate_spans_exported_total", "Spans accepted by the OTLP collector.")
local stored = metrics.counter("moongate_traces_stored_total", "Traces written to the trace store.")

local store, store_path, store_failed
local running, in_flight = false, false
local last_prune = 0
local warned = {}

local function warn(what, err)
  local t = moongate.now()
  if (warned[what] or 0) > t - 60 then return end   -- once a minute: a dead collector is not news
  warned[what] = t
  local log = package.loaded["moongate.log"] or require("moongate.log")
  log.warn(what, { error = tostring(err) })
end

--- export.configure(cfg.trace, config) -> true | nil, err
function M.configure(t, config)
  local o = t.otlp
  if o ~= nil then
    if type(o) == "string" then o = { endpoint = o } end
    if type(o) ~= "table" or type(o.endpoint) ~= "string" or not o.endpoint:match("^https?://") then
      return nil, "trace.otlp needs an endpoint http(s)://HOST:PORT/v1/traces"
    end
    if o.headers ~= nil and type(o.headers) ~= "table" then return nil, "trace.otlp.headers must be a table" end
  end
  local path = t.store
  if path ~= nil and path ~= false and type(path) ~= "string" then
    return nil, "trace.store must be a path or false"
  end
  if path == nil then path = require("moongate.trace.store").default_path() end
  if path and path:sub(1, 1) ~= "/" and config and config.dir then path = config.dir .. "/" .. path end
  C.interval, C.batch = t.interval or 1, t.batch or 128
  C.retention, C.max_traces = t.retention or 7 * 86400, t.max_traces or 100000
  C.otlp, C.store, C.raw = o, path, t.raw
  if path ~= store_path then
    if store then store:close() end
    store, store_path, store_failed = nil, path, false
  end
  if not running then
    running = true
    moongate.spawn(M.loop)
  end
  return true
end

-- ---- one trace -> one store row and its OTLP spans -------------------------------------------

local sha256_hex
local function hash(s)
  if type(s) ~= "string" then return nil end
  if not sha256_hex then sha256_hex = require("moongate.crypto").sha256_hex end
  return sha256_hex(s)
end

local function encode(tr)
  local root, tid = tr[1], tr.id
  root.sid = root.sid or require("moongate.trace").span_id()
  local info = tr.info or {}
  -- prompt and response are kept as hashes; text only where the tenant's policy says so
  if info.prompt then root.attrs = root.attrs or {}; root.attrs["moongate.prompt.sha256"] = hash(info.prompt) end
  if info.response then root.attrs = root.attrs or {}; root.attrs["moongate.response.sha256"] = hash(info.response) end
  local spans, steps = {}, {}
  local trace = require "moongate.trace"
  for i = 1, tr.n do
    local sp = tr[i]
    if not sp.sid then trace.id_of(sp) end
    local parent = sp.parent and sp.parent.sid or (i == 1 and tr.remote_parent) or nil
    if i == 1 then sp.state = tr.state end
    spans[i] = otlp.span(sp, tid, parent)
    if sp.step then steps[#steps + 1] = format("%s=%.3f", sp.step, (sp.t1 - sp.t0) * 1000) end
  end
  local raw
  if info.raw and (info.prompt or info.response) then
    raw = json.encode({ prompt = info.prompt, response = info.response })
  end
  local row = {
    request_id = info.request_id or tid, trace_id = tid, start = root.t0,
    duration_ms = (root.t1 - root.t0) * 1000, route = info.route, tenant = info.tenant,
    model = info.model, upstream = info.upstream, status = info.status, error = root.status == "error" and root.msg or nil,
    tokens_in = info.tokens_in, tokens_out = info.tokens_out, cost = info.cost,
    steps = concat(steps, ";"), raw = raw,
  }
  return row, spans
end

-- ---- the collector ---------------------------------------------------------------------------

local function resource()
  local process = require "moongate._process"
  return { ["service.name"] = require("moongate.trace").settings.service,
           ["service.version"] = moongate.version, ["process.pid"] = process.pid(),
           ["telemetry.sdk.name"] = "moongate", ["telemetry.sdk.language"] = "lua" }
end

local function post(body, nspans)
  local o = C.otlp
  local headers = { ["content-type"] = "application/json" }
  for k, v in pairs(o.headers or {}) do headers[k] = v end
  local http = require "moongate.http"
  local res, err = http.post(o.endpoint, body, { headers = headers, timeout = o.timeout or 5, connect_timeout = 1 })
  if res and res.status >= 200 and res.status < 300 then
    exported:inc(nspans)
  else
    require("moongate.trace").dropped:inc(nspans, "export_failed")
    warn("trace export failed", res and ("collector answered " .. res.status) or err)
  end
end

-- ---- the loop --------------------------------------------------------------------------------

local function open_store()
  if store or store_failed or not C.store then return store end
  local s, err = require("moongate.trace.store").open(C.store)
  if not s then
    store_failed = true
    warn("trace store unavailable; traces are not stored", err)
    return nil
  end
  store = s
  return store
end

--- export.drain(): store and export everything queued now (the loop's work; shutdown)
function M.drain()
  local trace = require "moongate.trace"
  while true do
    local batch = trace.take(C.batch)
    if #batch == 0 then break end
    local rows, texts, nspans = {}, {}, 0
    for i = 1, #batch do
      local tr = batch[i]
      local ok, row, sp = pcall(encode, tr)
      local text = ok and json.encode(json.array(sp))
      if text then
        row.spans = text
        rows[#rows + 1] = row
        if tr.sampled then texts[#texts + 1] = text:sub(2, -2); nspans = nspans + #sp end
      else
        warn("trace encoding failed", row)
      end
    end
    local s = open_store()
    if s then
      local ok, err = pcall(s.insert, s, rows)
      if ok and err then stored:inc(#rows) else warn("trace store write failed", err) end
    end
    if C.otlp and nspans > 0 then
      if in_flight then
        trace.dropped:inc(nspans, "exporter_busy")
      else
        -- the spans were encoded once, for the store; the request wraps the same text
        local head = json.encode(otlp.request(resource(), {}, moongate.version))
        local body = head:gsub('"spans":%[%]', function() return '"spans":[' .. concat(texts, ",") .. "]" end, 1)
        in_flight = true
        moongate.spawn(function()
          local ok, err = pcall(post, body, nspans)
          in_flight = false
          if not ok then warn("trace export failed", err) end
        end)
      end
    end
    moongate.yield()
  end
  local t = moongate.now()
  if store and t - last_prune > 60 then
    last_prune = t
    pcall(store.prune, store, C.retention, C.max_traces)
  end
end

function M.loop()
  while true do
    moongate.sleep(C.interval)
    local ok, err = pcall(M.drain)
    if not ok then warn("trace export loop failed", err) end
  end
end

--- export.shutdown(timeout): a last drain, and a wait for the export in flight (serve's exit)
function M.shutdown(timeout)
  pcall(M.drain)
  local t_end = moongate.now() + (timeout or 2)
  while in_flight and moongate.now() < t_end do moongate.sleep(0.01) end
end

return M
