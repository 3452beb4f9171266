-- moongate.providers.extractive: the embedded default "model": no network, no weights. Answers the
-- last user message with the most relevant sentences of its context (retrieved passages from an
-- index when configured, else the conversation itself), with citations, in OpenAI's shapes.
local json = require "moongate.json"

local M = {}

local Provider = {}
Provider.__index = Provider

-- new(name, cfg): cfg.index = an index folder for pipelines/rag_qa.lua (optional),
-- cfg.k (passages retrieved, 5), cfg.max_sentences (3), cfg.tenant.
function M.new(name, cfg)
  cfg = cfg or {}
  return setmetatable({
    name = name, kind = "extractive", index = cfg.index, k = cfg.k or 5,
    max_sentences = cfg.max_sentences or 3, tenant = cfg.tenant,
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
      local ok, r = pcall(rag.answer, { question = question, index = self.index, tenant = self.tenant,
                                         k = self.k, max_sentences = self.max_sentences })
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

function Provider:embeddings()
  return nil, { status = 400, reason = "unsupported", kind = "client",
                message = "the extractive provider has no embeddings" }
end

return M
