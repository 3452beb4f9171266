-- moongate.trace.otlp: spans in OTLP's JSON encoding (opentelemetry-proto, ExportTraceServiceRequest
-- as the protobuf JSON mapping writes it): hex ids, times as decimal strings of nanoseconds,
-- attributes as {key, value = {stringValue | intValue | doubleValue | boolValue | arrayValue}}.
--
-- The spans are encoded in C (core/otlp.c), read straight from the trace's tables: every span the
-- worker exports passes through here, so this is the exporter's cost per request.
local buffer = require "string.buffer"
local json = require "moongate.json"
local core = require "moongate._otlp"
local ffi = require "ffi"

pcall(ffi.cdef, "const char *mg_otlp_text(void);")
local C = ffi.C

local M = {}

local format, floor = string.format, math.floor

M.STATUS_UNSET, M.STATUS_OK, M.STATUS_ERROR = 0, 1, 2

--- otlp.nanos(seconds) -> decimal string of Unix nanoseconds (microsecond precision)
function M.nanos(t)
  return format("%.0f000", floor(t * 1e6 + 0.5))
end

-- the n bytes the encoder just wrote, copied into buffer b (no Lua string is made of them)
local function emit(b, n)
  ffi.copy(b:reserve(n), C.mg_otlp_text(), n)
  b:commit(n)
end

--- otlp.put_attributes(buffer, table): the KeyValue list
function M.put_attributes(b, t) emit(b, core.attributes(t)) end

--- otlp.put_span(buffer, span, trace id, parent id): one Span object. span is a moongate.trace
--- span with its id drawn (sid); parent is its parent's sid or the caller's span id.
function M.put_span(b, sp, trace_id, parent_id) emit(b, core.span(sp, trace_id, parent_id)) end

--- otlp.put_spans(buffer, trace, remote parent id?): a trace's spans (every span's id drawn),
--- comma-separated Span objects, each the child of its parent span (the root of the caller's).
function M.put_spans(b, tr, remote_parent) emit(b, core.spans(tr, tr.id, remote_parent)) end

--- otlp.put_request_head(buffer, resource attrs, scope version): an ExportTraceServiceRequest up
--- to its spans' list; the spans' objects follow, comma-separated, then otlp.REQUEST_TAIL.
function M.put_request_head(b, resource, version)
  b:put('{"resourceSpans":[{"resource":{"attributes":')
  M.put_attributes(b, resource)
  b:put('},"scopeSpans":[{"scope":{"name":"moongate","version":', json.encode(version or ""))
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
