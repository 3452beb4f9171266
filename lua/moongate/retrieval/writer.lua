-- The index writer: adds, replaces and deletes documents, then builds the next index version
-- (dedupe, BM25, vectors) beside the current one and swaps CURRENT atomically.
local ffi = require "ffi"
local bit = require "bit"
local store = require "moongate.retrieval.store"
local chunker = require "moongate.retrieval.chunker"
local ingest = require "moongate.retrieval.ingest"

local M = {}
local Q, X = store.query, store.exec

-- Settings fixed when an index is created (chunks depend on them) and those a version may
-- change (BM25, embedder, dedupe).
M.defaults = {
  max_tokens = 800, min_tokens = 400, overlap = 80,
  k1 = 1.2, b = 0.75, stem = "english", stopwords = false,
  embedder = "glove", quant = "f32",
  dedupe_distance = 3, heading_weight = 1,
}
local CHUNK_KEYS = { "max_tokens", "min_tokens", "overlap" }
local VERSION_KEYS = { "k1", "b", "stem", "stopwords", "embedder", "quant", "dedupe_distance", "heading_weight",
  "embedder_url", "embedder_model", "embedder_key_env" }

--- The embedder an index's settings name (the API key of a remote one is read from the
-- environment variable they name, never stored).
function M.embedder_for(s)
  return require("moongate.retrieval.embedder").new {
    kind = s.embedder, url = s.embedder_url, model = s.embedder_model, api_key_env = s.embedder_key_env,
  }
end

-- wall clock, seconds (fractional under the runtime)
local function now()
  local ok, mg = pcall(require, "moongate")
  if ok and type(mg) == "table" and mg.now then return mg.now() end
  return os.time()
end

local function clock()
  local ok, mg = pcall(require, "moongate")
  if ok and type(mg) == "table" and mg.now then return mg.now() end
  return os.clock()
end

-- FNV-1a 64-bit over bytes, as hex: decides whether a document changed.
local function content_hash(s)
  local h = ffi.new("uint64_t", 0xcbf29ce484222325ULL)
  local p = ffi.cast("const uint8_t *", s)
  local prime = 0x100000001b3ULL
  for i = 0, #s - 1 do
    h = bit.bxor(h, p[i]) * prime
  end
  return bit.tohex(h, 16)
end
M.content_hash = content_hash

local function hash_hex(h) return bit.tohex(h, 16) end
local function hex_hash(s)
  local hi = ffi.cast("uint64_t", tonumber(s:sub(1, 8), 16))
  local lo = ffi.cast("uint64_t", tonumber(s:sub(9, 16), 16))
  return bit.bor(bit.lshift(hi, 32), lo)
end
M.hex_hash = hex_hash

--- The text BM25 and the embedder see for a chunk: its heading path, then its text.
function M.index_text(heading, text)
  if heading ~= "" and text:sub(1, #heading) ~= heading then
    return heading .. "\n" .. text
  end
  return text
end

--- The text BM25 indexes for a chunk: index_text, with its section's own heading (the last
-- of its path) counted heading_weight times in all. A section's heading names what it is
-- about in a few words that its long text dilutes; pages of short, titled sections (docs)
-- find the section a question is about better with the heading counted more.
function M.bm25_text(heading, text, heading_weight)
  local extra = (heading_weight or 1) - 1
  if extra < 1 or heading == "" then return text end
  local sec = heading:match(".*> (.-)$") or heading
  return (sec .. "\n"):rep(extra) .. text
end

local Writer = {}
Writer.__index = Writer

--- Open DIR for writing (created if missing). opts: chunking and index settings (see
-- M.defaults), wait (wait for another writer instead of failing).
-- Returns writer | nil, err.
function M.open(dir, opts)
  opts = opts or {}
  local hw = opts.heading_weight
  if hw ~= nil and (type(hw) ~= "number" or hw < 1 or hw > 10 or hw % 1 ~= 0) then
    return nil, "heading_weight must be a whole number from 1 to 10"
  end
  local ok, err = store.mkdir(dir)
  if not ok then return nil, err end
  local release
  release, err = store.lock(dir, opts.wait)
  if not release then return nil, err end
  local db
  db, err = store.open_db(dir, { create = true })
  if not db then release(); return nil, err end
  local json = require "moongate.json"
  local saved = store.get_meta(db, "settings")
  local settings = {}
  for k, v in pairs(M.defaults) do settings[k] = v end
  if saved then
    for k, v in pairs(json.decode(saved)) do settings[k] = v end
    for _, k in ipairs(CHUNK_KEYS) do
      if opts[k] ~= nil and opts[k] ~= settings[k] then
        db:close(); release()
        return nil, ("the index was chunked with %s = %s; index into a new folder to change it")
          :format(k, tostring(settings[k]))
      end
    end
  else
    for _, k in ipairs(CHUNK_KEYS) do if opts[k] ~= nil then settings[k] = opts[k] end end
  end
  for _, k in ipairs(VERSION_KEYS) do if opts[k] ~= nil then settings[k] = opts[k] end end
  if settings.stem == "" or settings.stem == "none" then settings.stem = false end
  if settings.min_tokens > settings.max_tokens then settings.min_tokens = settings.max_tokens end

  local versions = Q(db, "SELECT max(version) AS v FROM versions")
  local last = versions[1] and tonumber(versions[1].v) or 0
  local version = math.max(last, store.current_version(dir) or 0) + 1
  X(db, "BEGIN IMMEDIATE")
  local w = setmetatable({
    dir = dir, db = db, release = release, settings = settings, version = version,
    started = clock(), count = chunker.token_counter(),
    seen = {}, sources = {}, prefixes = {},
    stats = { documents = 0, added = 0, changed = 0, unchanged = 0, deleted = 0, chunks = 0,
      tokens = 0, duplicates = 0 },
    progress = opts.progress,
  }, Writer)
  w.st_doc = db:prepare("SELECT key, hash, labels, source FROM documents WHERE tenant = ? AND doc_id = ?")
  w.st_remove = db:prepare("UPDATE chunks SET removed_version = ? WHERE doc_key = ? AND removed_version IS NULL")
  w.st_upsert = db:prepare([[INSERT INTO documents (tenant, doc_id, source, title, labels, metadata, hash, version, updated_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (tenant, doc_id) DO UPDATE SET source = excluded.source, title = excluded.title,
      labels = excluded.labels, metadata = excluded.metadata, hash = excluded.hash,
      version = excluded.version, updated_at = excluded.updated_at]])
  w.st_chunk = db:prepare([[INSERT INTO chunks (doc_key, tenant, doc_id, labels, ordinal, heading, text, tokens,
    simhash, added_version, source, title, metadata, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)]])
  return w
end

local function step(st, ...)
  st:bind(...)
  local r, err = st:step()
  st:reset()
  if err then error("index database: " .. tostring(err), 2) end
  return r
end

--- Add or replace a document: {id =, text =, title =, format = "markdown"|"text"|"html",
-- source =, tenant =, labels = {..} | "a,b", metadata = {..}}. Unchanged documents are kept
-- as they are. Returns "added" | "changed" | "unchanged" | nil, err.
function Writer:add(doc)
  if not self.db then error("writer is closed", 2) end
  if type(doc) ~= "table" then error("document must be a table", 2) end
  if type(doc.id) ~= "string" or doc.id == "" then return nil, "document id must be a non-empty string" end
  if type(doc.text) ~= "string" then return nil, "document text must be a string" end
  local json = require "moongate.json"
  local tenant = doc.tenant or ""
  if type(tenant) ~= "string" then return nil, "tenant must be a string" end
  local labels = store.labels_key(doc.labels)
  local title = doc.title or ""
  local metadata = json.encode(doc.metadata or {})
  local source = doc.source or ""
  local hash = content_hash(table.concat({ doc.format or "text", title, labels, metadata, doc.text }, "\0"))
  local key = tenant .. "\0" .. doc.id
  self.seen[key] = true
  if source ~= "" then self.sources[source] = true end
  self.stats.documents = self.stats.documents + 1

  local row = step(self.st_doc, tenant, doc.id)
  if type(row) ~= "table" then row = nil end
  if row and row.hash == hash and row.source == source then
    self.stats.unchanged = self.stats.unchanged + 1
    return "unchanged"
  end

  local blocks, html_title = ingest.blocks(doc)
  if not blocks then return nil, html_title end
  if title == "" and html_title then title = html_title end
  if title ~= "" and (not blocks[1] or blocks[1].kind ~= "heading") then
    -- the title heads every chunk of the document
    for _, b in ipairs(blocks) do table.insert(b.heading, 1, title) end
  end
  local chunks = chunker.chunk(blocks, {
    max_tokens = self.settings.max_tokens, min_tokens = self.settings.min_tokens,
    overlap = self.settings.overlap, count = self.count,
  })

  local simhash = require("moongate.simhash")
  step(self.st_upsert, tenant, doc.id, source, title, labels, metadata, hash, self.version, now())
  local doc_key = step(self.st_doc, tenant, doc.id).key
  if row then step(self.st_remove, self.version, doc_key) end
  for i, c in ipairs(chunks) do
    local heading = table.concat(c.heading, " > ")
    local h = simhash.hash(c.text)
    step(self.st_chunk, doc_key, tenant, doc.id, labels, i, heading, c.text, c.tokens,
      hash_hex(h), self.version, source, title, metadata, now())
  end
  local what = row and "changed" or "added"
  self.stats[what] = self.stats[what] + 1
  return what
end

--- Delete a document (its chunks leave the next version). Returns true | nil, "not found".
function Writer:delete(id, tenant)
  if not self.db then error("writer is closed", 2) end
  tenant = tenant or ""
  local rows = Q(self.db, "SELECT key FROM documents WHERE tenant = ? AND doc_id = ?", tenant, id)
  if #rows == 0 then return nil, "not found" end
  Q(self.db, "UPDATE chunks SET removed_version = ? WHERE doc_key = ? AND removed_version IS NULL",
    self.version, rows[1].key)
  Q(self.db, "DELETE FROM documents WHERE key = ?", rows[1].key)
  self.stats.deleted = self.stats.deleted + 1
  return true
end

--- Files (or folders, as prefixes) being re-indexed: at commit, documents that came from
-- them and were not added again in this run are deleted.
function Writer:scanned(path, is_dir)
  if is_dir then
    self.prefixes[#self.prefixes + 1] = path:gsub("/+$", "") .. "/"
  else
    self.sources[path] = true
  end
end

function Writer:delete_missing()
  local rows = Q(self.db, "SELECT key, tenant, doc_id, source FROM documents")
  for _, r in ipairs(rows) do
    if not self.seen[r.tenant .. "\0" .. r.doc_id] then
      local gone = self.sources[r.source]
      if not gone then
        for _, p in ipairs(self.prefixes) do
          if r.source:sub(1, #p) == p then gone = true; break end
        end
      end
      if gone then self:delete(r.doc_id, r.tenant) end
    end
  end
end

-- Near-duplicate detection inside one (tenant, labels) group: simhash bands, so that two
-- hashes within `dist` bits share at least one band exactly (pigeonhole).
local function new_deduper(dist)
  local simhash = require("moongate.simhash")
  local nb = dist + 1
  local width = math.floor(64 / nb)
  local mask = bit.lshift(1ULL, width) - 1
  local groups = {}
  return function(group, h)
    local g = groups[group]
    if not g then g = { buckets = {} }; groups[group] = g end
    local keys = {}
    for b = 0, nb - 1 do
      keys[b + 1] = b .. ":" .. tostring(tonumber(bit.band(bit.rshift(h, b * width), mask)))
      local list = g.buckets[keys[b + 1]]
      if list then
        for _, cand in ipairs(list) do
          if simhash.distance(cand.h, h) <= dist then return cand end
        end
      end
    end
    local entry = { h = h }
    for _, k in ipairs(keys) do
      local list = g.buckets[k]
      if not list then list = {}; g.buckets[k] = list end
      list[#list + 1] = entry
    end
    return nil, entry
  end
end

local function write_floats(path, vecs, dim)
  local f, err = io.open(path, "wb")
  if not f then return nil, err end
  for i = 1, #vecs do f:write(ffi.string(vecs[i], dim * 4)) end
  f:close()
  return true
end

-- Embeddings of the previous version, by chunk id, when made by the same embedder.
-- Embeddings of the previous version made by the same embedder: {chunk id = float*} into
-- the raw emb.f32 data (kept alive in .data), so unchanged chunks are not embedded again.
local function previous_embeddings(self, emb)
  local none = { ptr = {} }
  local prev = store.current_version(self.dir)
  if not prev then return none end
  local rows = Q(self.db, "SELECT settings FROM versions WHERE version = ?", prev)
  if #rows == 0 then return none end
  local json = require "moongate.json"
  local s = json.decode(rows[1].settings) or {}
  for _, k in ipairs { "embedder", "embedder_url", "embedder_model" } do
    if s[k] ~= self.settings[k] then return none end
  end
  if not s.dim or (emb.dim and s.dim ~= emb.dim) then return none end
  local data = store.read_file(self.dir .. "/v" .. prev .. "/emb.f32")
  if not data then return none end
  local map = Q(self.db, "SELECT docno, chunk_id FROM version_chunks WHERE version = ?", prev)
  if #data ~= #map * s.dim * 4 then return none end
  emb.dim = emb.dim or s.dim   -- a remote embedder learns its dimension from its first answer
  local base = ffi.cast("const char *", data)
  local out = { data = data, ptr = {} }
  for _, r in ipairs(map) do
    out.ptr[r.chunk_id] = ffi.cast("const float *", base + r.docno * s.dim * 4)
  end
  return out
end

--- Build and publish the next version. Returns summary {version, documents, added, changed,
-- unchanged, deleted, chunks, indexed, tokens, duplicates, seconds} | nil, err.
function Writer:commit()
  if not self.db then error("writer is closed", 2) end
  local json = require "moongate.json"
  local bm25 = require "moongate.bm25"
  local db, s, version = self.db, self.settings, self.version
  self:delete_missing()
  local progress = self.progress or function() end
  local st_ = self.stats

  -- nothing changed: keep the current version rather than publish an identical one
  local current = store.current_version(self.dir)
  if current and st_.added == 0 and st_.changed == 0 and st_.deleted == 0 then
    local row = Q(db, "SELECT settings, documents, chunks, duplicates FROM versions WHERE version = ?", current)[1]
    local same = row ~= nil
    if row then
      local old = json.decode(row.settings) or {}
      for k in pairs(M.defaults) do if old[k] ~= s[k] then same = false end end
      for _, k in ipairs(VERSION_KEYS) do if old[k] ~= s[k] then same = false end end
      -- its files must still load (not written by an older format, not damaged): else the
      -- version is built again from the database below
      local vdir = self.dir .. "/v" .. current
      local ix = same and bm25.load(vdir .. "/bm25.bin")
      if ix then ix:close() else same = false end
      if same and old.dim then
        local vs = require("moongate.vectors").load(vdir .. "/vectors.bin")
        if vs then vs:close() else same = false end
      end
    end
    if same then
      local live = Q(db, "SELECT count(*) AS n, coalesce(sum(tokens), 0) AS t FROM chunks WHERE removed_version IS NULL")[1]
      local summary = {
        version = current, documents = row.documents, added = 0, changed = 0,
        unchanged = st_.unchanged, deleted = 0, chunks = live.n, indexed = row.chunks,
        tokens = live.t, token_counter = chunker.counter_name or select(2, chunker.token_counter()),
        duplicates = row.duplicates, seconds = clock() - self.started, seen = st_.documents,
      }
      self:close()
      return summary
    end
  end

  local LIVE = [[FROM chunks WHERE added_version <= ? AND (removed_version IS NULL OR removed_version > ?)
    ORDER BY doc_key, ordinal]]

  -- pass 1 (no texts): dedupe. The first chunk of a near-duplicate group survives and
  -- keeps the others' doc ids.
  local keep, keep_n, also = {}, 0, {}
  local dedupe = s.dedupe_distance and s.dedupe_distance >= 0 and new_deduper(s.dedupe_distance)
  local dups, tokens, nlive = 0, 0, 0
  local st = db:prepare("SELECT id, tenant, labels, doc_id, tokens, simhash " .. LIVE)
  st:bind(version, version)
  for c in st:rows() do
    nlive = nlive + 1
    tokens = tokens + c.tokens
    local survivor, entry
    if dedupe then survivor, entry = dedupe(c.tenant .. "\0" .. c.labels, hex_hash(c.simhash)) end
    if survivor then
      dups = dups + 1
      local sc = survivor.chunk
      if c.doc_id ~= sc.doc_id then
        local a = also[sc.id] or {}
        local present = false
        for _, d in ipairs(a) do if d == c.doc_id then present = true end end
        if not present then a[#a + 1] = c.doc_id; also[sc.id] = a end
      end
    else
      if entry then entry.chunk = { id = c.id, doc_id = c.doc_id } end
      keep_n = keep_n + 1
      keep[c.id] = keep_n
    end
  end
  st:finalize()
  progress("dedupe", nlive, nlive)

  local vdir = self.dir .. "/v" .. version
  store.remove_tree(vdir .. ".tmp")
  local ok, err = store.mkdir(vdir .. ".tmp")
  if not ok then return nil, err end

  -- pass 2 (texts, streamed): BM25, and vectors in the same order
  local ix
  ix, err = bm25.new { k1 = s.k1, b = s.b, stem = s.stem, stopwords = s.stopwords }
  if not ix then return nil, err end
  local emb, prev, vs, femb, queue, queued_texts
  local embedded, reused = 0, 0
  if s.embedder and s.embedder ~= "none" then
    emb, err = M.embedder_for(s)
    if not emb then ix:close(); return nil, err end
    prev = previous_embeddings(self, emb)
    femb, err = io.open(vdir .. ".tmp/emb.f32", "wb")
    if not femb then ix:close(); return nil, err end
    queue, queued_texts = {}, 0
  end
  local embedder = require "moongate.retrieval.embedder"
  -- vectors go in docno order: queued items wait for a remote batch to come back
  local function flush()
    if queued_texts > 0 then
      local texts = {}
      for _, it in ipairs(queue) do if not it.ptr then texts[#texts + 1] = it.text end end
      local fresh, ferr = embedder.embed_all(emb, texts)
      if not fresh then error({ msg = ferr }) end
      local j = 0
      for _, it in ipairs(queue) do
        if not it.ptr then j = j + 1; it.ptr = fresh[j] end
      end
      embedded = embedded + #texts
    end
    for _, it in ipairs(queue) do
      if not vs then
        vs, err = require("moongate.vectors").new(emb.dim, { quant = s.quant })
        if not vs then error({ msg = err }) end
      end
      local row, aerr = vs:add(it.ptr)
      if not row then error({ msg = aerr }) end
      femb:write(ffi.string(it.ptr, emb.dim * 4))
    end
    queue, queued_texts = {}, 0
    progress("embed", embedded + reused, keep_n)
  end
  local batch = emb and emb.embed_batch and 64 or 256   -- texts embedded per call
  st = db:prepare("SELECT id, heading, text " .. LIVE)
  st:bind(version, version)
  local built, berr = pcall(function()
    local n = 0
    for c in st:rows() do
      if keep[c.id] then
        n = n + 1
        local text = M.index_text(c.heading, c.text)
        ix:add(M.bm25_text(c.heading, text, s.heading_weight))
        if emb then
          local p = prev.ptr[c.id]
          if p then
            reused = reused + 1
            queue[#queue + 1] = { ptr = p }
          else
            queue[#queue + 1] = { text = text }
            queued_texts = queued_texts + 1
            if queued_texts >= batch then flush() end
          end
        end
        if n % 1000 == 0 then progress("bm25", n, keep_n) end
      end
    end
    if emb then flush() end
  end)
  st:finalize()
  if femb then femb:close() end
  if not built then
    ix:close()
    if vs then vs:close() end
    if type(berr) == "table" and berr.msg then return nil, berr.msg end
    error(berr, 0)
  end
  ix:commit()
  progress("bm25", keep_n, keep_n)
  ok, err = ix:save(vdir .. ".tmp/bm25.bin")
  ix:close()
  if not ok then return nil, err end
  local dim
  if emb then
    if not vs then   -- nothing to embed: an empty store of the embedder's dimension
      vs, err = require("moongate.vectors").new(emb.dim or 1, { quant = s.quant })
      if not vs then return nil, err end
    end
    dim = vs:dim()
    ok, err = vs:save(vdir .. ".tmp/vectors.bin")
    vs:close()
    if not ok then return nil, err end
  end

  store.remove_tree(vdir)
  ok, err = store.rename(vdir .. ".tmp", vdir)
  if not ok then return nil, err end

  local vsettings = {}
  for k, v in pairs(s) do vsettings[k] = v end
  vsettings.dim = dim
  vsettings.token_counter = chunker.counter_name
  st = db:prepare("INSERT INTO version_chunks (version, docno, chunk_id, also) VALUES (?, ?, ?, ?)")
  for id, pos in pairs(keep) do
    step(st, version, pos - 1, id, also[id] and table.concat(also[id], "\n") or "")
  end
  st:finalize()
  local docs = Q(db, "SELECT count(*) AS n FROM documents")[1].n
  Q(db, "INSERT INTO versions (version, created_at, documents, chunks, duplicates, settings) VALUES (?, ?, ?, ?, ?, ?)",
    version, now(), docs, keep_n, dups, json.encode(vsettings))
  store.set_meta(db, "settings", json.encode(s))
  X(db, "COMMIT")

  -- the swap: readers that open or refresh from now on get this version
  ok, err = store.write_file_atomic(self.dir .. "/CURRENT", version .. "\n")
  if not ok then return nil, err end

  -- keep the previous version for readers still on it; drop what is older
  local ok_gc = pcall(function()
    X(db, "BEGIN IMMEDIATE")
    Q(db, "DELETE FROM chunks WHERE removed_version IS NOT NULL AND removed_version <= ?", version - 1)
    Q(db, "DELETE FROM version_chunks WHERE version < ?", version - 1)
    X(db, "COMMIT")
  end)
  if not ok_gc then pcall(db.exec, db, "ROLLBACK") end
  for _, e in ipairs(store.list_dir(self.dir) or {}) do
    local n = tonumber(e.name:match("^v(%d+)$") or e.name:match("^v(%d+)%.tmp$"))
    if n and n < version - 1 then store.remove_tree(self.dir .. "/" .. e.name) end
  end

  local summary = {
    version = version, documents = docs, added = st_.added, changed = st_.changed,
    unchanged = st_.unchanged, deleted = st_.deleted, chunks = nlive, indexed = keep_n,
    tokens = tokens, token_counter = chunker.counter_name, duplicates = dups,
    seconds = clock() - self.started, seen = st_.documents, embedded = embedded, reused = reused,
  }
  self:close(true)
  return summary
end

--- Abandon the writer (nothing of this run is published). Idempotent.
function Writer:close(committed)
  if not self.db then return end
  if not committed then pcall(self.db.exec, self.db, "ROLLBACK") end
  for _, st in ipairs { "st_doc", "st_remove", "st_upsert", "st_chunk" } do
    if self[st] then self[st]:finalize(); self[st] = nil end
  end
  self.db:close()
  self.db = nil
  self.release()
end

return M
