-- Re-rankers for the top hits of a search: "local" (query-term proximity and coverage,
-- offline) and "http" (a cross-encoder behind a /v1/rerank-style API: Cohere, Jina, TEI).
local M = {}

local analyzer = require "moongate.analyzer"

local function sort_hits(hits)
  for i, h in ipairs(hits) do h._pos = i end
  table.sort(hits, function(a, b)
    if a.score ~= b.score then return a.score > b.score end
    return a._pos < b._pos
  end)
  for _, h in ipairs(hits) do h._pos = nil end
end

---------------------------------------------------------------------------------------------
-- local: the first-stage score (min-max normalized over the list) plus how many of the
-- query's informative terms the chunk holds (idf-weighted) and how close together they
-- stand (pairs within a window, as in BM25TP). Needs no model, helps most on long chunks.

local Local = {}
Local.__index = Local

function Local:rerank(query, hits, ctx)
  if #hits == 0 then return true end
  local opts = { stem = self.stem, stopwords = true }
  local qterms, qset = {}, {}
  for _, t in ipairs(analyzer.terms(query, opts)) do
    if not qset[t] then qset[t] = true; qterms[#qterms + 1] = t end
  end
  if #qterms == 0 then return true end
  local idf = ctx and ctx.idf or function() return 1 end
  local w, wsum = {}, 0
  for _, t in ipairs(qterms) do w[t] = idf(t); wsum = wsum + w[t] end
  if wsum <= 0 then return true end
  local lo, hi = math.huge, -math.huge
  for _, h in ipairs(hits) do
    if h.score < lo then lo = h.score end
    if h.score > hi then hi = h.score end
  end
  local window = self.window
  for _, h in ipairs(hits) do
    local terms = analyzer.terms(h.text, opts)
    local seen, last = {}, {}
    local prox = 0
    for pos, t in ipairs(terms) do
      if qset[t] then
        seen[t] = true
        for other, p in pairs(last) do
          if other ~= t and pos - p <= window then
            local d = pos - p
            prox = prox + w[t] * w[other] / (d * d)
          end
        end
        last[t] = pos
      end
    end
    local cover = 0
    for t in pairs(seen) do cover = cover + w[t] end
    local first = hi > lo and (h.score - lo) / (hi - lo) or 1
    local s = self.first * first + self.coverage * cover / wsum + self.proximity * prox / (wsum * wsum)
    h.scores.rerank = s
    h.score = s
  end
  sort_hits(hits)
  return true
end

---------------------------------------------------------------------------------------------
-- http: POST {model, query, documents, top_n} to a rerank endpoint. Accepts answers shaped
-- {results = [{index, relevance_score}]} (Cohere, Jina) or [{index, score}] (TEI /rerank).

local Http = {}
Http.__index = Http

function Http:rerank(query, hits)
  if #hits == 0 then return true end
  local http = require "moongate.http"
  local json = require "moongate.json"
  local docs = {}
  for i, h in ipairs(hits) do docs[i] = h.text end
  local body
  if self.style == "tei" then
    body = { query = query, texts = docs, raw_scores = false }
  else
    body = { model = self.model, query = query, documents = docs, top_n = #docs }
  end
  local headers = { ["content-type"] = "application/json" }
  if self.api_key then headers.authorization = "Bearer " .. self.api_key end
  local res, err = http.request { method = "POST", url = self.url, headers = headers,
    body = json.encode(body), timeout = self.timeout }
  if not res then return nil, "rerank: " .. tostring(err) end
  if res.status ~= 200 then return nil, "rerank: http " .. tostring(res.status) end
  local out = json.decode(res.body)
  local results = type(out) == "table" and (out.results or out) or nil
  if type(results) ~= "table" then return nil, "rerank: bad response" end
  local seen = 0
  for _, r in ipairs(results) do
    local i = type(r) == "table" and tonumber(r.index)
    local s = type(r) == "table" and tonumber(r.relevance_score or r.score)
    if not i or not s or not hits[i + 1] then return nil, "rerank: bad response" end
    hits[i + 1].scores.rerank = s
    seen = seen + 1
  end
  -- hits the service did not score keep their order, after the scored ones
  for _, h in ipairs(hits) do h.score = h.scores.rerank or (-math.huge) end
  sort_hits(hits)
  for _, h in ipairs(hits) do
    if h.score == -math.huge then h.score = h.scores.fused or 0 end
  end
  return true
end

--- new{kind = "local", stem = "english", window = 8, first = 1, coverage = 0.5, proximity = 0.5}
--- new{kind = "http", url =, model =, api_key = | api_key_env =, style = "cohere"|"tei", timeout = 10}
-- A re-ranker has :rerank(query, hits, ctx) -> true | nil, err, reordering hits in place and
-- setting hit.scores.rerank.
function M.new(opts)
  opts = opts or {}
  local kind = opts.kind or "local"
  if kind == "local" then
    return setmetatable({
      stem = opts.stem == nil and "english" or opts.stem, window = opts.window or 8,
      first = opts.first or 1, coverage = opts.coverage or 0.5, proximity = opts.proximity or 0.5,
    }, Local)
  elseif kind == "http" then
    if type(opts.url) ~= "string" then return nil, "rerank url required" end
    return setmetatable({
      url = opts.url, model = opts.model, style = opts.style or "cohere",
      api_key = opts.api_key or (opts.api_key_env and os.getenv(opts.api_key_env)),
      timeout = opts.timeout or 10,
    }, Http)
  end
  return nil, "unknown reranker: " .. tostring(kind)
end

return M
