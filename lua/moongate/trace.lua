-- moongate.trace: a span for every step of a request (the edge's stages, routing, each provider
-- attempt, each tool call, each pipeline stage), joined to the caller's W3C trace and handed,
-- off the request path, to the trace store and an OTLP/HTTP collector.
--
-- On the request path a span is a small Lua table: no ids are drawn, nothing is encoded, nothing
-- is written. When the request has been answered, a trace the collector takes is encoded into
-- the export buffer (moongate.trace.export) and one the store takes goes into a bounded queue; a
-- background task of the worker writes the store and posts the buffer. A full queue or buffer
-- drops the trace and counts it; the request never waits for either.
local moongate = require "moongate"
local metrics = require "moongate.metrics"

local M = {}

local now, context = moongate.now, moongate.context
local random, setmetatable = math.random, setmetatable
local new_tab = require "table.new"

M.INTERNAL, M.SERVER, M.CLIENT = 1, 2, 3   -- OTLP span kinds

-- Settings (config.trace), replaced by configure().
local S = {
  enabled = true,
  sample = 1,            -- share of new traces recorded (a caller's traceparent decides for its own)
  queue = 4096,          -- traces waiting for the exporter; more are dropped and counted
  max_spans = 256,       -- spans per trace; more are dropped and counted
  service = "moongate",
}
M.settings = S

local step_hist = metrics.histogram("moongate_step_duration_seconds",
  "Time spent in each step of a request (edge stages, routing, upstream attempts, tools, pipeline stages).",
  { "step" })
local dropped = metrics.counter("moongate_spans_dropped_total",
  "Spans not stored or exported, by reason (queue_full, too_many_spans, exporter_busy, export_failed).", { "reason" })
M.dropped = dropped
local overruns = metrics.counter("moongate_step_budget_overruns_total",
  "Steps that took longer than their latency budget, by step.", { "step" })

-- ---- ids and W3C trace context ----------------------------------------------------------------

local ids = require "moongate._trace_id"

--- trace.span_id() -> 16 lower-case hex digits, never all zero
M.span_id = ids.span_id

--- trace.trace_id() -> 32 lower-case hex digits, never all zero
M.trace_id = ids.trace_id

--- trace.parse_traceparent(header) -> trace id, parent span id, sampled | nil
--- (W3C Trace Context level 1: version 00, or a later version read as 00; ff is invalid.)
function M.parse_traceparent(h)
  if type(h) ~= "string" or #h < 55 then return nil end
  local v, tid, sid, flags = h:match("^(%x%x)%-([0-9a-f]+)%-([0-9a-f]+)%-(%x%x)")
  if not v or v == "ff" or #tid ~= 32 or #sid ~= 16 or v:find("%u") or flags:find("%u") then return nil end
  if v == "00" and #h ~= 55 then return nil end
  if #h > 55 and h:byte(56) ~= 45 then return nil end
  if tid == "00000000000000000000000000000000" or sid == "0000000000000000" then return nil end
  return tid, sid, tonumber(flags, 16) % 2 == 1
end

--- trace.traceparent(span) -> the traceparent header naming span as the parent
function M.traceparent(span)
  local tr = span.tr
  if not tr then return nil end
  return "00-" .. tr.id .. "-" .. M.id_of(span) .. (tr.sampled and "-01" or "-00")
end

--- trace.id_of(span) -> its span id, drawn on first use
function M.id_of(span)
  local id = span.sid
  if not id then id = M.span_id(); span.sid = id end
  return id
end

-- ---- spans ---------------------------------------------------------------------------------

local Span = {}
Span.__index = Span
M.Span = Span

-- A span that records nothing, for code running outside a traced request: every method is one
-- shared function returning the span (no closure per call), its duration 0.
local function noop_self(self) return self end
local NOOP = setmetatable({ noop = true, duration = function() return 0 end },
                          { __index = function() return noop_self end })
M.NOOP = NOOP

--- span:set(key, value) -> span: an attribute (string, number, boolean or array of strings)
function Span:set(k, v)
  local a = self.attrs
  if not a then a = {}; self.attrs = a end
  a[k] = v
  return self
end

--- span:set_all(t) -> span: t becomes the span's attributes, keeping what was set before under
--- names t does not have (t is made at its size by one constructor: no rehash as it fills)
function Span:set_all(t)
  local had = self.attrs
  if had then for k, v in pairs(had) do if t[k] == nil then t[k] = v end end end
  self.attrs = t
  return self
end

--- span:event(name, attrs?) -> span: a point in time within the span
function Span:event(name, attrs)
  local e = self.events
  if not e then e = {}; self.events = e end
  e[#e + 1] = { name = name, t = now(), attrs = attrs }
  return self
end

--- span:fail(message) -> span: the step failed (status ERROR)
function Span:fail(msg)
  self.status, self.msg = "error", msg and tostring(msg) or nil
  return self
end

--- span:finish() -> span: ends the span (once); its parent is current again
function Span:finish()
  if self.t1 then return self end
  local t1 = now()
  self.t1 = t1
  local c = context()
  if c and c.span == self then c.span = self.parent end
  local step = self.step
  if step then
    local d = t1 - self.t0
    step_hist:observe(d, step)
    local b = self.tr.budgets
    b = b and b[step]
    if b and d > b then M.overrun(self, step, d, b) end
  end
  return self
end

--- trace.overrun(span, step, seconds, budget): a step took longer than its budget — an event on
--- its span and a count.
function M.overrun(sp, step, d, b)
  overruns:inc(1, step)
  if not sp.noop then
    sp:event("budget exceeded", { ["moongate.step"] = step, ["moongate.budget_ms"] = b * 1000,
                                  ["moongate.duration_ms"] = math.floor(d * 1e6 + 0.5) / 1000 })
  end
end

--- trace.budgets(t): the running request's latency budgets per step, in seconds
--- ({ route = 0.05, upstream = 1.8, retrieve = 0.4, ... }); a step over its budget is an overrun.
function M.budgets(t)
  local c = context()
  local sp = c and c.span
  if sp then sp.tr.budgets = t end
end

--- span:duration() -> seconds (so far, for a span still open)
function Span:duration() return (self.t1 or now()) - self.t0 end

--- trace.current() -> the running request's innermost open span, or the no-op span
function M.current()
  local c = context()
  return c and c.span or NOOP
end

--- trace.start(name, attrs?, kind?, step?) -> span: a child of the current span, now current.
--- step names the latency histogram it is counted in (default: name; false: none).
function M.start(name, attrs, kind, step)
  local c = context()
  local parent = c and c.span
  if not parent then return NOOP end
  local tr = parent.tr
  local n = tr.n + 1
  if n > S.max_spans then
    tr.lost = (tr.lost or 0) + 1
    return NOOP
  end
  local sp = setmetatable({ name = name, parent = parent, tr = tr, t0 = now(), attrs = attrs,
                            kind = kind, step = step == nil and name or step or nil }, Span)
  tr.n = n
  tr[n] = sp
  c.span = sp
  return sp
end

--- trace.with(name, attrs, fn, ...) -> fn(span, ...)'s results, inside a child span; an error
--- raised by fn marks the span failed and is raised again.
function M.with(name, attrs, fn, ...)
  local sp = M.start(name, attrs)
  local res = { pcall(fn, sp, ...) }
  if not res[1] then
    sp:fail(res[2])
    sp:finish()
    error(res[2], 0)
  end
  sp:finish()
  return select(2, unpack(res))
end

-- ---- requests --------------------------------------------------------------------------------

--- trace.request(req, name) -> root span for a request served by moongate (or NOOP when off).
--- A valid traceparent from the client makes it a child of the caller's span, in its trace,
--- sampled as the caller says.
function M.request(req, name)
  if not S.enabled then return NOOP end
  local h = req.headers
  local tid, psid, sampled = M.parse_traceparent(h.traceparent)
  local tr = new_tab(4, 8)   -- at the size a request's trace reaches: no rehash as it grows
  tr.n = 1
  if tid then
    tr.id, tr.remote_parent, tr.sampled, tr.state = tid, psid, sampled, h.tracestate
  else
    tr.id, tr.sampled = M.trace_id(), S.sample >= 1 or random() < S.sample
  end
  local root = setmetatable({ name = name, tr = tr, t0 = req.start or now(), kind = M.SERVER,
                              step = "request" }, Span)
  tr[1] = root
  tr.root = root
  context().span = root
  return root
end

-- The export task's queue (a ring of traces, bounded).
local queue, qhead, qtail = {}, 1, 0
M.queue_length = function() return qtail - qhead + 1 end

--- trace.finish_request(root, info, arg): ends the root span and every span left open (the step
--- was cut: the client left, the deadline hit), and queues the trace for the store and exporter
--- when either takes it (a sampled trace, or a failed request's). info says what the request was
--- (request id, tenant, route, status, model, usage...): a table, or a function called as
--- info(arg, root) only for a trace that is kept, so the requests nobody reads cost no more.
function M.finish_request(root, info, arg)
  if root == NOOP or root.t1 then return end
  local tr = root.tr
  root:finish()
  local t1 = root.t1
  for i = 2, tr.n do
    local sp = tr[i]
    if not sp.t1 then
      sp.t1 = t1
      if not sp.status then sp.status, sp.msg = "error", "cut short" end
    end
  end
  if tr.lost then dropped:inc(tr.lost, "too_many_spans") end
  local exp = M.exporter
  if not (exp and exp.takes(tr, root.status == "error")) then return end
  if type(info) == "function" then info = info(arg, root) end
  tr.info = info
  if not exp.submit(tr) then return end   -- the collector's spans are encoded now; the store's wait
  if qtail - qhead + 1 >= S.queue then
    dropped:inc(tr.n, "queue_full")
    return
  end
  qtail = qtail + 1
  queue[qtail] = tr
end

--- trace.take(max) -> up to max queued traces, oldest first (for the export task)
function M.take(max)
  local out, n = {}, 0
  while qhead <= qtail and n < max do
    n = n + 1
    out[n] = queue[qhead]
    queue[qhead] = nil
    qhead = qhead + 1
  end
  if qhead > qtail then qhead, qtail = 1, 0 end
  return out
end

--- trace.configure(cfg.trace): settings for this worker; starts the export task once.
--- trace = false turns spans off. Returns true | nil, err.
function M.configure(t, config)
  if t == false then S.enabled = false; return true end
  t = t or {}
  if type(t) ~= "table" then return nil, "trace must be a table or false" end
  local known = { enabled = true, sample = true, queue = true, max_spans = true, service = true,
                  store = true, retention = true, max_traces = true, otlp = true, interval = true,
                  batch = true, raw = true, store_rate = true, export_queue = true }
  for k in pairs(t) do
    if not known[k] then return nil, "trace: unknown setting '" .. tostring(k) .. "'" end
  end
  local sample = t.sample == nil and 1 or t.sample
  if type(sample) ~= "number" or sample < 0 or sample > 1 then return nil, "trace.sample must be between 0 and 1" end
  for _, k in ipairs{ "queue", "max_spans", "retention", "max_traces", "interval", "batch", "store_rate",
                     "export_queue" } do
    local v = t[k]
    if v ~= nil and (type(v) ~= "number" or v <= 0) then return nil, "trace." .. k .. " must be a number > 0" end
  end
  S.enabled = t.enabled ~= false
  S.sample = sample
  S.queue = t.queue or 4096
  S.max_spans = t.max_spans or 256
  S.service = t.service or "moongate"
  local exp = require "moongate.trace.export"
  local ok, err = exp.configure(t, config)
  if not ok then return nil, err end
  M.exporter = exp
  return true
end

return M
