-- moongate.cache.snippet: re-ranker results kept by the query's hash and the versions of the
-- documents ranked, so a slow re-ranker (a cross-encoder behind HTTP) runs once per question
-- and document set. An index's new version evicts exactly the entries built on documents it
-- changed (moongate.retrieval calls evict_documents on refresh). Per worker.
local crypto = require "moongate.crypto"
local lru = require "moongate.cache.lru"

local M = {}

local Snippet = {}
Snippet.__index = Snippet

--- snippet.new{ttl = 600, max_entries = 10000} -> cache
function M.new(cfg)
  cfg = cfg or {}
  return setmetatable({ ttl = cfg.ttl or 600, lru = lru.new { max_entries = cfg.max_entries or 10000,
    max_bytes = cfg.max_bytes or 16 * 1024 * 1024 }, by_doc = {}, hits = 0, misses = 0 }, Snippet)
end

local active

--- snippet.configure(cfg | false) -> the worker's cache (nil: off); snippet.active() -> it
function M.configure(cfg)
  active = cfg and M.new(cfg ~= true and cfg or nil) or nil
  return active
end
function M.active() return active end

-- What makes two re-rankers the same: their settings (never their key).
local function identity(rr)
  local parts = {}
  for k, v in pairs(rr) do
    local t = type(v)
    if k ~= "api_key" and (t == "string" or t == "number" or t == "boolean") then
      parts[#parts + 1] = k .. "=" .. tostring(v)
    end
  end
  table.sort(parts)
  return table.concat(parts, ",")
end

local function doc_of(h) return h.doc_id or (h.metadata and h.metadata.doc_id) or "" end

--- snippet.key(rr, query, hits) -> hex: the re-ranker, the query, and each hit's chunk id,
--- document and document version
function M.key(rr, query, hits)
  local parts = { identity(rr), query }
  for _, h in ipairs(hits) do
    local m = h.metadata or {}
    parts[#parts + 1] = tostring(h.id) .. "@" .. doc_of(h) .. "@" .. tostring(m.version or "")
  end
  return crypto.sha256_hex(table.concat(parts, "\0"))
end

--- cache:rerank(dir, rr, query, hits, ctx) -> true, cached | nil, err: rr:rerank(...) unless the
--- same query over the same document versions was re-ranked before; hits are reordered and
--- scored as rr would have done.
function Snippet:rerank(dir, rr, query, hits, ctx)
  local k = M.key(rr, query, hits)
  local v = self.lru:get(k)
  if v then
    local by_id = {}
    for _, h in ipairs(hits) do by_id[h.id] = h end
    for i, id in ipairs(v.ids) do
      local h = by_id[id]
      h.scores.rerank, h.score = v.rerank[i], v.score[i]
      hits[i] = h
    end
    self.hits = self.hits + 1
    return true, true
  end
  self.misses = self.misses + 1
  local ok, err = rr:rerank(query, hits, ctx)
  if not ok then return nil, err end
  local e = { ids = {}, rerank = {}, score = {}, bytes = 64 + 24 * #hits, dir = dir, docs = {} }
  local docs = self.by_doc[dir]
  if not docs then docs = {}; self.by_doc[dir] = docs end
  for i, h in ipairs(hits) do
    e.ids[i], e.rerank[i], e.score[i] = h.id, h.scores.rerank, h.score
    local d = doc_of(h)
    e.docs[d] = true
    local keys = docs[d]
    if not keys then keys = {}; docs[d] = keys end
    keys[k] = true
  end
  self.lru:set(k, e, self.ttl)
  return true, false
end

--- cache:evict_documents(dir, changed) -> entries evicted: those built on a changed document
function Snippet:evict_documents(dir, changed)
  local docs = self.by_doc[dir]
  if not docs then return 0 end
  local n = 0
  for d in pairs(changed) do
    local keys = docs[d]
    if keys then
      for k in pairs(keys) do
        if self.lru.map[k] then n = n + 1 end
        self.lru:delete(k)
      end
      docs[d] = nil
    end
  end
  return n
end

--- snippet.evict_documents(dir, changed): on the worker's cache, when there is one
function M.evict_documents(dir, changed)
  if active then return active:evict_documents(dir, changed) end
  return 0
end

--- cache:count() -> live entries
function Snippet:count() return self.lru.count end

M.Snippet = Snippet
return M
