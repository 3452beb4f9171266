-- moongate.providers.anthropic: chat completions translated to Anthropic's POST /v1/messages and
-- back (system prompt, images, tools and tool results, stop sequences, streaming events).
local http = require "moongate.http"
local json = require "moongate.json"
local sse = require "moongate.gateway.sse"
local openai = require "moongate.providers.openai"

local M = {}

local Provider = {}
Provider.__index = Provider

local VERSION = "2023-06-01"

local function env(name)
  local v = os.getenv(name)
  if v and v ~= "" then return v end
end

function M.new(name, cfg)
  cfg = cfg or {}
  local base = (cfg.base_url or env("ANTHROPIC_BASE_URL") or "https://api.anthropic.com"):gsub("/+$", "")
  -- accept a base URL given with or without /v1
  base = base:gsub("/v1$", "")
  local key = cfg.api_key
  if key == nil and cfg.api_key_env then key = env(cfg.api_key_env) end
  if key == nil then key = env("ANTHROPIC_API_KEY") end
  local h = { ["content-type"] = "application/json", ["anthropic-version"] = cfg.version or VERSION }
  if key then h["x-api-key"] = key end
  for k, v in pairs(cfg.headers or {}) do h[k:lower()] = v end
  return setmetatable({
    name = name, kind = "anthropic", base_url = base, url = base .. "/v1/messages",
    fixed_headers = h, connect_timeout = cfg.connect_timeout or 2,
    default_max_tokens = cfg.max_tokens or 4096,
  }, Provider)
end

local function text_of(content)
  if type(content) == "string" then return content end
  local parts = {}
  if type(content) == "table" then
    for _, p in ipairs(content) do
      if type(p) == "table" and p.type == "text" then parts[#parts + 1] = p.text or "" end
    end
  end
  return table.concat(parts, "\n")
end

-- OpenAI content (string or parts) -> Anthropic content blocks
local function blocks_of(content)
  if type(content) == "string" then return { { type = "text", text = content } } end
  local out = {}
  if type(content) ~= "table" then return out end
  for _, p in ipairs(content) do
    if type(p) == "table" then
      if p.type == "text" then
        out[#out + 1] = { type = "text", text = p.text or "" }
      elseif p.type == "image_url" and type(p.image_url) == "table" then
        local url = p.image_url.url or ""
        local media, data = url:match("^data:([^;]+);base64,(.*)$")
        if media then
          out[#out + 1] = { type = "image", source = { type = "base64", media_type = media, data = data } }
        else
          out[#out + 1] = { type = "image", source = { type = "url", url = url } }
        end
      end
    end
  end
  return out
end

-- to_messages(openai_body) -> anthropic request table (without model / stream)
function M.to_messages(doc, default_max)
  local system = {}
  local msgs = {}
  local function push(role, blocks)
    local last = msgs[#msgs]
    if last and last.role == role then
      for _, b in ipairs(blocks) do last.content[#last.content + 1] = b end
    else
      msgs[#msgs + 1] = { role = role, content = blocks }
    end
  end
  for _, m in ipairs(doc.messages or {}) do
    local role = m.role
    if role == "system" or role == "developer" then
      system[#system + 1] = text_of(m.content)
    elseif role == "user" then
      push("user", blocks_of(m.content))
    elseif role == "assistant" then
      local blocks = {}
      local t = text_of(m.content)
      if t ~= "" then blocks[1] = { type = "text", text = t } end
      for _, tc in ipairs(m.tool_calls or {}) do
        local fn = tc["function"] or {}
        local input = fn.arguments and json.decode(fn.arguments)
        if type(input) ~= "table" then input = json.object() end
        blocks[#blocks + 1] = { type = "tool_use", id = tc.id, name = fn.name, input = input }
      end
      if #blocks > 0 then push("assistant", blocks) end
    elseif role == "tool" then
      push("user", { { type = "tool_result", tool_use_id = m.tool_call_id, content = text_of(m.content) } })
    end
  end
  local out = {
    messages = json.array(msgs),
    max_tokens = doc.max_completion_tokens or doc.max_tokens or default_max or 4096,
  }
  if #system > 0 then out.system = table.concat(system, "\n\n") end
  if doc.temperature ~= nil then out.temperature = doc.temperature end
  if doc.top_p ~= nil then out.top_p = doc.top_p end
  local stop = doc.stop
  if type(stop) == "string" then out.stop_sequences = { stop }
  elseif type(stop) == "table" and #stop > 0 then out.stop_sequences = stop end
  if type(doc.tools) == "table" and #doc.tools > 0 then
    local tools = {}
    for _, t in ipairs(doc.tools) do
      local fn = t["function"] or {}
      tools[#tools + 1] = { name = fn.name, description = fn.description,
                            input_schema = fn.parameters or { type = "object", properties = json.object() } }
    end
    out.tools = tools
  end
  local tc = doc.tool_choice
  if tc == "auto" then out.tool_choice = { type = "auto" }
  elseif tc == "required" then out.tool_choice = { type = "any" }
  elseif tc == "none" then out.tool_choice = { type = "none" }
  elseif type(tc) == "table" and tc["function"] then
    out.tool_choice = { type = "tool", name = tc["function"].name }
  end
  if type(doc.user) == "string" then out.metadata = { user_id = doc.user } end
  return out
end

local FINISH = { end_turn = "stop", stop_sequence = "stop", max_tokens = "length",
                 tool_use = "tool_calls", pause_turn = "stop", refusal = "content_filter" }
M.FINISH = FINISH

local function usage_of(u)
  if type(u) ~= "table" then return nil end
  local pt = (tonumber(u.input_tokens) or 0) + (tonumber(u.cache_read_input_tokens) or 0)
    + (tonumber(u.cache_creation_input_tokens) or 0)
  local ct = tonumber(u.output_tokens) or 0
  return { prompt_tokens = pt, completion_tokens = ct, total_tokens = pt + ct }
end

-- from_message(anthropic_response) -> openai chat.completion table
function M.from_message(msg)
  local texts, calls = {}, {}
  for _, b in ipairs(msg.content or {}) do
    if b.type == "text" then
      texts[#texts + 1] = b.text
    elseif b.type == "tool_use" then
      calls[#calls + 1] = { id = b.id, type = "function",
                            ["function"] = { name = b.name, arguments = json.encode(b.input or json.object()) } }
    end
  end
  local message = { role = "assistant", content = #texts > 0 and table.concat(texts) or json.null,
                    refusal = json.null }
  if #calls > 0 then message.tool_calls = calls end
  return {
    id = msg.id and ("chatcmpl-" .. msg.id) or "chatcmpl-anthropic",
    object = "chat.completion", created = os.time(), model = msg.model,
    choices = json.array{ { index = 0, message = message, logprobs = json.null,
                            finish_reason = FINISH[msg.stop_reason] or "stop" } },
    usage = usage_of(msg.usage),
  }
end

-- Translates Anthropic stream events into OpenAI chunk payloads (strings), one per next().
local Events = {}
Events.__index = Events

function M.events(reader)
  return setmetatable({ reader = reader, queue = {}, qi = 1, tool_index = {}, ntools = 0,
                        id = "chatcmpl-anthropic", model = json.null, created = os.time(),
                        usage = { prompt_tokens = 0, completion_tokens = 0 } }, Events)
end

function Events:chunk(delta, finish)
  return assert(json.encode{ id = self.id, object = "chat.completion.chunk", created = self.created,
    model = self.model, choices = json.array{ { index = 0, delta = delta, logprobs = json.null,
                                                finish_reason = finish or json.null } } })
end

-- translate(event_name, data) -> list of payloads (may be empty)
function Events:translate(data)
  local ev = json.decode(data)
  if type(ev) ~= "table" then return { data } end   -- malformed: let the gateway reject it
  local t = ev.type
  if t == "message_start" then
    local m = ev.message or {}
    if m.id then self.id = "chatcmpl-" .. m.id end
    if m.model then self.model = m.model end
    local u = usage_of(m.usage)
    if u then self.usage = u end
    return { self:chunk({ role = "assistant", content = "" }) }
  elseif t == "content_block_start" then
    local b = ev.content_block or {}
    if b.type == "tool_use" then
      local i = self.ntools
      self.ntools = i + 1
      self.tool_index[ev.index] = i
      return { self:chunk({ tool_calls = { { index = i, id = b.id, type = "function",
        ["function"] = { name = b.name, arguments = "" } } } }) }
    elseif b.type == "text" and b.text and b.text ~= "" then
      return { self:chunk({ content = b.text }) }
    end
    return {}
  elseif t == "content_block_delta" then
    local d = ev.delta or {}
    if d.type == "text_delta" then
      return { self:chunk({ content = d.text }) }
    elseif d.type == "input_json_delta" then
      local i = self.tool_index[ev.index] or 0
      return { self:chunk({ tool_calls = { { index = i, ["function"] = { arguments = d.partial_json } } } }) }
    end
    return {}
  elseif t == "message_delta" then
    local u = ev.usage
    if type(u) == "table" then
      if u.output_tokens then self.usage.completion_tokens = tonumber(u.output_tokens) end
      if u.input_tokens then self.usage.prompt_tokens = tonumber(u.input_tokens) end
    end
    local reason = ev.delta and ev.delta.stop_reason
    return { self:chunk(json.object(), FINISH[reason] or "stop") }
  elseif t == "message_stop" then
    local u = self.usage
    u.total_tokens = u.prompt_tokens + u.completion_tokens
    return { assert(json.encode{ id = self.id, object = "chat.completion.chunk", created = self.created,
                                 model = self.model, choices = json.array(), usage = u }), "[DONE]" }
  elseif t == "error" then
    local e = ev.error or {}
    return { assert(json.encode{ error = { message = e.message or "upstream error", type = e.type or "api_error" } }) }
  end
  return {}   -- ping, content_block_stop, unknown events
end

function Events:next(timeout)
  while true do
    local q = self.queue
    if self.qi <= #q then
      local v = q[self.qi]
      q[self.qi] = nil
      self.qi = self.qi + 1
      return v
    end
    self.queue, self.qi = {}, 1
    local data, err = self.reader:next(timeout)
    if not data then return nil, err end
    self.queue = self:translate(data)
  end
end

function Events:pending()
  return self.qi <= #self.queue or self.reader:pending()
end

function Events:close() self.reader:close() end

local function headers_for(self, fwd)
  if not fwd then return self.fixed_headers end
  local h = {}
  for k, v in pairs(fwd) do h[k] = v end
  for k, v in pairs(self.fixed_headers) do h[k] = v end
  return h
end

function Provider:chat(req, tier, budget)
  local doc = req.doc
  local a = M.to_messages(doc, self.default_max_tokens)
  a.model = tier.model or req.model
  -- the plan's output cap, as the gateway set it for the OpenAI shape, holds here too
  local set = req.set
  local cap = set and (set.max_completion_tokens or set.max_tokens)
  if cap then a.max_tokens = cap end
  if req.stream then a.stream = true end
  local res, err = http.request{
    method = "POST", url = self.url, headers = headers_for(self, req.forward_headers),
    body = assert(json.encode(a)), timeout = budget,
    connect_timeout = math.min(self.connect_timeout, budget), stream = true,
  }
  if not res then return nil, { reason = err, kind = "retry", message = "upstream " .. tostring(err) } end
  if res.status ~= 200 or not req.stream then
    local parts = {}
    while true do
      local chunk, rerr = res:read(req.idle or 30)
      if not chunk then
        if rerr then res:close(); return nil, { reason = rerr, kind = "retry", message = "upstream " .. rerr } end
        break
      end
      parts[#parts + 1] = chunk
    end
    res:close()
    res.body = table.concat(parts)
  end
  if res.status ~= 200 then
    local f = openai.failure_for(res)
    f.body = nil   -- answered in OpenAI's error shape, not Anthropic's
    return nil, f
  end
  if req.stream then return { events = M.events(sse.reader(res)) } end
  local msg = json.decode(res.body)
  if type(msg) ~= "table" or type(msg.content) ~= "table" then
    return nil, { status = 502, reason = "malformed", kind = "retry", message = "upstream answered malformed JSON" }
  end
  local out = M.from_message(msg)
  return { body = assert(json.encode(out)), doc = out, usage = out.usage, model = out.model }
end

function Provider:embeddings()
  return nil, { status = 400, reason = "unsupported", kind = "client",
                message = "anthropic has no embeddings endpoint" }
end

return M
