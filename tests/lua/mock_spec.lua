-- moongate.mock: the fake LLM's routes, shapes and faults, driven through its handler with a
-- recording response object (the e2e tests drive it over real HTTP).
local mg = require "moongate"
local json = require "moongate.json"
local mock = require "moongate.mock"

local function req(method, path, body, headers)
  local r = { method = method, path = path, query = "", args = {}, headers = headers or {},
    body = body and (type(body) == "string" and body or json.encode(body)) or "" }
  function r:json() return json.decode(self.body) end
  return r
end

-- A response recorder with the server's streaming API.
local function recorder()
  local res = { started = false, chunks = {}, finished = false, aborted = false }
  function res:start(status, headers) self.started = true self.status = status self.headers = headers end
  function res:write(s) self.chunks[#self.chunks + 1] = s return true end
  function res:finish() self.finished = true end
  function res:abort() self.aborted = true end
  return res
end

local function call(app, r)
  local res = recorder()
  local out = app.handle(r, res)
  return out, res
end

local function events(res)
  local out = {}
  for _, c in ipairs(res.chunks) do
    local d = c:match("^data: (.*)\n\n$")
    out[#out + 1] = d == "[DONE]" and d or json.decode(d)
  end
  return out
end

local CHAT = { model = "mock-small", messages = { { role = "system", content = "be brief" },
  { role = "user", content = "What is moongate?" } } }

describe("mock", function()
  it("answers a chat completion deterministically", function()
    local app = mock.new{}
    local out = call(app, req("POST", "/v1/chat/completions", CHAT))
    assert.are.equal(200, out.status)
    assert.are.equal("application/json", out.headers["content-type"])
    local v = json.decode(out.body)
    assert.are.equal("chat.completion", v.object)
    assert.are.equal("chatcmpl-mock-1", v.id)
    assert.are.equal("mock-small", v.model)
    assert.are.equal("mock answer: What is moongate?", v.choices[1].message.content)
    assert.are.equal("assistant", v.choices[1].message.role)
    assert.are.equal("stop", v.choices[1].finish_reason)
    assert.are.equal(v.usage.prompt_tokens + v.usage.completion_tokens, v.usage.total_tokens)
    assert.is_true(v.usage.completion_tokens > 0)
  end)

  it("streams the answer in several chunks, then [DONE]", function()
    local app = mock.new{}
    local b = { model = "m", stream = true, stream_options = { include_usage = true },
      messages = { { role = "user", content = "one two three" } } }
    local out, res = call(app, req("POST", "/v1/chat/completions", b))
    assert.is_nil(out)
    assert.are.equal(200, res.status)
    assert.are.equal("text/event-stream", res.headers["content-type"])
    assert.is_true(res.finished)
    local ev = events(res)
    assert.are.equal("[DONE]", ev[#ev])
    local text, pieces = {}, 0
    for i = 1, #ev - 1 do
      local c = ev[i]
      assert.are.equal("chat.completion.chunk", c.object)
      if c.choices[1] and c.choices[1].delta.content then
        text[#text + 1] = c.choices[1].delta.content
        pieces = pieces + 1
      end
    end
    assert.are.equal("mock answer: one two three", table.concat(text))
    assert.is_true(pieces >= 5)
    -- the usage chunk comes last, with no choices
    local u = ev[#ev - 1]
    assert.are.equal(0, #u.choices)
    assert.is_true(u.usage.total_tokens > 0)
    assert.are.equal("stop", ev[#ev - 2].choices[1].finish_reason)
  end)

  it("calls the first tool with arguments built from its schema", function()
    local app = mock.new{}
    local b = { model = "m", messages = { { role = "user", content = "weather in Paris" } },
      tools = { { type = "function", ["function"] = { name = "get_weather", parameters = {
        type = "object", properties = { city = { type = "string" }, days = { type = "integer" },
          unit = { type = "string", enum = { "c", "f" } } }, required = { "city" } } } } } }
    local v = json.decode(call(app, req("POST", "/v1/chat/completions", b)).body)
    local m = v.choices[1].message
    assert.are.equal("tool_calls", v.choices[1].finish_reason)
    assert.are.equal(json.null, m.content)
    assert.are.equal("get_weather", m.tool_calls[1]["function"].name)
    assert.are.equal('{"city":"weather in Paris","days":1,"unit":"c"}', m.tool_calls[1]["function"].arguments)
    assert.truthy(m.tool_calls[1].id:match("^call_mock_%x+$"))
    -- after the tool's answer the model answers in text
    b.messages[2] = m
    b.messages[3] = { role = "tool", tool_call_id = m.tool_calls[1].id, content = "18C" }
    local v2 = json.decode(call(app, req("POST", "/v1/chat/completions", b)).body)
    assert.are.equal("mock answer: weather in Paris [tool: 18C]", v2.choices[1].message.content)
  end)

  it("honours stop and max_tokens", function()
    local app = mock.new{}
    local b = { model = "m", messages = { { role = "user", content = "alpha beta gamma" } }, stop = { " beta" } }
    local v = json.decode(call(app, req("POST", "/v1/chat/completions", b)).body)
    assert.are.equal("mock answer: alpha", v.choices[1].message.content)
    assert.are.equal("stop", v.choices[1].finish_reason)
    b.stop, b.max_tokens = nil, 2
    v = json.decode(call(app, req("POST", "/v1/chat/completions", b)).body)
    assert.are.equal("length", v.choices[1].finish_reason)
    assert.is_true(#v.choices[1].message.content < #"mock answer: alpha beta gamma")
  end)

  it("gives deterministic unit embeddings, as floats or base64", function()
    local app = mock.new{}
    local v = json.decode(call(app, req("POST", "/v1/embeddings",
      { model = "e", input = { "red apple", "red apple", "blue sky" }, dimensions = 8 })).body)
    assert.are.equal("list", v.object)
    assert.are.equal(3, #v.data)
    assert.are.same(v.data[1].embedding, v.data[2].embedding)
    assert.are.equal(8, #v.data[1].embedding)
    local n = 0
    for _, x in ipairs(v.data[1].embedding) do n = n + x * x end
    assert.is_true(math.abs(n - 1) < 1e-5)
    local b = json.decode(call(app, req("POST", "/v1/embeddings",
      { model = "e", input = "red apple", dimensions = 8, encoding_format = "base64" })).body)
    assert.are.equal(44, #b.data[1].embedding)  -- 32 bytes of float32
  end)

  it("answers in Anthropic's shape on /v1/messages", function()
    local app = mock.new{}
    local v = json.decode(call(app, req("POST", "/v1/messages", { model = "claude", max_tokens = 100,
      system = "s", messages = { { role = "user", content = "hi there" } } })).body)
    assert.are.equal("message", v.type)
    assert.are.equal("end_turn", v.stop_reason)
    assert.are.same({ { type = "text", text = "mock answer: hi there" } }, v.content)
    local out, res = call(app, req("POST", "/v1/messages", { model = "claude", max_tokens = 100,
      stream = true, messages = { { role = "user", content = "hi there" } } }))
    assert.is_nil(out)
    assert.truthy(res.chunks[1]:match("^event: message_start\n"))
    assert.truthy(res.chunks[#res.chunks]:match("^event: message_stop\n"))
  end)

  it("injects status faults from the server, the header and the body", function()
    local app = mock.new{ fault = "status=429,retry_after=2" }
    local out = call(app, req("POST", "/v1/chat/completions", CHAT))
    assert.are.equal(429, out.status)
    assert.are.equal("2", out.headers["retry-after"])
    assert.are.same({ error = { message = "mock fault: status 429", type = "rate_limit_error",
      param = json.null, code = "rate_limit_exceeded" } }, json.decode(out.body))
    out = call(app, req("POST", "/v1/chat/completions", CHAT, { ["x-mock-fault"] = "none" }))
    assert.are.equal(200, out.status)
    local b = { model = "m", messages = CHAT.messages, mock = { status = 503 } }
    out = call(app, req("POST", "/v1/chat/completions", b, { ["x-mock-fault"] = nil }))
    assert.are.equal(503, out.status)
    -- a fault aimed at another mock does not apply here
    b.mock = { status = 500, target = "other" }
    out = call(mock.new{ name = "me" }, req("POST", "/v1/chat/completions", b))
    assert.are.equal(200, out.status)
    assert.are.equal(200, call(mock.new{ name = "me", fault = "status=500,target=other" },
      req("POST", "/v1/chat/completions", CHAT)).status)
    assert.are.equal(500, call(mock.new{ name = "me", fault = "status=500,target=me" },
      req("POST", "/v1/chat/completions", CHAT)).status)
    local s = json.decode(app.handle(req("GET", "/mock/stats"), recorder()).body)
    assert.are.equal(3, s.requests)
    assert.are.equal(3, s.chat)
    assert.are.equal(2, s.faults)
    assert.are.equal(2, s.by_fault.status)
  end)

  it("rejects a bad fault spec with 400", function()
    local out = call(mock.new{}, req("POST", "/v1/chat/completions", CHAT, { ["x-mock-fault"] = "explode" }))
    assert.are.equal(400, out.status)
    assert.are.equal("bad mock fault (header): unknown fault 'explode'", json.decode(out.body).error.message)
    assert.has_error(function() mock.new{ fault = "status=abc" } end,
      "mock: bad --fault: fault 'status' needs a number >= 0")
  end)

  it("resets the connection, cuts streams and sends malformed JSON", function()
    local app = mock.new{}
    local out, res = call(app, req("POST", "/v1/chat/completions", CHAT, { ["x-mock-fault"] = "reset" }))
    assert.is_nil(out)
    assert.is_true(res.aborted)
    assert.is_false(res.started)
    -- a cut raises after the head, so that the server closes the connection (orderly) without
    -- finishing the response: what was written still reaches the client
    local b = { model = "m", stream = true, messages = CHAT.messages, mock = { cut_after = 3 } }
    res = recorder()
    assert.has_error(function() app.handle(req("POST", "/v1/chat/completions", b), res) end,
      "mock fault: cut_after")
    assert.are.equal(3, #res.chunks)
    assert.is_false(res.finished)
    out = call(app, req("POST", "/v1/chat/completions", CHAT, { ["x-mock-fault"] = "malformed" }))
    assert.are.equal(200, out.status)
    assert.is_nil(json.decode(out.body))
    -- streams: the 2nd event is spoilt, or with malformed=N the one after N good events
    b = { model = "m", stream = true, messages = CHAT.messages, mock = { malformed = 3 } }
    out, res = call(app, req("POST", "/v1/chat/completions", b))
    assert.truthy(json.decode(res.chunks[3]:match("^data: (.*)\n\n$")))
    assert.is_nil(json.decode(res.chunks[4]:match("^data: (.*)\n\n$")))
    assert.truthy(json.decode(res.chunks[5]:match("^data: (.*)\n\n$")))
    assert.are.same({ nil, "fault 'malformed' takes no value or a count >= 1" },
      { mock.parse_fault("malformed=-2") })
  end)

  it("delays the answer by latency", function()
    local app = mock.new{ latency = 50 }
    local t0 = mg.now()
    local out = call(app, req("POST", "/v1/chat/completions", CHAT, { ["x-mock-fault"] = "latency=50" }))
    local took = mg.now() - t0
    assert.are.equal(200, out.status)
    assert.is_true(took >= 0.095 and took < 0.5, "took " .. took)
  end)

  it("changes its fault at run time and resets its counters", function()
    local app = mock.new{}
    local out = call(app, req("POST", "/mock/fault", "status=503"))
    assert.are.same({ ok = true, fault = "status=503" }, json.decode(out.body))
    assert.are.equal(503, call(app, req("POST", "/v1/chat/completions", CHAT)).status)
    call(app, req("POST", "/mock/fault", '{"fault":null}'))
    assert.are.equal(200, call(app, req("POST", "/v1/chat/completions", CHAT)).status)
    local last = json.decode(call(app, req("GET", "/mock/last")).body)
    assert.are.equal("/v1/chat/completions", last.path)
    call(app, req("POST", "/mock/reset"))
    local s = json.decode(call(app, req("GET", "/mock/stats")).body)
    assert.are.equal(0, s.requests)
  end)

  it("pads the answer to answer_bytes and counts stream events", function()
    local app = mock.new{}
    local b = { model = "m", messages = { { role = "user", content = "hi" } }, mock = { answer_bytes = 40 } }
    local v = json.decode(call(app, req("POST", "/v1/chat/completions", b)).body)
    assert.are.equal("mock answer: hi mock answer: hi mock answer: hi", v.choices[1].message.content)
    b.stream = true
    local _, res = call(app, req("POST", "/v1/chat/completions", b))
    local s = json.decode(call(app, req("GET", "/mock/stats")).body)
    assert.are.equal(#res.chunks, s.stream_events)
    assert.are.equal(1, s.stream_finished)
    assert.are.equal(0, s.faults)
  end)

  it("counts every request it refuses in stats.errors, and no answer or fault", function()
    local app = mock.new{ api_key = "sk-m" }
    local key = { authorization = "Bearer sk-m" }
    local refused = {
      { 400, req("POST", "/v1/chat/completions", { messages = CHAT.messages }, key) },   -- no model
      { 400, req("POST", "/v1/chat/completions", { model = "m", messages = {} }, key) },
      { 400, req("POST", "/v1/embeddings", { model = "m" }, key) },                      -- no input
      { 400, req("POST", "/v1/chat/completions", "{", key) },
      { 401, req("POST", "/v1/chat/completions", CHAT) },
      { 401, req("GET", "/v1/models") },
      { 404, req("GET", "/v1/models/zzz", nil, key) },
      { 404, req("GET", "/v2/nothing", nil, key) },
      { 405, req("DELETE", "/v1/models", nil, key) },
      { 405, req("GET", "/v1/chat/completions", nil, key) },
    }
    for i, c in ipairs(refused) do
      assert.are.equal(c[1], call(app, c[2]).status, "request " .. i)
    end
    assert.are.equal(200, call(app, req("POST", "/v1/chat/completions", CHAT, key)).status)
    assert.are.equal(503, call(app, req("POST", "/v1/chat/completions", CHAT,
      { authorization = "Bearer sk-m", ["x-mock-fault"] = "status=503" })).status)
    local s = json.decode(call(app, req("GET", "/mock/stats")).body)
    assert.are.same({ #refused, 1, #refused + 2 }, { s.errors, s.faults, s.requests })
    assert.has_error(function() mock.new{ models = "a,b" } end, "mock: models must be a list of names")
  end)

  it("lists models and rejects bad requests in OpenAI's shape", function()
    local app = mock.new{}
    local v = json.decode(call(app, req("GET", "/v1/models")).body)
    assert.are.equal("mock-small", v.data[1].id)
    local out = call(app, req("POST", "/v1/chat/completions", "{nope"))
    assert.are.equal(400, out.status)
    assert.truthy(json.decode(out.body).error.message:match("^invalid json body"))
    out = call(app, req("POST", "/v1/chat/completions", { model = "m", messages = {} }))
    assert.are.equal("'messages' must be a non-empty array", json.decode(out.body).error.message)
    assert.are.equal(405, call(app, req("GET", "/v1/chat/completions")).status)
    out = call(app, req("POST", "/v1/chat/completions", { model = "m", messages = CHAT.messages, tools = { 1 } }))
    assert.are.equal("tools[0].function.name: a function name is required", json.decode(out.body).error.message)
    out = call(app, req("POST", "/v1/chat/completions", { model = "m", messages = CHAT.messages, stop = 5 }))
    assert.are.equal("'stop' must be a string or an array of strings", json.decode(out.body).error.message)
    out = call(app, req("POST", "/v1/messages", { model = "m", max_tokens = 5, messages = { { role = "system", content = "x" } } }))
    assert.are.same({ type = "error", error = { type = "invalid_request_error",
      message = 'messages.0.role: must be "user" or "assistant"' } }, json.decode(out.body))
    assert.are.equal(404, call(app, req("GET", "/v2/nothing")).status)
  end)

  it("checks the api key when started with one", function()
    local app = mock.new{ api_key = "sk-test" }
    local out = call(app, req("POST", "/v1/chat/completions", CHAT, { authorization = "Bearer nope" }))
    assert.are.equal(401, out.status)
    out = call(app, req("POST", "/v1/chat/completions", CHAT, { authorization = "Bearer sk-test" }))
    assert.are.equal(200, out.status)
    out = call(app, req("POST", "/v1/messages", { model = "c", max_tokens = 5,
      messages = { { role = "user", content = "x" } } }, { ["x-api-key"] = "sk-test" }))
    assert.are.equal(200, out.status)
  end)
  it("answers junk bodies with 4xx, never a handler error", function()
    local app = mock.new{}
    local vals = { json.null, 1, -1, 0, 1e308, "x", "", true, false, {}, { 1 }, { {} }, { a = 1 },
      { role = "user" }, { { role = "user", content = { 1, 2 } } }, { { role = 5, content = "x" } },
      { { role = "tool", content = { { type = "text" } } } },
      { { role = "user", content = { { type = "tool_result", content = { { text = 5 } } } } } } }
    local keys = { "model", "messages", "tools", "tool_choice", "response_format", "stop", "max_tokens",
      "n", "stream", "stream_options", "input", "dimensions", "encoding_format", "system",
      "stop_sequences" }
    local paths = { "/v1/chat/completions", "/v1/embeddings", "/v1/messages" }
    math.randomseed(7)
    for _ = 1, 3000 do
      local b = { model = "m", messages = { { role = "user", content = "hi there" } }, max_tokens = 50, input = "x" }
      for _ = 1, math.random(1, 4) do b[keys[math.random(#keys)]] = vals[math.random(#vals)] end
      if math.random() < 0.3 then b.tools = { { type = "function", ["function"] = vals[math.random(#vals)] } } end
      local ok, out = pcall(call, app, req("POST", paths[math.random(#paths)], b))
      assert(ok, out)
      if out then assert.is_true(out.status == 200 or (out.status >= 400 and out.status < 500), out.body) end
    end
  end)
end)
