-- pipelines/rag_qa.lua: question answering over an index: retrieve -> rerank -> build context
-- -> generate (a model provider, or the offline extractive answerer) -> answer with citations.
--
--   local rag = require "pipelines.rag_qa"
--   local r = rag.answer{question = "How do I rebuild the index?", index = "docs-index"}
--   print(r.answer)              -- "... [1]"
--   for _, c in ipairs(r.citations) do print(c.n, c.source) end
local retrieval = require "moongate.retrieval"
local context = require "moongate.retrieval.context"
local extractive = require "moongate.extractive"
local store = require "moongate.retrieval.store"
local tracing = require "moongate.trace"

local M = { name = "rag_qa" }

-- rerank: off unless asked for (true: the local re-ranker, or a reranker object such as
-- moongate.retrieval.rerank's http kind): the local one lowered nDCG@10 on Cranfield.
-- Hybrid fusion for questions: the retrieval default (dense 0.1, from Cranfield's keyword
-- queries) with more weight on the word vectors, which catch a question's paraphrases of the
-- docs' wording (tests/golden/docs_answers.lua: 83.1% -> 84.2% right first citations).
M.fusion = { method = "weighted", weights = { bm25 = 1, dense = 0.3 } }

M.defaults = { k = 5, candidates = 20, mode = "hybrid", rerank = false, budget = 1500, max_sentences = 3 }

-- The system prompt is a template next to this file (rag_qa.system.txt): versioned by its
-- content hash, hot-reloaded, and named in every stage's span. req.prompt picks another one
-- (a flag's variant can name it); M.SYSTEM is the fallback when the file is missing.
local prompts = require "moongate.prompts"
M.FILE = (debug.getinfo(1, "S").source:gsub("^@", ""))
M.PROMPT = prompts.next_to(M.FILE, "system")
M.SYSTEM = "Answer the question using only the numbered passages. Cite the passages you use " ..
  "as [n] right after the statement they support. If the passages do not answer the question, " ..
  "say that you don't know."

-- Open indexes, by folder, kept for the life of the worker (each refreshes itself when a new
-- version is published). A folder of documents rather than an index is indexed first, into
-- a cache folder, and re-indexed (incrementally) once per process.
local open = {}

-- How a folder of documents is chunked: one chunk a section (a section under min_tokens joins
-- the next; a long one is cut at max_tokens), so that each passage is about one thing and
-- the section it is filed under is the one it answers from. On moongate's own docs this alone
-- took the right section cited first from 43% to 63% (tests/golden/docs_answers.lua).
M.folder_chunking = { max_tokens = 400, min_tokens = 40, overlap = 40 }
-- BM25 counts each section's heading three times: a docs section's heading names what it is
-- about, in words its text dilutes (tests/golden/docs_answers.lua, first 177 questions: right
-- first citations 144 with the heading counted once, 146 twice, 147 three times).
M.folder_index = { heading_weight = 3 }

local function cache_dir(path)
  local base = os.getenv("MOONGATE_INDEX_CACHE")
  if not base then
    local xdg = os.getenv("XDG_CACHE_HOME")
    base = (xdg and xdg ~= "" and xdg or ((os.getenv("HOME") or "/tmp") .. "/.cache")) .. "/moongate"
  end
  store.mkdir(base:match("^(.*)/[^/]+$") or base)
  store.mkdir(base)
  -- chunking is fixed when an index is created: other settings, another folder
  local c = M.folder_chunking
  local h = require("moongate.retrieval.writer").content_hash(
    ("%s\0%d/%d/%d"):format(path, c.max_tokens, c.min_tokens, c.overlap))
  return base .. "/index-" .. h
end

--- index_folder(path, dir) -> idx | nil, err: index the documents of folder `path` into the
-- index folder `dir` (incrementally when `dir` holds an index of it already), chunked by
-- M.folder_chunking, and open it.
function M.index_folder(path, dir)
  local c = M.folder_chunking
  local summary, err = retrieval.index(dir, { path }, { wait = true, max_tokens = c.max_tokens,
    min_tokens = c.min_tokens, overlap = c.overlap, heading_weight = M.folder_index.heading_weight })
  if not summary then return nil, err end
  return retrieval.open(dir)
end

function M.open_index(path)
  local idx = open[path]
  if idx then return idx end
  local err
  if store.exists(path .. "/index.sqlite") then
    idx, err = retrieval.open(path)
  elseif store.is_dir(path) then
    idx, err = M.index_folder(path, cache_dir(path))
  else
    err = "no index or folder at " .. path
  end
  if not idx then return nil, err end
  open[path] = idx
  return idx
end

-- idf(term) over the index's chunks (nil for a term no chunk holds), or nil for an index
-- object without a loaded snapshot. Terms as moongate.analyzer prints them (stemmed).
function M.index_idf(idx)
  local snap = type(idx) == "table" and idx.snap
  if not snap or not snap.bm25 then return nil end
  local ix, N = snap.bm25, snap.n
  return function(term)
    local df = ix:df(term)
    if not df or df == 0 then return nil end
    return math.log(1 + (N - df + 0.5) / (df + 0.5))
  end
end

-- What each stage's span says about its work (moongate.trace), read after the stage ran.
local function ids(list, field)
  local out = {}
  for i, x in ipairs(list or {}) do out[i] = tostring(field and x[field] or x.id) end
  return out
end
M.span_attrs = {
  retrieve = function(ctx)
    return { ["moongate.retrieval.candidates"] = ctx.hits and #ctx.hits or 0,
             ["moongate.retrieval.mode"] = ctx.mode, ["moongate.index.version"] = ctx.version }
  end,
  rerank = function(ctx) return { ["moongate.retrieval.kept"] = ctx.hits and #ctx.hits or 0 } end,
  build_context = function(ctx)
    local c = ctx.context
    local chosen = {}
    for i, p in ipairs(c and c.passages or {}) do chosen[i] = tostring(p.hit.id) end
    return { ["moongate.retrieval.chosen"] = chosen }
  end,
  answer = function(ctx)
    return { ["moongate.citations"] = ids(ctx.answer and ctx.answer.citations, "doc_id") }
  end,
}

-- Each stage runs in a span of the request's trace (a no-op outside a traced request) and is
-- timed in ctx.spans too, for callers of answer() that read the figures directly.
local function trace(ctx, name, fn)
  local sp = tracing.start(name)
  local t0 = os.clock()
  local ok, err = fn()
  ctx.spans = ctx.spans or {}
  ctx.spans[#ctx.spans + 1] = { name = name, seconds = os.clock() - t0, ok = ok and true or false, err = err }
  if not sp.noop then
    if ctx.prompt then sp:set("moongate.prompt", ctx.prompt.name):set("moongate.prompt.version", ctx.prompt.version) end
    local attrs = M.span_attrs[name]
    if attrs then for k, v in pairs(attrs(ctx)) do sp:set(k, v) end end
    if not ok then sp:fail(err) end
  end
  sp:finish()
  return ok, err
end

-- The stages, each run(ctx) -> true | nil, err; ctx carries the request and what each
-- stage produced.
M.stages = {
  { name = "retrieve", run = function(ctx)
    local idx = ctx.idx
    if type(idx) == "string" then
      local err
      idx, err = M.open_index(idx)
      if not idx then return nil, err end
      ctx.idx = idx
    end
    local hits, info = idx:search {
      query = extractive.topic(ctx.question), k = ctx.rerank and math.max(ctx.candidates, ctx.k) or ctx.k,
      mode = ctx.mode, fusion = ctx.mode == "hybrid" and M.fusion or nil, tenant = ctx.tenant, labels = ctx.labels, filters = ctx.filters,
    }
    if not hits then return nil, info end
    ctx.hits, ctx.version = hits, info.version
    return true
  end },
  { name = "rerank", run = function(ctx)
    if ctx.rerank and #ctx.hits > 1 then
      local rr = ctx.rerank
      if rr == true then
        rr = require("moongate.retrieval.rerank").new { kind = "local" }
      end
      local rctx = ctx.idx.snap and {
        idf = function(term)
          local ix, N = ctx.idx.snap.bm25, ctx.idx.snap.n
          local df = ix:df(term)
          return math.log(1 + (N - df + 0.5) / (df + 0.5))
        end }
      -- the worker's snippet cache, when the config keeps one: the same question over the same
      -- document versions is re-ranked once
      local snippets = package.loaded["moongate.cache.snippet"]
      local sc = snippets and snippets.active()
      local ok, err
      if sc then ok, err = sc:rerank(ctx.idx.dir, rr, ctx.question, ctx.hits, rctx)
      else ok, err = rr:rerank(ctx.question, ctx.hits, rctx) end
      if not ok then return nil, err end
    end
    while #ctx.hits > ctx.k do ctx.hits[#ctx.hits] = nil end
    return true
  end },
  { name = "build_context", run = function(ctx)
    ctx.context = context.build(ctx.hits, { budget = ctx.budget })
    return true
  end },
  { name = "generate", run = function(ctx)
    local c = ctx.context
    if ctx.generate then
      local out, err = ctx.generate {
        question = ctx.question, context = c.text, passages = c.passages,
        messages = {
          { role = "system", content = ctx.prompt and ctx.prompt.text or M.SYSTEM },
          { role = "user", content = "Passages:\n\n" .. c.text .. "\n\nQuestion: " .. ctx.question },
        },
      }
      if not out then return nil, err or "generation failed" end
      ctx.text = type(out) == "table" and out.text or out
      if type(ctx.text) ~= "string" then return nil, "generate must return text" end
      return true
    end
    -- The extractive answerer reads each chosen passage whole (the token budget is a model's
    -- prompt size; cut short, a passage loses the sentences after its first few), with its
    -- retrieval score relative to the best passage's.
    local contexts = {}
    local top = c.passages[1] and c.passages[1].hit.score or 0
    for i, p in ipairs(c.passages) do
      local h = p.hit.heading
      contexts[i] = { id = p.hit.id, title = p.hit.title, text = p.hit.text, source = p.hit.metadata.source,
        doc_id = p.hit.doc_id, heading = type(h) == "table" and h[#h] or nil,
        path = type(h) == "table" and h or nil, score = top > 0 and p.hit.score / top or nil }
    end
    local r = extractive.answer { question = ctx.question, contexts = contexts, max_sentences = ctx.max_sentences,
      idf = M.index_idf(ctx.idx) }
    ctx.text = r.text
    -- the extractive answer numbers its citations itself; map them back to passages
    ctx.extractive_citations = r.citations
    return true
  end },
  { name = "answer", run = function(ctx)
    local citations = {}
    if ctx.extractive_citations then
      for _, c in ipairs(ctx.extractive_citations) do
        local hit
        for _, p in ipairs(ctx.context.passages) do if p.hit.id == c.id then hit = p.hit end end
        citations[#citations + 1] = { n = c.n, id = c.id, doc_id = hit and hit.doc_id, source = c.source,
          title = c.title, heading = c.heading or (hit and hit.heading) }
      end
    else
      -- keep the passages the model cited, in the order of their numbers
      local cited = {}
      for n in ctx.text:gmatch("%[(%d+)%]") do cited[tonumber(n)] = true end
      for _, c in ipairs(ctx.context.citations) do
        if cited[c.n] then
          local p = ctx.context.passages[c.n]
          citations[#citations + 1] = { n = c.n, id = c.id, doc_id = c.doc_id, source = c.source,
            title = c.title, heading = p.hit.heading }
        end
      end
    end
    ctx.answer = { answer = ctx.text, citations = citations, hits = ctx.hits, version = ctx.version }
    return true
  end },
}

--- run(ctx) -> true | nil, err: the stages in order over ctx (question, idx, ...); the result
-- is ctx.answer. ctx.spans records each stage's time.
function M.run(ctx)
  for _, stage in ipairs(M.stages) do
    local ok, err = trace(ctx, stage.name, function() return stage.run(ctx) end)
    if not ok then return nil, stage.name .. ": " .. tostring(err) end
  end
  return true
end

--- answer{question =, index = DIR | idx, tenant =, labels =, filters =, k = 5, mode = "hybrid",
--   rerank = true | reranker | false, budget = 1500, generate = fn | nil, prompt = template}
-- -> {answer =, citations = {{n, id, doc_id, source, title, heading}}, hits =, version =,
--     prompt_version =} | nil, err
-- generate{question, context, passages, messages} -> text | nil, err: a model call; without
-- it the extractive answerer writes the answer from the passages.
function M.answer(req)
  if type(req) ~= "table" then error("rag_qa.answer takes a table", 2) end
  if type(req.question) ~= "string" or not req.question:match("%S") then return nil, "empty question" end
  if req.index == nil then return nil, "no index" end
  local d = M.defaults
  local ctx = {
    question = req.question, idx = req.index, tenant = req.tenant, labels = req.labels,
    filters = req.filters, k = req.k or d.k, candidates = req.candidates or d.candidates,
    mode = req.mode or d.mode, budget = req.budget or d.budget,
    max_sentences = req.max_sentences or d.max_sentences, generate = req.generate,
  }
  if req.rerank == nil then ctx.rerank = d.rerank else ctx.rerank = req.rerank end
  -- the system prompt: req.prompt (a template path, or a name next to this file), else ours
  local ppath = req.prompt and (req.prompt:find("/", 1, true) and req.prompt or prompts.next_to(M.FILE, req.prompt))
  if ppath then
    local p, perr = prompts.load(ppath)
    if not p then return nil, "prompt: " .. tostring(perr) end
    ctx.prompt = p
  else
    ctx.prompt = prompts.load(M.PROMPT)   -- nil when the file is missing: M.SYSTEM
  end
  local ok, err = M.run(ctx)
  if not ok then return nil, err end
  ctx.answer.spans = ctx.spans
  ctx.answer.prompt_version = ctx.prompt and ctx.prompt.version
  return ctx.answer
end

return M
