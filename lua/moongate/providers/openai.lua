-- moongate.providers.openai: any OpenAI-compatible upstream (OpenAI, Azure OpenAI, Ollama, vLLM,
-- llama.cpp's server, LM Studio). Bodies go through byte for byte but for the fields moongate sets.
local http = require "moongate.http"
local json = require "moongate.json"
local body = require "moongate.gateway.body"
local retry = require "moongate.retry"
local sse = require "moongate.gateway.sse"

local M = {}

local Provider = {}
Provider.__index = Provider

local function env(name)
  local v = os.getenv(name)
  if v and v ~= "" then return v end
end

-- The base URL a provider uses when its config gives none, by the provider's own conventions.
function M.default_base_url(name, cfg)
  if name == "ollama" or cfg.ollama then
    local host = env("OLLAMA_HOST") or "http://127.0.0.1:11434"
    if not host:find("://", 1, true) then host = "http://" .. host end
    return (host:gsub("/+$", "")) .. "/v1"
  end
  return env("OPENAI_BASE_URL") or "https://api.openai.com/v1"
end

-- new(name, cfg) -> provider. cfg: base_url, api_key, api_key_env, headers, connect_timeout.
function M.new(name, cfg)
  cfg = cfg or {}
  local base = cfg.base_url or M.default_base_url(name, cfg)
  base = base:gsub("/+$", "")
  local key = cfg.api_key
  if not key and cfg.api_key_env then key = env(cfg.api_key_env) end
  -- OpenAI's key goes to OpenAI's URL (or OPENAI_BASE_URL) only, never to OLLAMA_HOST
  local ollama = not cfg.base_url and (name == "ollama" or cfg.ollama)
  if not key and cfg.api_key == nil and not cfg.base_url and not ollama then key = env("OPENAI_API_KEY") end
  if not key and cfg.api_key == nil and cfg.base_url and cfg.base_url:find("api.openai.com", 1, true) then
    key = env("OPENAI_API_KEY")
  end
  local fixed = { ["content-type"] = "application/json" }
  if key then fixed.authorization = "Bearer " .. key end
  for k, v in pairs(cfg.headers or {}) do fixed[k:lower()] = v end
  return setmetatable({
    name = name, kind = "openai", base_url = base,
    chat_url = base .. "/chat/completions",
    embeddings_url = base .. "/embeddings",
    fixed_headers = fixed,
    connect_timeout = cfg.connect_timeout or 2,
    query = cfg.query,   -- e.g. "api-version=2024-06-01" for Azure
    stream_usage = cfg.stream_usage ~= false,   -- false: the upstream refuses stream_options
  }, Provider)
end

-- Headers for one upstream call: the provider's own plus the client's forwardable ones.
local function headers_for(self, fwd)
  if not fwd or next(fwd) == nil then return self.fixed_headers end
  local h = {}
  for k, v in pairs(fwd) do h[k] = v end
  for k, v in pairs(self.fixed_headers) do h[k] = v end
  return h
end

local function upstream_error(res)
  local msg
  local doc = res.body and json.decode(res.body)
  if type(doc) == "table" and type(doc.error) == "table" then
    msg = doc.error.message
  elseif type(doc) == "table" and type(doc.error) == "string" then
    msg = doc.error
  end
  return msg or ("upstream answered " .. res.status)
end

-- A failure description for the router (see moongate.router.run).
local function failure_for(res)
  local kind = retry.classify(res.status)
  return {
    status = res.status, reason = "status", kind = kind,
    message = upstream_error(res),
    retry_after = retry.retry_after(res.headers and res.headers["retry-after"]),
    body = res.body, headers = res.headers,
  }
end
M.failure_for = failure_for

local function net_failure(err)
  return { reason = err, kind = "retry", message = "upstream " .. tostring(err) }
end

-- Read a whole body from a streaming response, each read bounded by idle.
local function read_all(res, idle)
  local parts, n = {}, 0
  while true do
    local chunk, err = res:read(idle)
    if not chunk then
      if err then return nil, err end
      break
    end
    n = n + 1; parts[n] = chunk
  end
  return table.concat(parts)
end

-- post(url, payload, req, budget, stream) -> res | nil, fail. The budget bounds the time to the
-- response headers: the first token of a stream; for a completion, upstreams send their headers
-- with the finished answer, so it bounds the whole answer (read in the same wait: one resume).
function Provider:post(url, payload, req, budget, stream)
  if self.query then url = url .. (url:find("?", 1, true) and "&" or "?") .. self.query end
  local res, err = http.request{
    method = "POST", url = url, headers = headers_for(self, req.forward_headers), body = payload,
    timeout = budget, connect_timeout = math.min(self.connect_timeout, budget), stream = stream,
  }
  if not res then return nil, net_failure(err) end
  if stream and res.status ~= 200 then
    local b, rerr = read_all(res, req.idle or 30)
    res:close()
    if not b then return nil, net_failure(rerr) end
    res.body = b
  end
  return res
end

-- chat(req, tier, budget) -> result | nil, fail
-- req: raw (client body), doc (decoded), stream, model (client's name), forward_headers, idle,
--      max_tokens (cap or nil)
-- result: non-stream { body = raw upstream JSON, doc = decoded, usage = }, stream { events = reader }
function Provider:chat(req, tier, budget)
  local set = req.set   -- top-level fields moongate changes, prepared once per request
  set.model = tier.model or req.model
  local payload
  if self.stream_usage then
    payload = body.rewrite(req.raw, req.doc, set)
  elseif req.doc.stream_options ~= nil then
    -- an upstream that refuses stream_options gets none, not even the client's own
    local d = {}
    for k, v in pairs(req.doc) do d[k] = v end
    for k, v in pairs(set) do d[k] = v end
    d.stream_options = nil
    payload = assert(json.encode(d))
  else
    local so = set.stream_options
    set.stream_options = nil
    payload = body.rewrite(req.raw, req.doc, set)
    set.stream_options = so
  end
  local res, fail = self:post(self.chat_url, payload, req, budget, req.stream)
  if not res then return nil, fail end
  if res.status ~= 200 then return nil, failure_for(res) end
  if req.stream then
    local ct = res.headers["content-type"] or ""
    if not ct:find("text/event-stream", 1, true) then
      -- some servers answer an error or a whole completion as JSON even when asked to stream
      local b = read_all(res, req.idle or 30)
      res:close()
      return nil, { status = 502, reason = "malformed", kind = "retry",
                    message = "upstream did not stream (content-type " .. ct .. ")", body = b }
    end
    return { events = sse.reader(res), headers = res.headers }
  end
  local doc = json.decode(res.body)
  if type(doc) ~= "table" or type(doc.choices) ~= "table" then
    return nil, { status = 502, reason = "malformed", kind = "retry",
                  message = "upstream answered malformed JSON" }
  end
  return { body = res.body, doc = doc, usage = doc.usage, model = doc.model }
end

-- embeddings(req, tier, budget) -> { body =, doc =, usage = } | nil, fail
function Provider:embeddings(req, tier, budget)
  local set = req.set
  set.model = tier.model or req.model
  local payload = body.rewrite(req.raw, req.doc, set)
  local res, fail = self:post(self.embeddings_url, payload, req, budget, false)
  if not res then return nil, fail end
  if res.status ~= 200 then return nil, failure_for(res) end
  local doc = json.decode(res.body)
  if type(doc) ~= "table" or type(doc.data) ~= "table" then
    return nil, { status = 502, reason = "malformed", kind = "retry",
                  message = "upstream answered malformed JSON" }
  end
  return { body = res.body, doc = doc, usage = doc.usage, model = doc.model }
end

return M
