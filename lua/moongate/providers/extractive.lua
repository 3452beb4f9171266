-- moongate.providers.extractive: the embedded default "model": no network, no weights. Answers the
-- last user message with the most relevant sentences of its context (retrieved passages from an
-- index when configured, else the conversation itself), with citations, in OpenAI's shapes.
local json = require "moongate.json"

local M = {}

local Provider = {}
Provider.__index = Provider

-- new(name, cfg): cfg.index = an index folder for pipelines/rag_qa.lua (optional),
-- cfg.k (passages retrieved, 12), cfg.max_sentences (3), cfg.rerank (true: the local re-ranker),
-- cfg.tenant (search one tenant's documents for every caller; by default each request searches
-- its own tenant's, as auth found it).
function M.new(name, cfg)
  cfg = cfg or {}
  return setmetatable({
    name = name, kind = "extractive", index = cfg.index, k = cfg.k or 12,
    max_sentences = cfg.max_sentences or 3, tenant = cfg.tenant, embedder_kind = cfg.embedder,
    rerank = cfg.rerank,
  }, Provider)
end

local function text_of(content)
  if type(content) == "string" then return content end
  if type(content) == "table" then   -- multi-part content: keep the text parts
    local parts = {}
    for _, p in ipairs(content) do
      if type(p) == "table" and p.type == "text" and type(p.text) == "string" then
        parts[#parts + 1] = p.text
      end
    end
    return table.concat(parts, "\n")
  end
  return ""
end

-- question and contexts from a chat request: the last user message asks; everything said before
-- it (system prompt, earlier turns, tool results) is what the answer may draw from.
function M.conversation(messages)
  local last
  for i = #messages, 1, -1 do
    if messages[i].role == "user" then last = i; break end
  end
  if not last then return nil, {} end
  local contexts = {}
  for i = 1, #messages do
    if i ~= last then
      local m = messages[i]
      local t = text_of(m.content)
      if t:find("%S") then
        contexts[#contexts + 1] = { id = "message-" .. i, title = m.role or "message", text = t,
                                    source = "messages[" .. (i - 1) .. "]" }
      end
    end
  end
  return text_of(messages[last].content), contexts
end

M.NOTHING = "I don't know: there is no context to answer from. Add the relevant text to the " ..
  "conversation (for example in the system message) or configure an index for this provider."

-- pipelines/rag_qa.lua, loaded once (hot-reloaded when the reload module is there), or nil.
function M.rag_qa()
  local path = require("moongate.base").home .. "/pipelines/rag_qa.lua"
  local ok, reload = pcall(require, "moongate.reload")
  if ok then
    local rok, mod = pcall(reload.require, path)
    if rok and type(mod) == "table" then return mod end
  end
  if M._rag == nil then
    local fok, mod = pcall(dofile, path)
    M._rag = fok and mod or false
  end
  return M._rag or nil
end

-- answer(doc) -> text, citations
function Provider:answer(doc)
  local question, contexts = M.conversation(doc.messages)
  if not question or not question:find("%S") then
    return "I don't know: there is no question in the conversation.", {}
  end
  -- the conversation first: text the client supplied is the most specific context there is
  local ex_ok, ex = pcall(require, "moongate.extractive")
  local text, cites
  if #contexts > 0 and ex_ok then
    local r = ex.answer{ question = question, contexts = contexts, max_sentences = self.max_sentences }
    text, cites = r.text, r.citations or {}
    if #cites > 0 or not self.index then return text, cites end
  end
  if self.index then
    local rag = M.rag_qa()
    if rag then
      local edge = require("moongate").context().edge
      local tenant = self.tenant or (edge and edge.tenant) or nil
      local ok, r = pcall(rag.answer, { question = question, index = self.index, tenant = tenant,
                                         k = self.k, max_sentences = self.max_sentences,
                                         rerank = self.rerank })
      if ok and type(r) == "table" and r.answer then return r.answer, r.citations or {} end
      if not ok then
        local log = package.loaded["moongate.log"]
        if log then log.warn("extractive: retrieval failed", { error = tostring(r), index = self.index }) end
      end
    end
  end
  if text then return text, cites end
  return M.NOTHING, {}
end

local function count(text)
  local ok, tok = pcall(require, "moongate.tokenizer")
  if ok and tok and tok.count then
    local n = tok.count(text, "o200k_base")
    if n then return n end
  end
  return math.ceil(#text / 4)
end

local function prompt_tokens(doc)
  local n = 0
  for _, m in ipairs(doc.messages) do n = n + count(text_of(m.content)) + 4 end
  return n
end

local function completion_id()
  local ctx = require("moongate").context()
  local rid = ctx and ctx.request_id
  return "chatcmpl-" .. (rid or string.format("%08x%08x", math.random(0, 0x7fffffff), math.random(0, 0x7fffffff)))
end

-- Events source with the streaming interface the gateway reads (next(timeout), close()).
local Events = {}
Events.__index = Events
function Events:next()
  local i = self.i + 1
  self.i = i
  return self.list[i]
end
function Events:close() self.i = #self.list end
function Events:pending() return self.i < #self.list end

function Provider:chat(req, tier, budget)
  local doc = req.doc
  local text, citations = self:answer(doc)
  local model = "extractive"
  local pt, ct = prompt_tokens(doc), count(text)
  local usage = { prompt_tokens = pt, completion_tokens = ct, total_tokens = pt + ct }
  local id, created = completion_id(), os.time()
  local cites = json.array(citations)
  if not req.stream then
    local out = {
      id = id, object = "chat.completion", created = created, model = model,
      choices = json.array{ { index = 0, finish_reason = "stop", logprobs = json.null,
        message = { role = "assistant", content = text, refusal = json.null } } },
      usage = usage, citations = cites,
    }
    local b = assert(json.encode(out))
    return { body = b, doc = out, usage = usage, model = model }
  end
  local list = {}
  local function chunk(delta, finish, extra)
    local c = { id = id, object = "chat.completion.chunk", created = created, model = model,
                choices = json.array{ { index = 0, delta = delta, logprobs = json.null,
                                        finish_reason = finish or json.null } } }
    if extra then for k, v in pairs(extra) do c[k] = v end end
    list[#list + 1] = assert(json.encode(c))
  end
  chunk({ role = "assistant", content = "" })
  -- one chunk per sentence-ish piece, so clients see the answer arrive progressively
  for piece in text:gmatch("[^%.!?]+[%.!?]*%s*") do chunk({ content = piece }) end
  chunk(json.object(), "stop", { citations = cites })
  list[#list + 1] = assert(json.encode({ id = id, object = "chat.completion.chunk", created = created,
    model = model, choices = json.array(), usage = usage }))
  list[#list + 1] = "[DONE]"
  return { events = setmetatable({ list = list, i = 0 }, Events) }
end

-- Embeddings, offline: the local embedder (GloVe word vectors, smooth inverse frequency
-- weighting; hashed n-grams when the vectors are missing), unit length, float or base64.
local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local function base64(s)
  local out, n = {}, 0
  local byte, sub = string.byte, string.sub
  for i = 1, #s, 3 do
    local a, b, c = byte(s, i, i + 2)
    local v = a * 65536 + (b or 0) * 256 + (c or 0)
    local c1, c2 = math.floor(v / 262144) % 64, math.floor(v / 4096) % 64
    local c3, c4 = math.floor(v / 64) % 64, v % 64
    n = n + 1
    out[n] = sub(B64, c1 + 1, c1 + 1) .. sub(B64, c2 + 1, c2 + 1) ..
      (b and sub(B64, c3 + 1, c3 + 1) or "=") .. (c and sub(B64, c4 + 1, c4 + 1) or "=")
  end
  return table.concat(out)
end
M.base64 = base64

local function client_error(msg)
  return nil, { status = 400, reason = "invalid", kind = "client", message = msg }
end

function Provider:embedder()
  if self._embedder == nil then
    local emb = require "moongate.retrieval.embedder"
    local e = emb.new({ kind = self.embedder_kind or "glove" })
    -- the vectors are loaded on first use: try once, fall back to hashed n-grams
    if e and not pcall(e.embed, "probe") then e = nil end
    self._embedder = e or emb.new({ kind = "hash" })
  end
  return self._embedder
end

function Provider:embeddings(req)
  local doc = req.doc
  local input = doc.input
  local texts = type(input) == "string" and { input } or input
  if type(texts) ~= "table" or #texts == 0 then
    return client_error("input must be a string or a non-empty array of strings")
  end
  for i = 1, #texts do
    if type(texts[i]) ~= "string" then
      return client_error("input must be text: the extractive provider cannot read token arrays")
    end
  end
  local format = doc.encoding_format or "float"
  if format ~= "float" and format ~= "base64" then
    return client_error("encoding_format must be \"float\" or \"base64\"")
  end
  local e = self:embedder()
  local ffi = require "ffi"
  local data, tokens = json.array(), 0
  for i = 1, #texts do
    local v = e.embed(texts[i])
    local emb
    if format == "base64" then
      emb = base64(ffi.string(v, e.dim * 4))
    else
      emb = json.array()
      for j = 0, e.dim - 1 do emb[j + 1] = tonumber(v[j]) end
    end
    data[i] = { object = "embedding", index = i - 1, embedding = emb }
    tokens = tokens + count(texts[i])
  end
  local model = "extractive-" .. e.name .. "-" .. e.dim
  local out = { object = "list", data = data, model = model,
                usage = { prompt_tokens = tokens, total_tokens = tokens } }
  return { body = assert(json.encode(out)), doc = out, usage = out.usage, model = model }
end

return M
