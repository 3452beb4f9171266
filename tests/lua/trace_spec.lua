-- moongate.trace and its OTLP writer: W3C traceparent parsing, the span tree outside a request,
-- and OTLP JSON exact for the values that are easy to get wrong (escapes, int64 strings, floats).
local trace = require "moongate.trace"
local otlp = require "moongate.trace.otlp"
local json = require "moongate.json"
local buffer = require "string.buffer"

local function span_json(sp)
  local b = buffer.new()
  otlp.put_span(b, sp, "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")
  return b:tostring()
end

describe("moongate.trace", function()
  it("parses a valid traceparent and refuses malformed ones", function()
    local tid, sid, sampled = trace.parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    assert.same({ "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", true }, { tid, sid, sampled })
    assert.is_false(select(3, trace.parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")))
    for _, bad in ipairs{ "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                          "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                          "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                          "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                          "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", "", "nonsense" } do
      assert.is_nil(trace.parse_traceparent(bad), bad)
    end
  end)

  it("draws ids of the right length, never all zero", function()
    for _ = 1, 100 do
      assert.matches("^[0-9a-f]+$", trace.trace_id())
      assert.equal(32, #trace.trace_id())
      assert.equal(16, #trace.span_id())
    end
  end)

  it("draws distinct ids, and a forked worker draws its own", function()
    local seen = {}
    for _ = 1, 10000 do
      local id = trace.span_id()
      assert.is_nil(seen[id], id)
      seen[id] = true
    end
    local ffi = require "ffi"
    pcall(ffi.cdef, "int fork(void); int waitpid(int pid, int *status, int options); void _exit(int status);")
    local path = os.tmpname()
    local pid = ffi.C.fork()
    if pid == 0 then   -- the worker: its first id, then gone without running the parent's exit code
      local f = io.open(path, "w")
      f:write(trace.span_id())
      f:close()
      ffi.C._exit(0)
    end
    ffi.C.waitpid(pid, nil, 0)
    local f = io.open(path)
    local child = f:read("*a")
    f:close()
    os.remove(path)
    assert.matches("^[0-9a-f]+$", child)
    assert.equal(16, #child)
    assert.are_not.equal(trace.span_id(), child)   -- the same generator state would give the same id
  end)

  it("keeps only the traces the store or the collector takes, and describes only those", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(trace.configure({ sample = 0, store = dir .. "-traces.db", store_rate = 1000 }))
    local described = {}
    local function describe(id) described[#described + 1] = id; return { request_id = id } end
    local n0 = trace.queue_length()
    -- not sampled and answered: dropped when it ends, never described
    local root = trace.request({ headers = {} }, "POST /v1/chat/completions")
    trace.start("route"):finish()
    trace.finish_request(root, describe, "ok-1")
    assert.equal(n0, trace.queue_length())
    -- not sampled but failed: kept for the store
    root = trace.request({ headers = {} }, "POST /v1/chat/completions")
    root:fail("HTTP 502")
    trace.finish_request(root, describe, "failed-1")
    assert.equal(n0 + 1, trace.queue_length())
    assert.same({ "failed-1" }, described)
    -- a caller's sampled trace, with no collector configured: the store takes it
    root = trace.request({ headers = { traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" } }, "x")
    trace.finish_request(root, describe, "sampled-1")
    assert.equal(n0 + 2, trace.queue_length())
    assert.same({ "failed-1", "sampled-1" }, described)
    trace.take(1000)
    for _, suffix in ipairs{ "", "-wal", "-shm" } do os.remove(dir .. "-traces.db" .. suffix) end
  end)

  it("gives a no-op span outside a traced request", function()
    local sp = trace.start("anything", { a = 1 })
    assert.is_true(sp.noop)
    assert.equal(sp, sp:set("k", "v"):event("e"))
    sp:finish()
  end)
end)

describe("moongate.trace.otlp", function()
  it("writes a span as OTLP JSON: hex ids, nanosecond strings, typed attribute values", function()
    local text = span_json{ sid = "a27a21a92e5e409b", name = "chat m1", kind = trace.CLIENT,
      t0 = 1796569236.564479, t1 = 1796569236.566607, status = "error", msg = "mock fault: status 503",
      attrs = { n = 8, big = 2 ^ 53, ratio = 4.4e-05, on = true, tiers = { "a", "b" }, s = "x" } }
    local d = json.decode(text)
    assert.equal("4bf92f3577b34da6a3ce929d0e0e4736", d.traceId)
    assert.equal("00f067aa0ba902b7", d.parentSpanId)
    assert.equal("1796569236564479000", d.startTimeUnixNano)
    assert.equal("1796569236566607000", d.endTimeUnixNano)
    assert.equal(3, d.kind)
    assert.same({ code = 2, message = "mock fault: status 503" }, d.status)
    local a = {}
    for _, kv in ipairs(d.attributes) do a[kv.key] = kv.value end
    assert.same({ intValue = "8" }, a.n)
    assert.same({ doubleValue = 2 ^ 53 }, a.big)          -- beyond exact integers: a double
    assert.same({ doubleValue = 4.4e-05 }, a.ratio)
    assert.same({ boolValue = true }, a.on)
    assert.same({ arrayValue = { values = { { stringValue = "a" }, { stringValue = "b" } } } }, a.tiers)
    assert.same({ stringValue = "x" }, a.s)
  end)

  it("escapes what JSON needs escaped, and keeps UTF-8 and invalid bytes valid JSON", function()
    local name = 'say "hi"\n\t\\ café \255'
    local text = span_json{ sid = "a27a21a92e5e409b", name = name, t0 = 1, attrs = { ["k\"ey"] = "v\0" } }
    local d = json.decode(text)
    assert.equal('say "hi"\n\t\\ café ', d.name:sub(1, #name - 1))
    assert.same({ key = 'k"ey', value = { stringValue = "v\0" } }, d.attributes[1])
    assert.same({}, d.status)
  end)

  it("writes non-finite numbers as strings (JSON has no NaN)", function()
    local d = json.decode(span_json{ sid = "a27a21a92e5e409b", name = "x", t0 = 1,
      attrs = { inf = math.huge } })
    assert.same({ stringValue = "inf" }, d.attributes[1].value)
  end)

  it("wraps spans in an ExportTraceServiceRequest", function()
    local d = json.decode(otlp.request({ ["service.name"] = "moongate" }, span_json{ sid = "a27a21a92e5e409b",
      name = "x", t0 = 1 }, "0.1.0"))
    local rs = d.resourceSpans[1]
    assert.same({ { key = "service.name", value = { stringValue = "moongate" } } }, rs.resource.attributes)
    assert.same({ name = "moongate", version = "0.1.0" }, rs.scopeSpans[1].scope)
    assert.equal("x", rs.scopeSpans[1].spans[1].name)
  end)
end)
