-- moongate.trace.otlp: spans in OTLP's JSON encoding (opentelemetry-proto, ExportTraceServiceRequest
-- as the protobuf JSON mapping writes it): hex ids, times as decimal strings of nanoseconds,
-- attributes as {key, value = {stringValue | intValue | doubleValue | boolValue | arrayValue}}.
local json = require "moongate.json"

local M = {}

local format, floor, sort = string.format, math.floor, table.sort
local type, pairs = type, pairs

M.STATUS_UNSET, M.STATUS_OK, M.STATUS_ERROR = 0, 1, 2

--- otlp.nanos(seconds) -> decimal string of Unix nanoseconds (microsecond precision)
function M.nanos(t)
  return format("%.0f000", floor(t * 1e6 + 0.5))
end

local function any_value(v)
  local tv = type(v)
  if tv == "string" then return { stringValue = v } end
  if tv == "boolean" then return { boolValue = v } end
  if tv == "number" then
    if v == floor(v) and v > -2 ^ 53 and v < 2 ^ 53 then return { intValue = format("%.0f", v) } end
    return { doubleValue = v }
  end
  if tv == "table" then
    local values = json.array()
    for i = 1, #v do values[i] = any_value(v[i]) end
    return { arrayValue = { values = values } }
  end
  return { stringValue = tostring(v) }
end
M.any_value = any_value

--- otlp.attributes(table) -> the KeyValue list, keys sorted (stable output)
function M.attributes(t)
  local out = json.array()
  if not t then return out end
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  sort(keys)
  for i, k in ipairs(keys) do out[i] = { key = k, value = any_value(t[k]) } end
  return out
end

--- otlp.span(span, trace id, parent id) -> one Span object. span is a moongate.trace span with
--- its ids drawn (sid; parent's sid or the caller's span id).
function M.span(sp, trace_id, parent_id)
  local o = {
    traceId = trace_id,
    spanId = sp.sid,
    name = sp.name,
    kind = sp.kind or 1,
    startTimeUnixNano = M.nanos(sp.t0),
    endTimeUnixNano = M.nanos(sp.t1 or sp.t0),
    attributes = M.attributes(sp.attrs),
    status = sp.status == "error" and { code = M.STATUS_ERROR, message = sp.msg or "" } or json.object(),
  }
  if parent_id then o.parentSpanId = parent_id end
  if sp.state then o.traceState = sp.state end
  if sp.events then
    local ev = json.array()
    for i, e in ipairs(sp.events) do
      ev[i] = { timeUnixNano = M.nanos(e.t), name = e.name, attributes = M.attributes(e.attrs) }
    end
    o.events = ev
  end
  return o
end

--- otlp.request(resource attrs, spans, scope version) -> ExportTraceServiceRequest as a table
function M.request(resource, spans, version)
  local list = json.array()
  for i = 1, #spans do list[i] = spans[i] end
  return {
    resourceSpans = json.array{ {
      resource = { attributes = M.attributes(resource) },
      scopeSpans = json.array{ { scope = { name = "moongate", version = version }, spans = list } },
    } },
  }
end

return M
