-- moongate.trace.otlp: spans in OTLP's JSON encoding (opentelemetry-proto, ExportTraceServiceRequest
-- as the protobuf JSON mapping writes it): hex ids, times as decimal strings of nanoseconds,
-- attributes as {key, value = {stringValue | intValue | doubleValue | boolValue | arrayValue}}.
--
-- Written straight into a string buffer, without building tables for the encoder: every span the
-- worker records passes through here, so this is the exporter's cost per request.
local buffer = require "string.buffer"
local json = require "moongate.json"

local M = {}

local format, floor, find = string.format, math.floor, string.find
local type, pairs, tostring = type, pairs, tostring

M.STATUS_UNSET, M.STATUS_OK, M.STATUS_ERROR = 0, 1, 2

--- otlp.nanos(seconds) -> decimal string of Unix nanoseconds (microsecond precision)
function M.nanos(t)
  return format("%.0f000", floor(t * 1e6 + 0.5))
end

-- A JSON string; the encoder only for what needs escaping (quotes, controls, bytes >= 0x80)
local function str(b, s)
  if find(s, '[%z\1-\31"\\\128-\255]') then b:put(json.encode(s)) else b:put('"', s, '"') end
end

-- Attribute keys come from a small fixed set (the code's own names): each is checked and quoted
-- once, then written as it is. A bounded memo, so keys from elsewhere cannot grow it for ever.
local quoted, nquoted = {}, 0
local function key(b, k)
  local q = quoted[k]
  if q == nil then
    q = find(k, '[%z\1-\31"\\\128-\255]') and json.encode(k) or ('"' .. k .. '"')
    if nquoted < 512 then quoted[k] = q; nquoted = nquoted + 1 end
  end
  b:put(q)
end

local function value(b, v)
  local tv = type(v)
  if tv == "string" then
    b:put('{"stringValue":'); str(b, v); b:put("}")
  elseif tv == "number" then
    if v == floor(v) and v > -2 ^ 53 and v < 2 ^ 53 then b:putf('{"intValue":"%.0f"}', v)
    elseif v == v and v ~= 1 / 0 and v ~= -1 / 0 then b:putf('{"doubleValue":%.17g}', v)
    else b:put('{"stringValue":"', tostring(v), '"}') end
  elseif tv == "boolean" then
    b:put(v and '{"boolValue":true}' or '{"boolValue":false}')
  elseif tv == "table" then
    b:put('{"arrayValue":{"values":[')
    for i = 1, #v do
      if i > 1 then b:put(",") end
      value(b, v[i])
    end
    b:put("]}}")
  else
    b:put('{"stringValue":'); str(b, tostring(v)); b:put("}")
  end
end

--- otlp.put_attributes(buffer, table): the KeyValue list
local function attributes(b, t)
  b:put("[")
  if t then
    local first = true
    for k, v in pairs(t) do
      if first then first = false else b:put(",") end
      b:put('{"key":'); key(b, k); b:put(',"value":'); value(b, v); b:put("}")
    end
  end
  b:put("]")
end
M.put_attributes = attributes

--- otlp.put_span(buffer, span, trace id, parent id): one Span object. span is a moongate.trace
--- span with its id drawn (sid); parent is its parent's sid or the caller's span id.
function M.put_span(b, sp, trace_id, parent_id)
  b:put('{"traceId":"', trace_id, '","spanId":"', sp.sid, '"')
  if parent_id then b:put(',"parentSpanId":"', parent_id, '"') end
  if sp.state then b:put(',"traceState":'); str(b, sp.state) end
  b:put(',"name":'); str(b, sp.name)
  b:putf(',"kind":%d,"startTimeUnixNano":"%.0f000","endTimeUnixNano":"%.0f000","attributes":', sp.kind or 1,
    floor(sp.t0 * 1e6 + 0.5), floor((sp.t1 or sp.t0) * 1e6 + 0.5))
  attributes(b, sp.attrs)
  local ev = sp.events
  if ev then
    b:put(',"events":[')
    for i = 1, #ev do
      local e = ev[i]
      if i > 1 then b:put(",") end
      b:putf('{"timeUnixNano":"%.0f000","name":', floor(e.t * 1e6 + 0.5)); str(b, e.name)
      b:put(',"attributes":'); attributes(b, e.attrs); b:put("}")
    end
    b:put("]")
  end
  if sp.status == "error" then
    b:put(',"status":{"code":2,"message":'); str(b, sp.msg or ""); b:put("}}")
  else
    b:put(',"status":{}}')
  end
end

--- otlp.put_request_head(buffer, resource attrs, scope version): an ExportTraceServiceRequest up
--- to its spans' list; the spans' objects follow, comma-separated, then otlp.REQUEST_TAIL.
function M.put_request_head(b, resource, version)
  b:put('{"resourceSpans":[{"resource":{"attributes":')
  attributes(b, resource)
  b:put('},"scopeSpans":[{"scope":{"name":"moongate","version":'); str(b, version or "")
  b:put('},"spans":[')
end
M.REQUEST_TAIL = "]}]}]}"

--- otlp.request(resource attrs, spans text, scope version) -> ExportTraceServiceRequest JSON;
--- spans text is the spans' objects, comma-separated.
function M.request(resource, spans, version)
  local b = buffer.new()
  M.put_request_head(b, resource, version)
  b:put(spans, M.REQUEST_TAIL)
  return b:tostring()
end

return M
