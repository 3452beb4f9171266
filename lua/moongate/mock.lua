-- moongate.mock: an OpenAI-compatible fake LLM (plus Anthropic's /v1/messages) with fault
-- injection, served by `moongate mock`; deterministic answers so tests can assert exact values.
local mg = require "moongate"
local json = require "moongate.json"
local ffi = require "ffi"
local bit = require "bit"

local floor, max, min = math.floor, math.max, math.min
local concat, insert = table.concat, table.insert
local type, tostring, tonumber, pairs, ipairs, next = type, tostring, tonumber, pairs, ipairs, next

local M = {}

---------------------------------------------------------------------------------------------
-- Fault specs: "status=429,retry_after=2", "reset", "cut_after=3", ... or the same as a table.

local FAULT_KEYS = {
  status = "number", retry_after = "number", latency = "number", reset = "flag",
  stall = "flag", stall_first_byte = "number", cut_after = "number", malformed = "flag|number",
  chunk_delay = "number", target = "string", none = "flag", answer_bytes = "number",
}

--- mock.parse_fault(spec) -> fault table | nil, err. spec: a string "k=v,flag,..." or a table
--- (the body's "mock" field). An empty spec or "none" gives an empty fault (no fault).
function M.parse_fault(spec)
  local f = {}
  if spec == nil or spec == json.null then return f end
  local pairs_in = {}
  if type(spec) == "string" then
    for item in spec:gmatch("[^,%s]+") do
      local k, v = item:match("^([%w_]+)=(.*)$")
      if k then pairs_in[#pairs_in + 1] = { k, v } else pairs_in[#pairs_in + 1] = { item, true } end
    end
  elseif type(spec) == "table" then
    for k, v in pairs(spec) do pairs_in[#pairs_in + 1] = { tostring(k), v } end
  else
    return nil, "fault must be a string or an object"
  end
  for _, kv in ipairs(pairs_in) do
    local k, v = kv[1], kv[2]
    local kind = FAULT_KEYS[k]
    if not kind then return nil, "unknown fault '" .. k .. "'" end
    if kind == "flag|number" then
      -- bare (true) or a count: malformed=3 spoils the stream's 4th event
      local n = tonumber(v)
      if v == true or v == "true" then
        f[k] = true
      elseif n and n >= 1 and n == floor(n) then
        f[k] = n
      elseif v == false or v == "false" or n == 0 then
        f[k] = nil
      else
        return nil, "fault '" .. k .. "' takes no value or a count >= 1"
      end
    elseif kind == "flag" then
      if v ~= true and v ~= "true" and v ~= 1 and v ~= "1" then
        if v == false or v == "false" or v == 0 or v == "0" then v = nil
        else return nil, "fault '" .. k .. "' takes no value" end
      end
      f[k] = v and true or nil
    elseif kind == "number" then
      local n = tonumber(v)
      if not n or n < 0 then return nil, "fault '" .. k .. "' needs a number >= 0" end
      f[k] = n
    else
      if type(v) ~= "string" or v == "" then return nil, "fault '" .. k .. "' needs a name" end
      f[k] = v
    end
  end
  if f.status and (f.status < 100 or f.status > 599 or f.status ~= floor(f.status)) then
    return nil, "fault 'status' must be an HTTP status (100-599)"
  end
  if f.cut_after and f.cut_after ~= floor(f.cut_after) then
    return nil, "fault 'cut_after' must be an integer"
  end
  f.none = nil
  return f
end

-- The first fault name of f, for the stats (nil when f is empty).
local FAULT_ORDER = { "reset", "stall", "status", "malformed", "cut_after", "stall_first_byte",
  "latency", "chunk_delay" }
local function fault_names(f)
  local out = {}
  for _, k in ipairs(FAULT_ORDER) do if f[k] then out[#out + 1] = k end end
  return out
end

---------------------------------------------------------------------------------------------
-- Token counts: exact with moongate.tokenizer when it is there, else about 4 bytes a token.

local tokenizer
do
  local ok, t = pcall(require, "moongate.tokenizer")
  if ok and type(t) == "table" and t.count then tokenizer = t end
end

local function count_text(text)
  if text == "" then return 0 end
  if tokenizer then
    local ok, n = pcall(tokenizer.count, text, "o200k_base")
    if ok and type(n) == "number" then return n end
  end
  return max(1, floor((#text + 3) / 4))
end

-- Text of a message's content: a string, or an array of parts ({type="text", text=...}).
local function content_text(c)
  if type(c) == "string" then return c end
  if type(c) ~= "table" then return "" end
  local parts = {}
  for _, p in ipairs(c) do
    if type(p) == "table" then
      if type(p.text) == "string" then parts[#parts + 1] = p.text
      elseif p.type == "tool_result" then parts[#parts + 1] = content_text(p.content) end
    elseif type(p) == "string" then
      parts[#parts + 1] = p
    end
  end
  return concat(parts, "\n")
end

local function count_messages(messages, model)
  if tokenizer and tokenizer.count_chat then
    local ok, n = pcall(tokenizer.count_chat, messages, model)
    if ok and type(n) == "number" then return n end
  end
  -- OpenAI's accounting: 3 tokens a message + its text, 3 to prime the answer.
  local n = 3
  for _, m in ipairs(messages) do
    n = n + 3 + count_text(content_text(m.content))
    if type(m.name) == "string" then n = n + 1 end
  end
  return n
end

---------------------------------------------------------------------------------------------
-- Deterministic content.

-- 32-bit FNV-1a of a string, as a non-negative number.
local function fnv1a(s)
  local h = 0x811c9dc5
  for i = 1, #s do
    h = bit.bxor(h, s:byte(i))
    h = bit.tobit(h * 0x01000193 % 2 ^ 32)
  end
  return h % 2 ^ 32
end

local function hex8(n) return string.format("%08x", n) end
local pad

-- A value matching a JSON schema, built from the answer text (for tool arguments and
-- response_format json_schema).
local function sample(schema, text, depth)
  depth = depth or 0
  if type(schema) ~= "table" or depth > 8 then return text end
  if type(schema.enum) == "table" and schema.enum[1] ~= nil then return schema.enum[1] end
  if schema.const ~= nil then return schema.const end
  local t = schema.type
  if type(t) == "table" then t = t[1] end
  if t == "object" or (t == nil and type(schema.properties) == "table") then
    local o = json.object()
    local props = type(schema.properties) == "table" and schema.properties or {}
    local names = {}
    for k in pairs(props) do names[#names + 1] = k end
    table.sort(names)
    for _, k in ipairs(names) do o[k] = sample(props[k], text, depth + 1) end
    return o
  elseif t == "array" then
    return json.array({ sample(schema.items, text, depth + 1) })
  elseif t == "integer" or t == "number" then
    return 1
  elseif t == "boolean" then
    return true
  elseif t == "null" then
    return json.null
  end
  return text
end

local encode_sorted = json.encode_sorted

-- Split text into stream pieces: each word with the spaces that follow it.
local function pieces(text)
  local out = {}
  for p in text:gmatch("%S*%s*") do if p ~= "" then out[#out + 1] = p end end
  if #out == 0 then out[1] = "" end
  return out
end
M.pieces = pieces

-- stop: null, a string, or an array of strings; returns nil or the error message.
local function check_stop(stop, name)
  if stop == nil or stop == json.null or type(stop) == "string" then return nil end
  if type(stop) == "table" then
    local ok = true
    for k, v in pairs(stop) do
      if type(k) ~= "number" or type(v) ~= "string" then ok = false end
    end
    if ok then return nil end
  end
  return "'" .. name .. "' must be a string or an array of strings"
end

-- Cut text at its first stop sequence; returns text, cut?
local function apply_stop(text, stop)
  if stop == nil or stop == json.null then return text, false end
  if type(stop) == "string" then stop = { stop } end
  local best
  for _, s in ipairs(stop) do
    if type(s) == "string" and s ~= "" then
      local i = text:find(s, 1, true)
      if i and (not best or i < best) then best = i end
    end
  end
  if best then return text:sub(1, best - 1), true end
  return text, false
end

-- Keep the first n tokens' worth of text (by pieces when no tokenizer); returns text, cut?
local function apply_max_tokens(text, n)
  if type(n) ~= "number" or n < 0 then return text, false end
  if count_text(text) <= n then return text, false end
  local out, used = {}, 0
  for _, p in ipairs(pieces(text)) do
    local c = count_text(p)
    if used + c > n then break end
    out[#out + 1] = p
    used = used + c
  end
  return concat(out), true
end

local function last_user_text(messages)
  for i = #messages, 1, -1 do
    local m = messages[i]
    if type(m) == "table" and m.role == "user" then
      -- Anthropic puts tool results in user messages: skip those for the question itself.
      local text = content_text(m.content)
      local only_tool = type(m.content) == "table" and #m.content > 0
      if only_tool then
        for _, p in ipairs(m.content) do
          if type(p) ~= "table" or p.type ~= "tool_result" then only_tool = false end
        end
      end
      if not only_tool then return text end
    end
  end
  return ""
end

-- The tool results at the end of the conversation (OpenAI role "tool", or Anthropic
-- tool_result parts in the last user message), as text; nil when the model did not just
-- receive tool output.
local function trailing_tool_results(messages)
  local last = messages[#messages]
  if type(last) ~= "table" then return nil end
  local out = {}
  if last.role == "tool" then
    local i = #messages
    while i >= 1 and type(messages[i]) == "table" and messages[i].role == "tool" do
      insert(out, 1, content_text(messages[i].content))
      i = i - 1
    end
  elseif last.role == "user" and type(last.content) == "table" then
    for _, p in ipairs(last.content) do
      if type(p) == "table" and p.type == "tool_result" then out[#out + 1] = content_text(p.content) end
    end
  end
  if #out == 0 then return nil end
  return concat(out, "; ")
end

-- The answer text for a conversation: "mock answer: <last user message>", and after tool
-- output "mock answer: <question> [tool: <results>]".
function M.answer_text(messages)
  local text = "mock answer: " .. last_user_text(messages)
  local tools = trailing_tool_results(messages)
  if tools then text = text .. " [tool: " .. tools .. "]" end
  return text
end

-- answer_bytes=N (a shaping knob, not a fault): the answer repeated, space-separated, until it
-- is at least N bytes long; a long stream for backpressure and cancellation tests.
function pad(text, n)
  if not n or #text >= n then return text end
  local parts, len = { text }, #text
  while len < n do
    parts[#parts + 1] = text
    len = len + #text + 1
  end
  return concat(parts, " ")
end

---------------------------------------------------------------------------------------------
-- Embeddings: hashed bag of words, so texts sharing words get similar vectors.

local function embed(text, dims)
  local v = {}
  for i = 1, dims do v[i] = 0 end
  local any = false
  for w in text:lower():gmatch("[%w\128-\255]+") do
    local h = fnv1a(w)
    local i = h % dims + 1
    v[i] = v[i] + ((floor(h / dims) % 2 == 0) and 1 or -1)
    local j = floor(h / 65536) % dims + 1
    v[j] = v[j] + 0.5
    any = true
  end
  if not any then v[1] = 1 end
  local norm = 0
  for i = 1, dims do norm = norm + v[i] * v[i] end
  norm = math.sqrt(norm)
  if norm == 0 then v[1], norm = 1, 1 end
  local f = ffi.new("float[1]")
  for i = 1, dims do
    f[0] = v[i] / norm     -- round to float32: the base64 and float forms agree exactly
    v[i] = tonumber(f[0])
  end
  return v
end
M.embed = embed

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function base64(s)
  local out, n = {}, #s
  for i = 1, n, 3 do
    local a, b, c = s:byte(i, i + 2)
    local v = a * 65536 + (b or 0) * 256 + (c or 0)
    local c1 = floor(v / 262144) % 64 + 1
    local c2 = floor(v / 4096) % 64 + 1
    local c3 = floor(v / 64) % 64 + 1
    local c4 = v % 64 + 1
    out[#out + 1] = B64:sub(c1, c1) .. B64:sub(c2, c2)
      .. (b and B64:sub(c3, c3) or "=") .. (c and B64:sub(c4, c4) or "=")
  end
  return concat(out)
end
M.base64 = base64

local function floats_base64(v)
  local buf = ffi.new("float[?]", #v)
  for i = 1, #v do buf[i - 1] = v[i] end
  return base64(ffi.string(buf, 4 * #v))   -- little endian on every machine we build for
end

---------------------------------------------------------------------------------------------
-- HTTP helpers.

local JSON_HEADERS = { ["content-type"] = "application/json" }

local function json_response(status, value, extra)
  local headers = { ["content-type"] = "application/json" }
  if extra then for k, v in pairs(extra) do headers[k] = v end end
  return { status = status, headers = headers, body = json.encode(value) }
end

local ERROR_TYPES = {
  [400] = { "invalid_request_error", "invalid_request" },
  [401] = { "authentication_error", "invalid_api_key" },
  [403] = { "permission_error", "permission_denied" },
  [404] = { "invalid_request_error", "not_found" },
  [405] = { "invalid_request_error", "method_not_allowed" },
  [408] = { "timeout_error", "timeout" },
  [413] = { "invalid_request_error", "request_too_large" },
  [422] = { "invalid_request_error", "unprocessable_entity" },
  [429] = { "rate_limit_error", "rate_limit_exceeded" },
  [500] = { "server_error", "internal_error" },
  [502] = { "server_error", "bad_gateway" },
  [503] = { "server_error", "service_unavailable" },
  [504] = { "timeout_error", "gateway_timeout" },
  [529] = { "server_error", "overloaded" },
}

local ANTHROPIC_TYPES = {
  [400] = "invalid_request_error", [401] = "authentication_error", [403] = "permission_error",
  [404] = "not_found_error", [413] = "request_too_large", [429] = "rate_limit_error",
  [500] = "api_error", [529] = "overloaded_error", [503] = "overloaded_error",
}

-- An error in OpenAI's shape (or Anthropic's, for /v1/messages).
local function error_response(status, message, anthropic, extra)
  if anthropic then
    return json_response(status, { type = "error", error = {
      type = ANTHROPIC_TYPES[status] or (status >= 500 and "api_error" or "invalid_request_error"),
      message = message } }, extra)
  end
  local t = ERROR_TYPES[status] or { status >= 500 and "server_error" or "invalid_request_error", json.null }
  return json_response(status, { error = { message = message, type = t[1], param = json.null,
    code = t[2] } }, extra)
end
M.error_response = error_response

local SSE_HEADERS = { ["content-type"] = "text/event-stream", ["cache-control"] = "no-cache" }

-- Close the client's connection without (the rest of) an answer: a TCP reset by the server.
local function drop(res)
  res:abort()
end

-- End a started response early with an orderly close, so the client still receives what was
-- written (a reset could discard it): raising after the head makes the server cut the
-- connection instead of finishing the response.
local function cut(res)
  error("mock fault: cut_after", 0)
end

---------------------------------------------------------------------------------------------
-- The mock server's state and handler.

local Mock = {}
Mock.__index = Mock

local NO_FAULT = {}

local function new_stats()
  return { requests = 0, chat = 0, embeddings = 0, models = 0, messages = 0, stream = 0,
    stream_events = 0, stream_finished = 0, faults = 0, errors = 0, by_fault = json.object() }
end

--- mock.new{fault=SPEC, latency=MS, name=NAME, models={...}, api_key=KEY} -> app
--- app.handle(req, res) serves the mock's routes; app.stats is the counters table.
function M.new(opts)
  opts = opts or {}
  local fault, err = M.parse_fault(opts.fault)
  if not fault then error("mock: bad --fault: " .. err, 2) end
  if opts.models ~= nil and type(opts.models) ~= "table" then error("mock: models must be a list of names", 2) end
  local self = setmetatable({
    fault = fault,
    fault_spec = opts.fault,
    latency = tonumber(opts.latency) or 0,
    name = opts.name or "mock",
    models = opts.models or { "mock-small", "mock-large", "mock-embed" },
    api_key = opts.api_key,
    stats = new_stats(),
    seq = 0,
    last = nil,
  }, Mock)
  self.handle = function(req, res) return self:serve(req, res) end
  return self
end

function Mock:next_id()
  self.seq = self.seq + 1
  return self.seq
end

function Mock:count_fault(names)
  if #names == 0 then return end
  self.stats.faults = self.stats.faults + 1
  for _, n in ipairs(names) do
    self.stats.by_fault[n] = (self.stats.by_fault[n] or 0) + 1
  end
end

-- The fault for this request: the x-mock-fault header, else the body's "mock" field, else the
-- server's --fault. A fault with target=NAME applies only to the mock started with that --name.
function Mock:fault_for(req, body)
  local server = self.fault
  if server.target and server.target ~= self.name then server = NO_FAULT end
  local spec, source = nil, nil
  local h = req.headers["x-mock-fault"]
  if h then spec, source = h, "header"
  elseif type(body) == "table" and body.mock ~= nil and body.mock ~= json.null then
    spec, source = body.mock, "body"
  end
  if not source then return server end
  local f, err = M.parse_fault(spec)
  if not f then return nil, "bad mock fault (" .. source .. "): " .. err end
  if f.target and f.target ~= self.name then return server end
  return f
end

local function sleep_ms(ms)
  if ms and ms > 0 then return mg.sleep(ms / 1000) end
  return true
end

-- Faults that act before any byte: stall, delays, reset, status. Returns a response (or
-- false for "dropped") when the fault answers instead of the route, nil to go on.
function Mock:pre_fault(f, req, res, anthropic)
  if f.stall then
    -- Accept and never answer: the server cancels this task when the client goes away.
    while true do mg.sleep(3600) end
  end
  sleep_ms(self.latency)
  sleep_ms(f.latency)
  sleep_ms(f.stall_first_byte)
  if f.reset then
    drop(res)
    return false
  end
  if f.status and f.status >= 300 then
    local extra
    if f.retry_after then extra = { ["retry-after"] = tostring(f.retry_after) } end
    return error_response(f.status, "mock fault: status " .. f.status, anthropic, extra)
  end
  return nil
end

-- A request the mock refuses (bad input, no or wrong key, unknown route or method): an error
-- answer, counted in stats.errors.
function Mock:refuse(status, message, anthropic)
  self.stats.errors = self.stats.errors + 1
  return error_response(status, message, anthropic)
end

local function check_auth(self, req, anthropic)
  if not self.api_key then return nil end
  local got
  if anthropic then got = req.headers["x-api-key"] end
  if not got then
    local a = req.headers["authorization"]
    got = a and a:match("^[Bb]earer%s+(.+)$")
  end
  if got == self.api_key then return nil end
  return self:refuse(401, got and "incorrect api key provided" or "missing api key", anthropic)
end

-- Send SSE events (array of strings, each one whole event) honouring cut_after, chunk_delay
-- and malformed. Returns true when the stream completed.
-- Counted in the stats: events written (a write that returned, so accepted by the server) and
-- streams finished; a client that goes away mid-stream leaves both short.
local function send_events(mock, res, f, events)
  res:start(200, SSE_HEADERS)
  if type(events) == "table" then
    local list, k = events, 0
    events = function() k = k + 1 return list[k] end
  end
  local i = 0
  for ev in events do
    i = i + 1
    if f.cut_after and i > f.cut_after then cut(res) end
    if i > 1 then sleep_ms(f.chunk_delay) end
    if f.malformed and i == (f.malformed == true and 2 or f.malformed + 1) then
      ev = "data: {\"id\": \"malformed\", \"choices\": [\n\n"
    end
    local ok = res:write(ev)
    if not ok then return false end
    mock.stats.stream_events = mock.stats.stream_events + 1
  end
  res:finish()
  mock.stats.stream_finished = mock.stats.stream_finished + 1
  return true
end

-- A complete non-stream JSON answer honouring cut_after (bytes), chunk_delay, malformed.
local function send_body(res, f, body)
  if f.malformed then body = body:sub(1, floor(#body / 2)) end
  if not f.cut_after then
    if f.chunk_delay then sleep_ms(f.chunk_delay) end
    return { status = 200, headers = JSON_HEADERS, body = body }
  end
  res:start(200, { ["content-type"] = "application/json", ["content-length"] = tostring(#body) })
  res:write(body:sub(1, min(#body - 1, f.cut_after)))
  cut(res)
end

local function as_array(v)
  if v == nil or v == json.null then return {} end
  if type(v) ~= "table" then return nil end
  return v
end

-- tools must be an array of {type="function", function={name=...}} (OpenAI) or {name=...}
-- (Anthropic); returns nil or the error message.
local function check_tools(tools, anthropic)
  if tools == nil or tools == json.null then return nil end
  if type(tools) ~= "table" or not (json.is_array(tools) or next(tools) == nil) then
    return "'tools' must be an array"
  end
  for i, t in ipairs(tools) do
    local fn = type(t) == "table" and (anthropic and t or t["function"]) or nil
    if type(fn) ~= "table" or type(fn.name) ~= "string" or fn.name == "" then
      return string.format(anthropic and "tools.%d.name: field required"
        or "tools[%d].function.name: a function name is required", i - 1)
    end
  end
  return nil
end

-- Decide whether the model "calls a tool": tools given, tool_choice not "none", and the model
-- did not just receive tool output (unless tool_choice forces one).
local function pick_tool(tools, choice, got_results)
  if type(tools) ~= "table" or #tools == 0 or choice == "none" then return nil end
  if type(choice) == "table" then
    local want = (choice["function"] and choice["function"].name) or choice.name
    for _, t in ipairs(tools) do
      local fn = t["function"] or t
      if fn.name == want then return fn end
    end
    return nil
  end
  if got_results and choice ~= "required" and choice ~= "any" then return nil end
  local t = tools[1]
  return t["function"] or t
end

---------------------------------------------------------------------------------------------
-- POST /v1/chat/completions

function Mock:chat(req, res, body, f)
  local messages = as_array(body.messages)
  if type(body.model) ~= "string" or body.model == "" then
    return self:refuse(400, "you must provide a model parameter")
  end
  if not messages or #messages == 0 then
    return self:refuse(400, "'messages' must be a non-empty array")
  end
  for i, m in ipairs(messages) do
    if type(m) ~= "table" or type(m.role) ~= "string" then
      return self:refuse(400, "messages[" .. (i - 1) .. "]: each message needs a role")
    end
  end
  local terr = check_tools(body.tools, false) or check_stop(body.stop, "stop")
  if terr then return self:refuse(400, terr) end
  local n = body.n
  if n == nil or n == json.null then n = 1 end
  if type(n) ~= "number" then return self:refuse(400, "'n' must be 1-16") end
  if n < 1 or n > 16 or n ~= floor(n) then return self:refuse(400, "'n' must be 1-16") end
  local max_tokens = body.max_completion_tokens
  if max_tokens == nil or max_tokens == json.null then max_tokens = body.max_tokens end
  if max_tokens == json.null then max_tokens = nil end
  if max_tokens ~= nil and (type(max_tokens) ~= "number" or max_tokens < 1) then
    return self:refuse(400, "'max_tokens' must be a positive integer")
  end

  local id = self:next_id()
  local cid = "chatcmpl-mock-" .. id
  local created = os.time()
  local model = body.model
  local prompt_tokens = count_messages(messages, model)

  local tool = pick_tool(body.tools, body.tool_choice, trailing_tool_results(messages) ~= nil)
  local text = pad(M.answer_text(messages), f.answer_bytes)
  local finish = "stop"
  local content, tool_call
  if tool then
    local args = encode_sorted(sample(tool.parameters, last_user_text(messages)))
    tool_call = { id = "call_mock_" .. hex8(fnv1a(cid .. tool.name)), type = "function",
      ["function"] = { name = tool.name, arguments = args } }
    finish = "tool_calls"
  else
    local rf = body.response_format
    if type(rf) == "table" and rf.type == "json_schema" and type(rf.json_schema) == "table" then
      text = encode_sorted(sample(rf.json_schema.schema, text))
    elseif type(rf) == "table" and rf.type == "json_object" then
      text = encode_sorted({ answer = text })
    end
    local cut
    text, cut = apply_stop(text, body.stop)
    local cut2
    text, cut2 = apply_max_tokens(text, max_tokens)
    if cut2 then finish = "length" end
    content = text
  end
  -- Usage is counted when needed: a long streamed answer starts before its tokens are counted.
  local function usage()
    local completion_tokens = tool_call
      and count_text(tool_call["function"].name) + count_text(tool_call["function"].arguments) + 3
      or count_text(content)
    completion_tokens = completion_tokens * n
    return { prompt_tokens = prompt_tokens, completion_tokens = completion_tokens,
      total_tokens = prompt_tokens + completion_tokens,
      prompt_tokens_details = { cached_tokens = 0, audio_tokens = 0 },
      completion_tokens_details = { reasoning_tokens = 0, audio_tokens = 0,
        accepted_prediction_tokens = 0, rejected_prediction_tokens = 0 } }
  end

  if body.stream == true then
    self.stats.stream = self.stats.stream + 1
    local include_usage = type(body.stream_options) == "table" and body.stream_options.include_usage == true
    local nul = include_usage and json.null or nil
    -- Events are made as they are sent, so the first byte does not wait for the last event.
    local events = coroutine.wrap(function()
      local function chunk(choices, u)
        local c = { id = cid, object = "chat.completion.chunk", created = created, model = model,
          system_fingerprint = "fp_mock", choices = json.array(choices) }
        if u ~= nil then c.usage = u end
        coroutine.yield("data: " .. json.encode(c) .. "\n\n")
      end
      for i = 0, n - 1 do
        if tool_call then
          chunk({ { index = i, delta = { role = "assistant", content = json.null,
            tool_calls = { { index = 0, id = tool_call.id, type = "function",
              ["function"] = { name = tool_call["function"].name, arguments = "" } } } },
            logprobs = json.null, finish_reason = json.null } }, nul)
          for _, p in ipairs(pieces(tool_call["function"].arguments)) do
            chunk({ { index = i, delta = { tool_calls = { { index = 0,
              ["function"] = { arguments = p } } } }, logprobs = json.null, finish_reason = json.null } }, nul)
          end
        else
          chunk({ { index = i, delta = { role = "assistant", content = "", refusal = json.null },
            logprobs = json.null, finish_reason = json.null } }, nul)
          for p in content:gmatch("%S*%s*") do
            if p ~= "" then
              chunk({ { index = i, delta = { content = p }, logprobs = json.null,
                finish_reason = json.null } }, nul)
            end
          end
        end
        chunk({ { index = i, delta = json.object(), logprobs = json.null, finish_reason = finish } }, nul)
      end
      if include_usage then chunk({}, usage()) end
      coroutine.yield("data: [DONE]\n\n")
    end)
    send_events(self, res, f, events)
    return nil
  end

  local choices = {}
  for i = 0, n - 1 do
    local message = { role = "assistant", content = content or json.null, refusal = json.null }
    if tool_call then message.tool_calls = { tool_call } end
    choices[#choices + 1] = { index = i, message = message, logprobs = json.null,
      finish_reason = finish }
  end
  local out = { id = cid, object = "chat.completion", created = created, model = model,
    system_fingerprint = "fp_mock", service_tier = "default", choices = choices, usage = usage() }
  return send_body(res, f, json.encode(out))
end

---------------------------------------------------------------------------------------------
-- POST /v1/embeddings

function Mock:embeddings(req, res, body, f)
  if type(body.model) ~= "string" or body.model == "" then
    return self:refuse(400, "you must provide a model parameter")
  end
  local inputs = body.input
  if type(inputs) == "string" then inputs = { inputs }
  elseif type(inputs) ~= "table" or #inputs == 0 then
    return self:refuse(400, "'input' must be a string or a non-empty array")
  end
  -- An array of integers is one tokenized input; an array of arrays, several.
  if type(inputs[1]) == "number" then inputs = { inputs } end
  local dims = body.dimensions
  if dims == nil or dims == json.null then dims = 64 end
  if type(dims) ~= "number" or dims < 1 or dims > 4096 or dims ~= floor(dims) then
    return self:refuse(400, "'dimensions' must be an integer between 1 and 4096")
  end
  local fmt = body.encoding_format
  if fmt == nil or fmt == json.null then fmt = "float" end
  if fmt ~= "float" and fmt ~= "base64" then
    return self:refuse(400, "'encoding_format' must be \"float\" or \"base64\"")
  end
  local data, tokens = {}, 0
  for i, input in ipairs(inputs) do
    local text
    if type(input) == "string" then
      text = input
      tokens = tokens + count_text(input)
    elseif type(input) == "table" then
      local parts = {}
      for j, t in ipairs(input) do parts[j] = tostring(t) end
      text = concat(parts, " ")
      tokens = tokens + #input
    else
      return self:refuse(400, "input[" .. (i - 1) .. "] must be a string or an array of tokens")
    end
    local v = embed(text, dims)
    data[i] = { object = "embedding", index = i - 1,
      embedding = fmt == "base64" and floats_base64(v) or v }
  end
  local out = { object = "list", data = data, model = body.model,
    usage = { prompt_tokens = tokens, total_tokens = tokens } }
  return send_body(res, f, json.encode(out))
end

---------------------------------------------------------------------------------------------
-- POST /v1/messages (Anthropic)

function Mock:anthropic(req, res, body, f)
  local messages = as_array(body.messages)
  if type(body.model) ~= "string" or body.model == "" then
    return self:refuse(400, "model: field required", true)
  end
  if type(body.max_tokens) ~= "number" or body.max_tokens < 1 then
    return self:refuse(400, "max_tokens: field required", true)
  end
  if not messages or #messages == 0 then
    return self:refuse(400, "messages: at least one message is required", true)
  end
  for i, m in ipairs(messages) do
    if type(m) ~= "table" or (m.role ~= "user" and m.role ~= "assistant") then
      return self:refuse(400, "messages." .. (i - 1) .. ".role: must be \"user\" or \"assistant\"", true)
    end
  end
  local terr = check_tools(body.tools, true) or check_stop(body.stop_sequences, "stop_sequences")
    or (type(body.stop_sequences) == "string" and "stop_sequences: must be an array" or nil)
  if terr then return self:refuse(400, terr, true) end
  local id = self:next_id()
  local mid = "msg_mock_" .. id
  local all = {}
  if body.system ~= nil and body.system ~= json.null then
    all[1] = { role = "system", content = body.system }
  end
  for _, m in ipairs(messages) do all[#all + 1] = m end
  local input_tokens = count_messages(all, body.model)
  local results = trailing_tool_results(messages)
  local choice = body.tool_choice
  local tool = pick_tool(body.tools, type(choice) == "table" and (choice.type == "tool" and choice
    or choice.type) or nil, results ~= nil)
  local text = pad(M.answer_text(messages), f.answer_bytes)
  local stop_reason, stop_sequence = "end_turn", json.null
  local blocks = {}
  if tool then
    local input = sample(tool.input_schema, last_user_text(messages))
    blocks[1] = { type = "tool_use", id = "toolu_mock_" .. hex8(fnv1a(mid .. tool.name)),
      name = tool.name, input = input }
    stop_reason = "tool_use"
  else
    local cut
    text, cut = apply_stop(text, body.stop_sequences)
    if cut then
      stop_reason = "stop_sequence"
      for _, s in ipairs(body.stop_sequences) do
        if type(s) == "string" and M.answer_text(messages):find(s, #text + 1, true) == #text + 1 then
          stop_sequence = s
          break
        end
      end
    end
    local cut2
    text, cut2 = apply_max_tokens(text, body.max_tokens)
    if cut2 then stop_reason, stop_sequence = "max_tokens", json.null end
    blocks[1] = { type = "text", text = text }
  end
  local output_tokens = tool and (count_text(blocks[1].name) + count_text(encode_sorted(blocks[1].input)) + 3)
    or count_text(text)

  if body.stream == true then
    self.stats.stream = self.stats.stream + 1
    local events = {}
    local function ev(name, data)
      events[#events + 1] = "event: " .. name .. "\ndata: " .. json.encode(data) .. "\n\n"
    end
    ev("message_start", { type = "message_start", message = { id = mid, type = "message",
      role = "assistant", model = body.model, content = json.array(), stop_reason = json.null,
      stop_sequence = json.null, usage = { input_tokens = input_tokens, output_tokens = 1 } } })
    local b = blocks[1]
    if b.type == "tool_use" then
      ev("content_block_start", { type = "content_block_start", index = 0, content_block = {
        type = "tool_use", id = b.id, name = b.name, input = json.object() } })
      ev("ping", { type = "ping" })
      for _, p in ipairs(pieces(encode_sorted(b.input))) do
        ev("content_block_delta", { type = "content_block_delta", index = 0,
          delta = { type = "input_json_delta", partial_json = p } })
      end
    else
      ev("content_block_start", { type = "content_block_start", index = 0,
        content_block = { type = "text", text = "" } })
      ev("ping", { type = "ping" })
      if b.text ~= "" then
        for _, p in ipairs(pieces(b.text)) do
          ev("content_block_delta", { type = "content_block_delta", index = 0,
            delta = { type = "text_delta", text = p } })
        end
      end
    end
    ev("content_block_stop", { type = "content_block_stop", index = 0 })
    ev("message_delta", { type = "message_delta", delta = { stop_reason = stop_reason,
      stop_sequence = stop_sequence }, usage = { output_tokens = output_tokens } })
    ev("message_stop", { type = "message_stop" })
    send_events(self, res, f, events)
    return nil
  end

  local out = { id = mid, type = "message", role = "assistant", model = body.model,
    content = blocks, stop_reason = stop_reason, stop_sequence = stop_sequence,
    usage = { input_tokens = input_tokens, output_tokens = output_tokens } }
  return send_body(res, f, json.encode(out))
end

---------------------------------------------------------------------------------------------
-- Models and the /mock admin routes.

function Mock:model_list()
  local data = {}
  for i, id in ipairs(self.models) do
    data[i] = { id = id, object = "model", created = 1700000000, owned_by = "moongate-mock" }
  end
  return { object = "list", data = json.array(data) }
end

local function snapshot(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

function Mock:admin(req)
  local p = req.path
  if p == "/mock/stats" and req.method == "GET" then
    local s = snapshot(self.stats)
    s.name = self.name
    s.fault = self.fault_spec or ""
    return json_response(200, s)
  elseif p == "/mock/reset" and req.method == "POST" then
    self.stats = new_stats()
    self.last = nil
    return json_response(200, { ok = true })
  elseif p == "/mock/fault" and (req.method == "POST" or req.method == "PUT") then
    -- Body: the spec as text ("status=503"), or {"fault": "status=503"}; "" or "none" clears.
    local spec = req.body or ""
    if spec:match("^%s*{") then
      local v = json.decode(spec)
      if type(v) ~= "table" then return error_response(400, "body must be a fault spec or {\"fault\": SPEC}") end
      spec = v.fault
      if spec == json.null then spec = "" end
    end
    local f, err = M.parse_fault(spec)
    if not f then return error_response(400, err) end
    self.fault = f
    self.fault_spec = type(spec) == "string" and spec or encode_sorted(spec)
    return json_response(200, { ok = true, fault = self.fault_spec })
  elseif p == "/mock/last" and req.method == "GET" then
    if not self.last then return error_response(404, "no request yet") end
    return json_response(200, self.last)
  end
  if p == "/mock/stats" or p == "/mock/reset" or p == "/mock/fault" or p == "/mock/last" then
    return error_response(405, "method not allowed")
  end
  return error_response(404, "unknown mock route " .. p)
end

local ROUTES = {
  ["/v1/chat/completions"] = { "POST", "chat", "chat" },
  ["/chat/completions"] = { "POST", "chat", "chat" },
  ["/v1/embeddings"] = { "POST", "embeddings", "embeddings" },
  ["/embeddings"] = { "POST", "embeddings", "embeddings" },
  ["/v1/messages"] = { "POST", "anthropic", "messages" },
}

function Mock:serve(req, res)
  local path = req.path
  if path:sub(1, 6) == "/mock/" then return self:admin(req) end
  if path == "/health" then return json_response(200, { status = "ok" }) end

  local stats = self.stats
  stats.requests = stats.requests + 1
  local headers = json.object()
  for k, v in pairs(req.headers) do headers[k] = v end
  self.last = { method = req.method, path = path, query = req.query or "", headers = headers,
    body = req.body or "" }

  local route = ROUTES[path]
  if path == "/v1/models" or path == "/models" or path:match("^/v1/models/") then
    stats.models = stats.models + 1
    local f, ferr = self:fault_for(req, nil)
    if not f then return self:refuse(400, ferr) end
    self:count_fault(fault_names(f))
    local r = self:pre_fault(f, req, res, false)
    if r ~= nil then return r or nil end
    if req.method ~= "GET" then return self:refuse(405, "method not allowed") end
    local denied = check_auth(self, req, false)
    if denied then return denied end
    local id = path:match("^/v1/models/(.+)$")
    if id then
      for _, m in ipairs(self.models) do
        if m == id then
          return json_response(200, { id = id, object = "model", created = 1700000000,
            owned_by = "moongate-mock" })
        end
      end
      return self:refuse(404, "the model '" .. id .. "' does not exist")
    end
    return json_response(200, self:model_list())
  end
  if not route then
    return self:refuse(404, "unknown route " .. req.method .. " " .. path)
  end
  stats[route[3]] = stats[route[3]] + 1
  local anthropic = route[2] == "anthropic"
  if req.method ~= route[1] then
    return self:refuse(405, "method not allowed", anthropic)
  end
  local body, jerr
  if req.body and req.body ~= "" then body, jerr = json.decode(req.body) end
  local f, ferr = self:fault_for(req, body)
  if not f then
    return self:refuse(400, ferr, anthropic)
  end
  self:count_fault(fault_names(f))
  local r = self:pre_fault(f, req, res, anthropic)
  if r ~= nil then return r or nil end
  local denied = check_auth(self, req, anthropic)
  if denied then return denied end
  if not body then
    return self:refuse(400, jerr and ("invalid json body: " .. jerr) or "a JSON body is required", anthropic)
  end
  if type(body) ~= "table" or json.is_array(body) then
    return self:refuse(400, "the body must be a JSON object", anthropic)
  end
  return self[route[2]](self, req, res, body, f)
end

---------------------------------------------------------------------------------------------
-- `moongate mock`: the app on moongate's HTTP server, until SIGTERM/SIGINT.

--- mock.serve{listen=, fault=, latency=, name=, models=, api_key=} -> exit code (blocks).
function M.serve(o)
  local server = require "moongate.server"
  local config = require "moongate.config"
  local log = require "moongate.log"
  local process = require "moongate._process"
  local app = M.new(o)
  local cfg = config.default()
  cfg.app = app
  cfg.grace = 1
  -- `stall` must outlive any client timeout: the handler's own deadline is a day
  cfg.limits.handler_timeout = 86400
  cfg.access_log = os.getenv("MOONGATE_MOCK_ACCESS_LOG") == "1"
  local listener, err = server.start(cfg, { listen = o.listen })
  if not listener then
    io.stderr:write("moongate mock: ", err, "\n")
    return 1
  end
  local host, port = listener:address()
  log.info("mock listening", { address = host .. ":" .. port, name = app.name,
    fault = o.fault or "" })
  local function stop() listener:stop(cfg.grace) end
  process.on_signal("TERM", stop)
  process.on_signal("INT", stop)
  listener:wait()
  return 0
end

return M
