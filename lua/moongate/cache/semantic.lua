-- moongate.cache.semantic: answers to questions that mean the same — the last user question is
-- embedded and its nearest cached neighbour (exact dot-product scan, moongate.vectors) answers
-- when the similarity reaches the threshold AND the guards agree (numbers, dates, entities,
-- negation). Entries live in scopes: one per tenant namespace, system prompt, model alias,
-- routing context and request parameters; each entry also records the index versions and the
-- documents its answer was built on. Per worker.
local ffi = require "ffi"
local json = require "moongate.json"
local crypto = require "moongate.crypto"
local vectors = require "moongate.vectors"
local guards = require "moongate.cache.guards"
local key = require "moongate.cache.key"

local M = {}

local Semantic = {}
Semantic.__index = Semantic

local now = require("moongate").now

M.THRESHOLD = 0.85  -- see docs/caches.md: measured on tests/data/paraphrases.tsv
M.CANDIDATES = 32   -- nearest neighbours of the coarse scan, re-scored exactly
-- The scan runs over the embeddings projected onto SCAN_DIM orthonormal random directions and
-- stored as int8 (the SIMD kernel's best case: a multiple of 64 bytes a row), four times faster
-- than the full vectors at 100k entries; the candidates it finds are re-scored with the full
-- float32 vectors, so a projection error can only cost a hit, never make one.
M.SCAN_DIM = 64
local QUANT = { quant = "i8" }
local NO_FEATURES = guards.features("")   -- guards = false (to measure what they are worth)

--- semantic.new(cfg) -> cache. cfg: threshold, ttl (600), max_entries (per worker, 10000),
--- embedder (moongate.retrieval.embedder options; glove by default), guards (false: similarity
--- alone decides, only to measure what the guards are worth).
function M.new(cfg)
  cfg = cfg or {}
  return setmetatable({ threshold = cfg.threshold or M.THRESHOLD, ttl = cfg.ttl or 600,
    max_entries = cfg.max_entries or 10000, embedder_opts = cfg.embedder, guards = cfg.guards ~= false,
    scopes = {}, count = 0, order = {}, first = 1, last = 0, versions = {} }, Semantic)
end

-- The embedder, loaded on first use; nil (said once in the log) when it cannot be: the
-- semantic cache then bypasses, it never fails a request.
function Semantic:embedder()
  local e = self._embedder
  if e == nil then
    local emb = require "moongate.retrieval.embedder"
    local err
    e, err = emb.new(self.embedder_opts or { kind = "glove" })
    if not e then
      local log = package.loaded["moongate.log"]
      if log then log.error("semantic cache: no embedder", { error = tostring(err) }) end
      e = false
    end
    self._embedder = e
  end
  return e or nil
end

local text_of = require("moongate.gateway.content").text

--- semantic.question(messages) -> question, system prompt | nil: only a single question (system
--- or developer messages, then one user message) is looked up; a conversation's earlier turns
--- change what its last question means.
function M.question(messages)
  local system = {}
  local n = #messages
  for i = 1, n - 1 do
    local m = messages[i]
    if type(m) ~= "table" or (m.role ~= "system" and m.role ~= "developer") then return nil end
    local t = text_of(m.content)
    if not t then return nil end
    system[#system + 1] = t
  end
  local last = messages[n]
  if type(last) ~= "table" or last.role ~= "user" then return nil end
  local q = text_of(last.content)
  if not q or not q:find("%w") then return nil end
  return q, table.concat(system, "\0")
end

-- The current version of each index the plan's providers answer from: { [dir] = version }.
local function index_versions(gw, tiers)
  local out
  for _, t in ipairs(tiers or {}) do
    local p = gw.providers[t.provider]
    local dir = p and type(p.index) == "string" and p.index
    if dir then
      out = out or {}
      out[dir] = require("moongate.retrieval").current_version(dir) or 0
    end
  end
  return out
end

-- SCAN_DIM orthonormal rows of dim numbers, the same in every worker and run (fixed seed).
local projections = {}
local function projection(dim)
  local P = projections[dim]
  if P then return P end
  local seed = 12345
  local function uniform()
    seed = (seed * 1103515245 + 12345) % 2147483648
    return (seed + 0.5) / 2147483648
  end
  local rows = {}
  for r = 1, M.SCAN_DIM do
    local v = {}
    for i = 1, dim do v[i] = math.sqrt(-2 * math.log(uniform())) * math.cos(2 * math.pi * uniform()) end
    for q = 1, r - 1 do   -- Gram-Schmidt against the rows before
      local u, d = rows[q], 0
      for i = 1, dim do d = d + v[i] * u[i] end
      for i = 1, dim do v[i] = v[i] - d * u[i] end
    end
    local n = 0
    for i = 1, dim do n = n + v[i] * v[i] end
    n = 1 / math.sqrt(n)
    for i = 1, dim do v[i] = v[i] * n end
    rows[r] = v
  end
  P = ffi.new("float[?]", M.SCAN_DIM * dim)
  for r = 1, M.SCAN_DIM do for i = 1, dim do P[(r - 1) * dim + i - 1] = rows[r][i] end end
  projections[dim] = P
  return P
end

-- The scan's vector of a full embedding (the embedding itself when it is small already).
local function scan_vector(vec, dim)
  if dim <= M.SCAN_DIM then return vec end
  local P, out = projection(dim), ffi.new("float[?]", M.SCAN_DIM)
  for r = 0, M.SCAN_DIM - 1 do
    local s, base = 0, r * dim
    for i = 0, dim - 1 do s = s + P[base + i] * vec[i] end
    out[r] = s
  end
  return out
end
local function scan_dim(dim) return dim <= M.SCAN_DIM and dim or M.SCAN_DIM end

local function dot(a, b, dim)
  local s = 0
  for i = 0, dim - 1 do s = s + a[i] * b[i] end
  return s
end

function Semantic:_evict(e)
  if e.dead then return end
  e.dead = true
  local sc = self.scopes[e.scope]
  sc.rows[e.row] = nil
  sc.alive, sc.dead = sc.alive - 1, sc.dead + 1
  self.count = self.count - 1
  if sc.alive == 0 then
    sc.vs:close()
    self.scopes[e.scope] = nil
  elseif sc.dead > 64 and sc.dead > sc.alive then
    -- rebuild the scope's vectors without the dead rows
    local vs = assert(vectors.new(scan_dim(sc.dim), QUANT))
    local rows = {}
    for _, x in pairs(sc.rows) do
      local r = assert(vs:add(x.scan))
      x.row = r
      rows[r] = x
    end
    sc.vs:close()
    sc.vs, sc.rows, sc.dead = vs, rows, 0
  end
end

-- A new version of an index: evict the entries whose documents it changed (all of them when it
-- added a document, which may now be the better source for any answer), keep the others.
function Semantic:_reconcile(dir, old, new)
  local changed, added = {}, true
  local ok, sqlite = pcall(require, "moongate.sqlite")
  local db = ok and sqlite.open(dir .. "/index.sqlite", { readonly = true })
  if db then
    local cok, c, a = pcall(require("moongate.retrieval").changed_documents, db, old, new)
    if cok then changed, added = c, a end
    db:close()
  end
  for _, sc in pairs(self.scopes) do
    local gone = {}
    for _, e in pairs(sc.rows) do
      local v = e.versions and e.versions[dir]
      if v then
        local stale = added or v ~= old or next(e.docs) == nil
        for d in pairs(e.docs) do if changed[d] then stale = true end end
        if stale then gone[#gone + 1] = e else e.versions[dir] = new end
      end
    end
    for _, e in ipairs(gone) do self:_evict(e) end
  end
end

local function same_versions(a, b)
  if a == nil or b == nil then return a == b end
  for d, v in pairs(a) do if b[d] ~= v then return false end end
  for d in pairs(b) do if a[d] == nil then return false end end
  return true
end

--- cache:lookup(doc, st, gw, generation) -> probe | nil (the request cannot be looked up: not a
--- single question, no known word). probe.entry / probe.similarity are set on a hit.
function Semantic:lookup(doc, st, gw, generation)
  local q, system = M.question(doc.messages)
  if not q then return nil end
  local versions = index_versions(gw, st.tiers)
  for dir, v in pairs(versions or {}) do
    local seen = self.versions[dir]
    if seen and seen ~= v then self:_reconcile(dir, seen, v) end
    self.versions[dir] = v
  end
  local params = {}
  for k, v in pairs(doc) do
    if k ~= "messages" and not key.DELIVERY[k] then params[k] = v end
  end
  -- the guards' features are part of the scope too: questions that cannot match are never
  -- scanned (the guards are checked again on the candidates all the same)
  local features = self.guards and guards.features(q) or NO_FEATURES
  local scope = crypto.sha256_hex(json.encode_sorted({ ns = st.ns, generation = generation,
    system = crypto.sha256_hex(system), context = st.context, params = params, guards = features }))
  local e = self:embedder()
  if not e then return nil end
  local vec, known = e.embed(guards.normalize(q))
  if not vec or (known or 0) == 0 then return nil end
  local probe = { scope = scope, vec = vec, dim = e.dim, features = features,
                  versions = versions, ns = st.ns, question = q }
  local hit, sim = self:nearest(probe)
  if hit then probe.entry, probe.similarity = hit.entry, sim end
  return probe
end

--- cache:nearest(probe) -> entry, similarity | nil: the most similar live entry of the probe's
--- scope at or above the threshold whose guards agree.
function Semantic:nearest(probe)
  local sc = self.scopes[probe.scope]
  if not sc then return nil end
  local found = sc.vs:search(scan_vector(probe.vec, probe.dim), M.CANDIDATES)
  local t = now()
  local best, best_score
  for _, h in ipairs(found or {}) do
    local e = sc.rows[h.row]
    if e then
      if e.expires <= t then
        self:_evict(e)
      else
        local score = dot(e.vec, probe.vec, probe.dim)
        if score >= self.threshold and (not best or score > best_score)
           and same_versions(e.versions, probe.versions) and guards.agree(e.features, probe.features) then
          best, best_score = e, score
        end
      end
    end
  end
  return best, best_score
end

-- The documents an answer cites (the extractive provider's citations, a RAG pipeline's).
local function documents_of(out)
  local docs = {}
  local c = type(out) == "table" and out.citations
  for _, x in ipairs(type(c) == "table" and c or {}) do
    if type(x) == "table" and type(x.doc_id) == "string" then docs[x.doc_id] = true end
  end
  return docs
end

--- cache:store(probe, value, completion, ttl?): keep an answer for the probe's question
function Semantic:store(probe, value, out, ttl)
  local sc = self.scopes[probe.scope]
  if not sc then
    sc = { vs = assert(vectors.new(scan_dim(probe.dim), QUANT)), dim = probe.dim, rows = {}, alive = 0, dead = 0 }
    self.scopes[probe.scope] = sc
  end
  local vec = ffi.new("float[?]", probe.dim)
  ffi.copy(vec, probe.vec, probe.dim * 4)
  local scan = scan_vector(vec, probe.dim)
  local row = assert(sc.vs:add(scan))
  local e = { entry = value, features = probe.features, versions = probe.versions, docs = documents_of(out),
              expires = now() + (ttl or self.ttl), scope = probe.scope, row = row, vec = vec, scan = scan,
              ns = probe.ns, question = probe.question }
  sc.rows[row] = e
  sc.alive = sc.alive + 1
  self.count = self.count + 1
  local order = self.order
  self.last = self.last + 1
  order[self.last] = e
  -- over the bound: the oldest entries go first
  while self.count > self.max_entries do
    local old = order[self.first]
    order[self.first] = nil
    self.first = self.first + 1
    if old then self:_evict(old) end
  end
  if self.first > 4096 and self.first > self.last - self.first then
    local keep = {}
    for i = self.first, self.last do if order[i] and not order[i].dead then keep[#keep + 1] = order[i] end end
    self.order, self.first, self.last = keep, 1, #keep
  end
end

--- cache:flush(ns) -> entries removed (a tenant's namespace)
function Semantic:flush(ns)
  local gone = {}
  for _, sc in pairs(self.scopes) do
    for _, e in pairs(sc.rows) do if e.ns == ns then gone[#gone + 1] = e end end
  end
  for _, e in ipairs(gone) do self:_evict(e) end
  return #gone
end

--- cache:stats() -> { entries, scopes }
function Semantic:stats()
  local n = 0
  for _ in pairs(self.scopes) do n = n + 1 end
  return { entries = self.count, scopes = n }
end

return M
