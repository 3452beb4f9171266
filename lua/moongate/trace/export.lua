-- moongate.trace.export: where finished traces go. A trace the collector takes is encoded as
-- OTLP JSON into the export buffer when its request has been answered (submit); one the store
-- takes waits in moongate.trace's queue for the worker's background task, which writes it to the
-- trace store and posts the export buffer to the collector.
--
-- Like OpenTelemetry's batch span processor: encoded spans wait in a bounded buffer while one
-- export is in flight, the next export takes everything that waited, and spans that find the
-- buffer full (the collector is slow or down) are dropped and counted. The store keeps up to
-- store_rate traces a second per worker (and as many failed requests again), so writing it never
-- costs more than a small, fixed share of the worker. Its rows are written in small batches with
-- a yield between them, so the requests being served wait for one batch at most.
local buffer = require "string.buffer"
local moongate = require "moongate"
local json = require "moongate.json"
local metrics = require "moongate.metrics"
local otlp = require "moongate.trace.otlp"

local M = {}

local format, concat, min = string.format, table.concat, math.min

local C = {
  interval = 0.1,        -- seconds between two looks at the queue
  batch = 32,            -- traces encoded between two yields, and per store transaction
  store_rate = 100,      -- traces stored per second (and as many failed requests again)
  export_queue = 8192,   -- encoded spans waiting for the collector; more are dropped
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
  C.interval, C.batch = t.interval or 0.1, t.batch or 32
  C.store_rate, C.export_queue = t.store_rate or 100, t.export_queue or 8192
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

-- ---- which traces the store keeps: a token bucket per kind, refilled at store_rate a second ----

local buckets = { ok = { n = 0, t = 0 }, failed = { n = 0, t = 0 } }
local function store_takes(failed)
  local b = buckets[failed and "failed" or "ok"]
  local t, rate = moongate.now(), C.store_rate
  b.n = min(rate, b.n + (t - b.t) * rate)
  b.t = t
  if b.n < 1 then return false end
  b.n = b.n - 1
  return true
end

--- export.takes(trace, failed) -> whether the store or the collector takes a finished trace (a
--- sampled one, or a failed request's for the store): decided when the request ends, so a trace
--- nobody takes is not kept waiting for the loop. export.submit(trace) follows for one taken.
function M.takes(tr, failed)
  local to_store = (tr.sampled or failed) and C.store and not store_failed and store_takes(failed) or false
  local to_export = tr.sampled and C.otlp ~= nil
  tr.to_store, tr.to_export = to_store, to_export
  return to_store or to_export
end

-- ---- one trace -> its OTLP spans, and its store row when kept ---------------------------------

local sha256_hex
local function hash(s)
  if type(s) ~= "string" then return nil end
  if not sha256_hex then sha256_hex = require("moongate.crypto").sha256_hex end
  return sha256_hex(s)
end

local sbuf = buffer.new()

-- The trace's spans, comma-separated OTLP span objects, into buffer b.
local function put_spans(b, tr)
  local root = tr[1]
  local trace = require "moongate.trace"
  local info = tr.info or {}
  -- prompt and response are kept as hashes; text only where the tenant's policy says so
  if info.prompt or info.response then
    local a = root.attrs or {}
    root.attrs = a
    a["moongate.prompt.sha256"], a["moongate.response.sha256"] = hash(info.prompt), hash(info.response)
  end
  root.state = tr.state
  for i = 1, tr.n do trace.id_of(tr[i]) end
  otlp.put_spans(b, tr, tr.remote_parent)
end

-- The trace's store row, its spans as a JSON array.
local function row_of(tr)
  local root, tid = tr[1], tr.id
  local info = tr.info or {}
  sbuf:reset()
  sbuf:put("[")
  put_spans(sbuf, tr)
  sbuf:put("]")
  local steps = {}
  for i = 1, tr.n do
    local sp = tr[i]
    if sp.step then steps[#steps + 1] = format("%s=%.3f", sp.step, (sp.t1 - sp.t0) * 1000) end
  end
  local raw
  if info.raw and (info.prompt or info.response) then
    raw = json.encode({ prompt = info.prompt, response = info.response })
  end
  return {
    request_id = info.request_id or tid, trace_id = tid, start = root.t0,
    duration_ms = (root.t1 - root.t0) * 1000, route = info.route, tenant = info.tenant,
    model = info.model, upstream = info.upstream, status = info.status, error = root.status == "error" and root.msg or nil,
    tokens_in = info.tokens_in, tokens_out = info.tokens_out, cost = info.cost,
    steps = concat(steps, ";"), raw = raw, spans = sbuf:tostring(),
  }
end

-- ---- the collector ---------------------------------------------------------------------------

local function resource()
  local process = require "moongate._process"
  return { ["service.name"] = require("moongate.trace").settings.service,
           ["service.version"] = moongate.version, ["process.pid"] = process.pid(),
           ["telemetry.sdk.name"] = "moongate", ["telemetry.sdk.language"] = "lua" }
end

-- Encoded spans waiting for the collector, in chunks of about CHUNK bytes, each already the whole
-- request body but for its tail: one export posts one chunk, straight from its buffer (no Lua
-- string is made of it), so no request waits behind building (or collecting the garbage of) a
-- huge body.
local CHUNK = 256 * 1024
local chunks, chunk_spans, pending_spans = { buffer.new() }, { 0 }, 0
local spare, SPARE = {}, 2   -- posted chunks' buffers, kept for later chunks: grown once, not each time

-- the chunk the next trace's spans go into: its request head written when it is new, a comma
-- when it has spans already
local function open_chunk()
  local i = #chunks
  if #chunks[i] > CHUNK then
    i = i + 1
    chunks[i], chunk_spans[i] = table.remove(spare) or buffer.new(), 0
  end
  local b = chunks[i]
  if #b == 0 then otlp.put_request_head(b, resource(), moongate.version) else b:put(",") end
  return b, i
end

-- Queue a trace's spans for the collector: encoded straight into the chunk.
local function pend(tr)
  local b, i = open_chunk()
  put_spans(b, tr)
  chunk_spans[i] = chunk_spans[i] + tr.n
  pending_spans = pending_spans + tr.n
end

-- the oldest chunk, its request body complete, and its span count, taken off the queue (a new
-- chunk opens when it was the only one; spans keep arriving while it is posted)
local function next_chunk()
  local b, n = table.remove(chunks, 1), table.remove(chunk_spans, 1)
  if #chunks == 0 then chunks[1], chunk_spans[1] = table.remove(spare) or buffer.new(), 0 end
  pending_spans = pending_spans - n
  return b:put(otlp.REQUEST_TAIL), n
end

local function recycle(b)
  b:reset()
  if #spare < SPARE then spare[#spare + 1] = b end
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

-- One export in flight; when it is done, the next takes everything that waited meanwhile.
local function send()
  if in_flight or pending_spans == 0 then return end
  in_flight = true
  moongate.spawn(function()
    while pending_spans > 0 do
      local body, n = next_chunk()   -- a string.buffer: the client copies its bytes, no string is made
      local ok, err = pcall(post, body, n)
      if not ok then warn("trace export failed", err) end
      recycle(body)
    end
    in_flight = false
  end)
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

--- export.submit(trace) -> whether it waits in the queue for the store: a trace the collector
--- takes is encoded into the export buffer now, when its request ends (its tables are garbage
--- at once instead of living until the next loop tick), or dropped and counted when the
--- collector is that far behind.
function M.submit(tr)
  if tr.to_export and C.otlp then
    if pending_spans + tr.n > C.export_queue then
      require("moongate.trace").dropped:inc(tr.n, "exporter_busy")
    else
      local ok, err = pcall(pend, tr)
      if not ok then warn("trace encoding failed", err) end
    end
  end
  return tr.to_store
end

--- export.drain(): write what waits for the store, and post what waits for the collector (the
--- loop's work; shutdown)
function M.drain()
  local trace = require "moongate.trace"
  send()   -- its own task: the post runs while the store is written
  local s = open_store()
  while true do
    local batch = trace.take(C.batch)
    if #batch == 0 then break end
    local rows = {}
    for i = 1, #batch do
      local tr = batch[i]
      if s then
        local ok, r = pcall(row_of, tr)
        if ok then rows[#rows + 1] = r else warn("trace encoding failed", r) end
      end
    end
    if #rows > 0 then
      local ok, err = pcall(s.insert, s, rows)
      if ok and err then stored:inc(#rows) else warn("trace store write failed", err) end
    end
    moongate.yield()
  end
  local t = moongate.now()
  if store and t - last_prune > 60 then
    last_prune = t
    local ok, err = pcall(store.prune, store, C.retention, C.max_traces, moongate.yield)
    if not ok then warn("trace store prune failed", err) end
  end
end

function M.loop()
  while true do
    moongate.sleep(C.interval)
    local ok, err = pcall(M.drain)
    if not ok then warn("trace export loop failed", err) end
  end
end

--- export.shutdown(timeout): a last drain, and a wait for the exports in flight (serve's exit)
function M.shutdown(timeout)
  pcall(M.drain)
  local t_end = moongate.now() + (timeout or 2)
  while in_flight and moongate.now() < t_end do moongate.sleep(0.01) end
end

return M
