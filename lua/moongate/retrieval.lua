-- moongate.retrieval: hybrid search over an index directory (BM25 + dense vectors, fused,
-- re-ranked, near-duplicates collapsed) with tenant isolation and metadata filters.
--
--   local retrieval = require "moongate.retrieval"
--   local idx = assert(retrieval.open("docs-index"))
--   local hits = idx:search{query = "how do I rotate keys", k = 5, tenant = "acme"}
--
-- Writing: retrieval.index(DIR, PATHS, opts) for files, retrieval.writer(DIR, opts) for
-- documents given one by one (see moongate.retrieval.writer).
local bit = require "bit"
local ffi = require "ffi"
local store = require "moongate.retrieval.store"
local fusion = require "moongate.retrieval.fusion"

local M = {}
local Q = store.query

--- Settings of `mode = "hybrid"` when a query names none: those that measured best on the
-- Cranfield development split (tests/bench/retrieval_quality).
-- Cranfield dev, nDCG@10: bm25 0.342; bm25 with query expansion from the 10 best hits
-- (20 terms) 0.389; plus dense (weight 0.1, its query moved toward the 5 best BM25 hits)
-- 0.394. Without expansion: weighted bm25 1 + dense 0.2 with feedback 0.349, RRF 0.344.
M.hybrid_defaults = { method = "weighted", k = 60, weights = { bm25 = 1, dense = 0.1 },
  prf = { docs = 5, weight = 1 }, expand = { docs = 10, terms = 20 } }
M.candidates = 100          -- depth of each list before fusion
M.max_k = 1000

local MODES = { bm25 = true, dense = true, hybrid = true }

local function clock()
  local ok, mg = pcall(require, "moongate")
  if ok and type(mg) == "table" and mg.now then return mg.now() end
  return os.clock()
end

---------------------------------------------------------------------------------------------
-- A snapshot is one loaded version: everything a query touches, swapped as a whole.

local function load_snapshot(dir, db, version)
  local json = require "moongate.json"
  local bm25 = require "moongate.bm25"
  local vrow = Q(db, "SELECT settings, documents, chunks, duplicates, created_at FROM versions WHERE version = ?", version)[1]
  if not vrow then return nil, "index version " .. version .. " is missing" end
  local settings = json.decode(vrow.settings) or {}
  local vdir = dir .. "/v" .. version
  local ix, err = bm25.load(vdir .. "/bm25.bin")
  if not ix then return nil, "cannot load index version " .. version .. ": " .. tostring(err) end
  local vs
  if settings.dim then
    local vectors = require "moongate.vectors"
    vs, err = vectors.load(vdir .. "/vectors.bin")
    if not vs then return nil, "cannot load vectors of version " .. version .. ": " .. tostring(err) end
  end
  local n = ix:count()
  local snap = {
    version = version, settings = settings, bm25 = ix, vectors = vs, n = n,
    chunk = {}, tenant = {}, labels = {}, doc_id = {}, also = {}, source = {},
    simhash = ffi.new("uint64_t[?]", n + 1),   -- 1-based like the tables, unboxed
    meta_json = {}, meta = {}, allow_cache = {}, allow_order = {},
    documents = vrow.documents, duplicates = vrow.duplicates, created_at = vrow.created_at,
  }
  local hex_hash = require("moongate.retrieval.writer").hex_hash
  -- streamed row by row: an index of millions of chunks never holds all rows at once
  local st = db:prepare([[SELECT vc.chunk_id, vc.also, c.tenant, c.labels, c.doc_id, c.simhash,
      c.source, c.metadata FROM version_chunks vc JOIN chunks c ON c.id = vc.chunk_id
      WHERE vc.version = ? ORDER BY vc.docno]])
  st:bind(version)
  local i = 0
  local ok, err = pcall(function()
    for r in st:rows() do
      i = i + 1
      snap.chunk[i] = r.chunk_id
      snap.tenant[i] = r.tenant
      snap.labels[i] = r.labels
      snap.doc_id[i] = r.doc_id
      snap.simhash[i] = hex_hash(r.simhash)
      snap.source[i] = r.source
      snap.meta_json[i] = r.metadata
      if r.also ~= "" then
        local a = {}
        for d in r.also:gmatch("[^\n]+") do a[#a + 1] = d end
        snap.also[i] = a
      end
    end
  end)
  st:finalize()
  if not ok then return nil, "index database: " .. tostring(err) end
  if i ~= n then
    return nil, "index version " .. version .. " is inconsistent (" .. i .. " chunks, " .. n .. " in bm25)"
  end
  return snap
end

-- The labels a query holds, as a set; a chunk with labels is readable when the query holds
-- at least one of them, a chunk without labels by every query of its tenant.
local function label_set(labels)
  local set = {}
  if type(labels) == "string" then labels = store.split_labels(labels) end
  for _, l in ipairs(labels or {}) do set[l] = true end
  return set
end

local function readable(chunk_labels, held)
  if chunk_labels == "" then return true end
  for l in chunk_labels:gmatch("[^,]+") do
    if held[l] then return true end
  end
  return false
end

local function meta_of(snap, i)
  local m = snap.meta[i]
  if not m then
    m = require("moongate.json").decode(snap.meta_json[i]) or {}
    snap.meta[i] = m
  end
  return m
end

local function matches(snap, i, filters)
  for k, want in pairs(filters) do
    local have
    if k == "source" then have = snap.source[i]
    elseif k == "doc_id" or k == "id" then have = snap.doc_id[i]
    else have = meta_of(snap, i)[k] end
    if type(want) == "table" then
      local any = false
      for _, w in ipairs(want) do if have == w then any = true; break end end
      if not any then return false end
    elseif have ~= want then
      return false
    end
  end
  return true
end

local function canonical(t)
  if type(t) ~= "table" then return tostring(t) end
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do
    local v = t[k]
    if v == nil then v = t[tonumber(k)] end
    parts[#parts + 1] = k .. "=" .. canonical(v)
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

-- The allow bitset of (tenant, labels, filters): built once per version and kept (LRU of 64).
local function allow_for(snap, tenant, labels, filters)
  local key = tenant .. "\0" .. canonical(labels or {}) .. "\0" .. canonical(filters or {})
  local hit = snap.allow_cache[key]
  if hit then return hit end
  local bitset = require "moongate.bitset"
  local allow = bitset.new(math.max(snap.n, 1))
  local held = label_set(labels)
  local has_filters = filters and next(filters) ~= nil
  local t, l = snap.tenant, snap.labels
  for i = 1, snap.n do
    if t[i] == tenant and readable(l[i], held) and (not has_filters or matches(snap, i, filters)) then
      allow:set(i - 1)
    end
  end
  local entry = { allow = allow, count = allow:count() }
  snap.allow_cache[key] = entry
  local order = snap.allow_order
  order[#order + 1] = key
  if #order > 64 then
    snap.allow_cache[table.remove(order, 1)] = nil
  end
  return entry
end

---------------------------------------------------------------------------------------------

local Index = {}
Index.__index = Index

-- Every open index, so that a reader of DIR/CURRENT can bring them to the version it read.
local opened = setmetatable({}, { __mode = "k" })

-- refresh(), where a version that cannot be loaded (yet) leaves the current one serving and
-- idx.refresh_error says why
local function refresh_keeping(idx)
  local ok, err = idx:refresh()
  idx.refresh_error = not ok and err or nil
end

--- retrieval.current_version(DIR) -> the version DIR/CURRENT names (nil: none yet). Open
--- indexes of DIR on another version load it now rather than at their next periodic check, so
--- that what a caller keys on this version (the semantic cache) is what searches answer from.
function M.current_version(dir)
  local v = store.current_version(dir)
  if v then
    for idx in pairs(opened) do
      if idx.dir == dir and idx.db and idx.version ~= v then refresh_keeping(idx) end
    end
  end
  return v
end

--- open(DIR, opts) -> idx | nil, err
-- opts.refresh_interval: seconds between checks of DIR/CURRENT by search() (default 1;
-- false: only idx:refresh() loads a new version). opts.embedder: an embedder object for
-- queries (default: the one the index was built with).
function M.open(dir, opts)
  if type(dir) ~= "string" then error("index directory must be a string", 2) end
  opts = opts or {}
  local db, err = store.open_db(dir)
  if not db then return nil, err end
  local idx = setmetatable({
    dir = dir, db = db, opts = opts, version = nil, snap = nil, checked = 0,
    refresh_interval = opts.refresh_interval == nil and 1 or opts.refresh_interval,
  }, Index)
  local ok
  ok, err = idx:refresh()
  if not ok then db:close(); return nil, err end
  if not idx.snap then db:close(); return nil, "index at " .. dir .. " has no committed version" end
  opened[idx] = true
  return idx
end

--- Load the version named by DIR/CURRENT if it is not the one in use (build, then swap:
-- queries running on the old snapshot finish on it). Returns true, changed | nil, err.
function Index:refresh()
  if not self.db then error("index is closed", 2) end
  self.checked = clock()
  local v = store.current_version(self.dir)
  if not v then return true, false end
  if v == self.version then return true, false end
  local snap, err = load_snapshot(self.dir, self.db, v)
  if not snap then return nil, err end
  local old = self.version
  local snippets = package.loaded["moongate.cache.snippet"]
  if old and snippets then
    -- cached re-ranker results built on documents this version changed are stale
    local changed = M.changed_documents(self.db, old, v)
    snippets.evict_documents(self.dir, changed)
  end
  self.snap = snap
  self.version = v
  self.embedder = nil
  return true, true
end

--- retrieval.changed_documents(db, from, to) -> {[doc_id] = true}, added: the documents whose
--- chunks changed between versions from and to (re-indexed or removed), and whether one of them
--- is new (it had no chunk in version from). Caches built on version from use it to evict
--- exactly what a new version made stale.
function M.changed_documents(db, from, to)
  local changed, added = {}, false
  local rows = Q(db, [[SELECT DISTINCT c.doc_id, c.tenant, EXISTS (SELECT 1 FROM chunks d
      WHERE d.doc_id = c.doc_id AND d.tenant = c.tenant AND d.added_version <= ?1
        AND (d.removed_version IS NULL OR d.removed_version > ?1)) AS existed
    FROM chunks c WHERE (c.added_version > ?1 AND c.added_version <= ?2)
      OR (c.removed_version > ?1 AND c.removed_version <= ?2)]], from, to)
  for _, r in ipairs(rows) do
    changed[r.doc_id] = true
    if r.existed == 0 then added = true end
  end
  return changed, added
end

--- Close the index: its database and the current version's BM25 and vector stores (older
-- versions a refresh replaced are left to the GC: a query may still be running on one).
-- Idempotent.
function Index:close()
  if self.db then
    local snap = self.snap
    if snap then
      snap.bm25:close()
      if snap.vectors then snap.vectors:close() end
    end
    self.db:close()
    self.db = nil
    self.snap = nil
  end
end

function Index:stats()
  local s = self.snap
  return { version = s.version, chunks = s.n, documents = s.documents, duplicates = s.duplicates,
    settings = s.settings }
end

function Index:query_embedder()
  if self.opts.embedder then return self.opts.embedder end
  if not self.embedder then
    local kind = self.snap.settings.embedder
    if not kind or kind == "none" then return nil, "the index has no vectors (built with --embedder none)" end
    local e, err = require("moongate.retrieval.writer").embedder_for(self.snap.settings)
    if not e then return nil, err end
    self.embedder = e
  end
  return self.embedder
end

-- A hybrid setting: the query's, else its fusion table's, else the default.
local function hybrid_setting(q, name)
  if q.fusion and q.fusion[name] ~= nil then return q.fusion[name] end
  return M.hybrid_defaults[name]
end

local function check_args(q)
  if type(q) ~= "table" then error("search takes a table: {query =, k =, ...}", 3) end
  if type(q.query) ~= "string" then return nil, "query must be a string" end
  if not q.query:match("%S") then return nil, "empty query" end
  local k = q.k or 10
  if type(k) ~= "number" or k < 1 or k % 1 ~= 0 or k > M.max_k then
    return nil, "k must be an integer from 1 to " .. M.max_k
  end
  local mode = q.mode or "hybrid"
  if not MODES[mode] then return nil, "mode must be bm25, dense or hybrid" end
  if q.tenant ~= nil and type(q.tenant) ~= "string" then return nil, "tenant must be a string" end
  if q.filters ~= nil and type(q.filters) ~= "table" then return nil, "filters must be a table" end
  return k, mode
end

--- idx:search{query =, k = 10, mode = "hybrid"|"bm25"|"dense", tenant =, labels = {..},
--   filters = {field = value | {values}}, fusion = {method = "rrf"|"weighted", k =, weights =},
--   rerank = reranker | true (local) | nil, dedupe = true}
-- -> hits, info | nil, err. A hit: {id = chunk id, doc_id, score, text, heading, title,
-- metadata = {source, doc_id, version, timestamp, tenant, labels, ...}, scores = {bm25, dense,
-- fused, rerank}, ranks = {...}, also = {doc ids of dropped copies}, duplicates = {chunk ids}}.
function Index:search(q)
  if not self.db then error("index is closed", 2) end
  local k, mode = check_args(q)
  if not k then return nil, mode end
  local t0 = clock()
  if self.refresh_interval and t0 - self.checked >= self.refresh_interval then refresh_keeping(self) end
  local snap = self.snap
  local tenant = q.tenant or ""
  local filters = q.filters
  local labels = q.labels
  if filters and (filters.tenant or filters.labels) then
    -- tenant and labels are access control: accepted here too, never as plain metadata
    local f = {}
    for key, v in pairs(filters) do if key ~= "tenant" and key ~= "labels" then f[key] = v end end
    tenant = filters.tenant or tenant
    labels = filters.labels or labels
    filters = f
  end
  local allowed = allow_for(snap, tenant, labels, filters)
  local info = { version = snap.version, mode = mode, candidates = allowed.count }
  if allowed.count == 0 or snap.n == 0 then
    info.took = clock() - t0
    return {}, info
  end

  -- document-level results need deeper lists: several chunks may share a document
  local depth = math.max(q._documents and k * 4 or k, q.candidates or M.candidates)
  local rerank = q.rerank
  local lists = {}
  if mode == "bm25" or mode == "hybrid" then
    local raw = snap.bm25:search(q.query, depth, allowed.allow)
    local expand = q.expand
    if expand == nil and mode == "hybrid" then expand = hybrid_setting(q, "expand") end
    if expand and #raw > 0 then
      local more = self:expansion_terms(snap, raw, expand)
      if #more > 0 then
        info.expansion = more
        raw = snap.bm25:search(q.query .. " " .. table.concat(more, " "), depth, allowed.allow)
      end
    end
    local l = {}
    for i, h in ipairs(raw) do
      l[i] = { key = h.doc, score = h.score }
    end
    lists.bm25 = l
  end
  if mode == "dense" or mode == "hybrid" then
    if not snap.vectors then
      if mode == "dense" then return nil, "the index has no vectors (built with --embedder none)" end
    else
      local emb, err = self:query_embedder()
      if not emb then return nil, err end
      local qv, known = emb.embed(q.query)
      if not qv then return nil, known end
      local prf = q.prf
      if prf == nil and mode == "hybrid" then prf = hybrid_setting(q, "prf") end
      if prf and lists.bm25 and #lists.bm25 > 0 then
        -- pseudo-relevance feedback: move the query vector toward the vectors of the best
        -- BM25 hits, so that the dense list finds documents like those (Rocchio)
        local m = math.min(prf.docs or 5, #lists.bm25)
        local dim, beta = emb.dim, (prf.weight or 1) / m
        for r = 1, m do
          local v = snap.vectors:get(lists.bm25[r].key)
          for i = 0, dim - 1 do qv[i] = qv[i] + beta * v[i + 1] end
        end
        known = known + m
        require("moongate.retrieval.embedder").normalize(qv, dim)
      end
      local l = {}
      if known > 0 then
        for i, h in ipairs(snap.vectors:search(qv, depth, allowed.allow)) do
          l[i] = { key = h.row, score = h.score }
        end
      end
      lists.dense = l
    end
  end

  local fused
  if mode == "hybrid" and lists.dense then
    local f = q.fusion or M.hybrid_defaults
    local method = f.method or M.hybrid_defaults.method
    if method == "rrf" then
      fused = fusion.rrf(lists, { k = f.k or 60, weights = f.weights })
    elseif method == "weighted" then
      fused = fusion.weighted(lists, { weights = f.weights or M.hybrid_defaults.weights })
    else
      return nil, "fusion method must be rrf or weighted"
    end
  else
    local name = lists.bm25 and "bm25" or "dense"
    fused = {}
    for i, h in ipairs(lists[name]) do
      fused[i] = { key = h.key, score = h.score, ranks = { [name] = i }, scores = { [name] = h.score } }
    end
  end

  -- collapse near-duplicates (copies that survived indexing in other tenants' or labels'
  -- groups are not visible here; these are copies from separate runs or close variants).
  -- Candidates are compared only with kept hits sharing a SimHash band (pigeonhole).
  local dist = snap.settings.dedupe_distance or 3
  local want = rerank and math.max(k, q.rerank_depth or 50) or k
  local by_doc = q._documents and not rerank
  local kept, seen_doc, ndocs = {}, {}, 0
  local simhash = (q.dedupe ~= false and dist >= 0) and require("moongate.simhash")
  local buckets, nb, width, mask = {}, dist + 1, 0, 0ULL
  if simhash then
    width = math.floor(64 / nb)
    mask = bit.lshift(1ULL, width) - 1
  end
  for _, h in ipairs(fused) do
    local i = h.key + 1
    local dup_of, keys
    if simhash then
      local sh = snap.simhash[i]
      keys = {}
      for b = 0, nb - 1 do
        local key = b * 4294967296 + tonumber(bit.band(bit.rshift(sh, b * width), mask))
        keys[b + 1] = key
        local list = buckets[key]
        if list and not dup_of then
          for _, o in ipairs(list) do
            if simhash.distance(snap.simhash[o.key + 1], sh) <= dist then dup_of = o; break end
          end
        end
      end
    end
    if dup_of then
      dup_of.duplicates = dup_of.duplicates or {}
      dup_of.duplicates[#dup_of.duplicates + 1] = h.key
    else
      if keys then
        for _, key in ipairs(keys) do
          local list = buckets[key]
          if not list then list = {}; buckets[key] = list end
          list[#list + 1] = h
        end
      end
      if by_doc then
        -- document-level results: the best chunk of each document is enough
        local d = snap.doc_id[i]
        if not seen_doc[d] then
          seen_doc[d] = true
          kept[#kept + 1] = h
          ndocs = ndocs + 1 + (snap.also[i] and #snap.also[i] or 0)
          if ndocs >= k then break end
        end
      else
        kept[#kept + 1] = h
        if #kept >= want then break end
      end
    end
  end

  local hits = self:materialize(snap, kept)
  if rerank then
    local rr = rerank
    if rr == true then
      rr = require("moongate.retrieval.rerank").new { kind = "local", stem = snap.settings.stem or false }
    end
    local ix, N = snap.bm25, snap.n
    local ctx = { idf = function(term)
      local df = ix:df(term)
      return math.log(1 + (N - df + 0.5) / (df + 0.5))
    end }
    local snippets = package.loaded["moongate.cache.snippet"]
    local sc = snippets and snippets.active()
    local ok, err
    if sc then ok, err = sc:rerank(self.dir, rr, q.query, hits, ctx) else ok, err = rr:rerank(q.query, hits, ctx) end
    if not ok then return nil, err end
  end
  while #hits > k do hits[#hits] = nil end
  info.took = clock() - t0
  return hits, info
end

-- Query expansion from pseudo-relevance feedback (RM3-like): the terms that weigh most in
-- the best BM25 hits (term frequency in the chunk, times the hit's relative score, times
-- idf), added to the query once each. expand = {docs = 10, terms = 20}.
function Index:expansion_terms(snap, hits, expand)
  local analyzer = require "moongate.analyzer"
  local m = math.min(expand.docs or 10, #hits)
  local ids = {}
  for r = 1, m do ids[r] = snap.chunk[hits[r].doc + 1] end
  local rows = Q(self.db, "SELECT id, text, heading FROM chunks WHERE id IN (" .. table.concat(ids, ",") .. ")")
  local text_of = {}
  for _, r in ipairs(rows) do text_of[r.id] = r.heading .. "\n" .. r.text end
  local opts = { stem = snap.settings.stem or false, stopwords = true }
  local top = hits[1].score
  local w = {}
  for r = 1, m do
    local text = text_of[ids[r]]
    if text then
      local terms = analyzer.terms(text, opts)
      local n = #terms
      if n > 0 then
        local tf = {}
        for _, t in ipairs(terms) do tf[t] = (tf[t] or 0) + 1 end
        local doc_w = math.exp(hits[r].score - top)
        for t, c in pairs(tf) do w[t] = (w[t] or 0) + c / n * doc_w end
      end
    end
  end
  local ix, N = snap.bm25, snap.n
  local cand = {}
  for t, v in pairs(w) do
    if not t:match("^%d+$") then
      local df = ix:df(t)
      cand[#cand + 1] = { t = t, w = v * math.log(1 + (N - df + 0.5) / (df + 0.5)) }
    end
  end
  table.sort(cand, function(a, b)
    if a.w ~= b.w then return a.w > b.w end
    return a.t < b.t
  end)
  local out = {}
  for i = 1, math.min(expand.terms or 20, #cand) do out[i] = cand[i].t end
  return out
end

-- Hits with their text and metadata, read from sqlite by chunk id.
function Index:materialize(snap, kept)
  if #kept == 0 then return {} end
  local ids, pos = {}, {}
  for j, h in ipairs(kept) do
    local id = snap.chunk[h.key + 1]
    ids[j] = id
    pos[id] = j
  end
  local rows = Q(self.db, "SELECT id, doc_id, ordinal, heading, text, tokens, title, source, metadata, tenant, labels, added_version, updated_at FROM chunks WHERE id IN (" ..
    table.concat(ids, ",") .. ")")
  local by = {}
  for _, r in ipairs(rows) do by[r.id] = r end
  local json = require "moongate.json"
  local hits = {}
  for _, h in ipairs(kept) do
    local i = h.key + 1
    local r = by[snap.chunk[i]]
    if r then   -- a chunk of a version two or more behind may be gone: refresh() then
      local meta = {}
      for key, v in pairs(json.decode(r.metadata) or {}) do meta[key] = v end
      meta.source = r.source
      meta.doc_id = r.doc_id
      meta.version = r.added_version
      meta.timestamp = r.updated_at
      meta.tenant = r.tenant ~= "" and r.tenant or nil
      meta.labels = store.split_labels(r.labels)
      local heading = {}
      for part in (r.heading .. " > "):gmatch("(.-) > ") do if part ~= "" then heading[#heading + 1] = part end end
      local scores = {}
      for name, v in pairs(h.scores) do scores[name] = v end
      scores.fused = h.score
      local dups
      if h.duplicates then
        dups = {}
        for d, key in ipairs(h.duplicates) do dups[d] = snap.chunk[key + 1] end
      end
      hits[#hits + 1] = {
        id = r.id, doc_id = r.doc_id, score = h.score, text = r.text, heading = heading,
        title = r.title, ordinal = r.ordinal, tokens = r.tokens, metadata = meta,
        scores = scores, ranks = h.ranks, also = snap.also[i] or {}, duplicates = dups or {},
      }
    end
  end
  return hits
end

--- Document-level results: chunks of one document collapse to its best; a chunk that
-- stands for dropped copies lists their documents right after its own.
-- Returns array of {doc_id, score, hit} (at most k) | nil, err.
function Index:search_documents(q)
  local k = q.k or 10
  local chunk_q = {}
  for key, v in pairs(q) do chunk_q[key] = v end
  if q.rerank then
    chunk_q.k = math.min(M.max_k, k * 4)   -- re-ranking needs the chunks' text first
  else
    chunk_q._documents = true
  end
  local hits, info = self:search(chunk_q)
  if not hits then return nil, info end
  local out, seen = {}, {}
  local function push(doc, score, hit)
    if not seen[doc] and #out < k then
      seen[doc] = true
      out[#out + 1] = { doc_id = doc, score = score, hit = hit }
    end
  end
  for _, h in ipairs(hits) do
    push(h.doc_id, h.score, h)
    for _, d in ipairs(h.also) do push(d, h.score, h) end
  end
  return out, info
end

---------------------------------------------------------------------------------------------
-- Writing

--- writer(DIR, opts) -> writer | nil, err (see moongate.retrieval.writer)
function M.writer(dir, opts)
  return require("moongate.retrieval.writer").open(dir, opts)
end

--- index(DIR, PATHS, opts) -> summary | nil, err: ingest files and folders (re-indexing
-- changed ones, dropping deleted ones) and publish a new version.
-- opts: writer settings, plus tenant, labels (for files that do not say), progress(stage, done, total).
function M.index(dir, paths, opts)
  opts = opts or {}
  local ingest = require "moongate.retrieval.ingest"
  local files, skipped = ingest.files(paths)
  if not files then return nil, skipped end
  local w, err = M.writer(dir, opts)
  if not w then return nil, err end
  local ok, res, cerr = pcall(function()
    for _, p in ipairs(paths) do
      p = ingest.clean_path(p)
      w:scanned(p, store.is_dir(p))
    end
    local total, done = 0, 0
    local sizes = {}
    if opts.progress then
      for i, path in ipairs(files) do sizes[i] = ingest.size(path); total = total + sizes[i] end
    end
    for fi, path in ipairs(files) do
      local n, ferr = ingest.read_file(path, function(doc)
        if opts.redact then
          -- before anything is stored: what is not in the index cannot leak from it
          local pii = require "moongate.pii"
          doc.text = assert(pii.redact(doc.text, opts.redact, {}))
          if type(doc.title) == "string" then doc.title = assert(pii.redact(doc.title, opts.redact, {})) end
        end
        local r, aerr = w:add(doc)
        if not r then error({ msg = path .. ": " .. doc.id .. ": " .. aerr }) end
        if opts.progress and w.stats.documents % 50 == 0 then
          opts.progress("read", done + doc.offset, total, w.stats.documents)
        end
      end, { tenant = opts.tenant, labels = opts.labels })
      if not n then error({ msg = ferr }) end
      if opts.progress then
        done = done + sizes[fi]
        opts.progress("read", done, total, w.stats.documents)
      end
    end
    return w:commit()
  end)
  if not ok then
    w:close()
    if type(res) == "table" and res.msg then return nil, res.msg end
    error(res, 0)
  end
  if not res then w:close(); return nil, cerr end
  res.files = #files
  res.skipped = skipped
  return res
end

return M
