-- moongate.bm25: a BM25 inverted index (Lucene's formula) over analyzed text: add
-- documents, commit, then search with an optional allow-list bitset applied in the scan.
local ffi = require "ffi"
local analyzer = require "moongate.analyzer"
local bitset = require "moongate.bitset"

ffi.cdef [[
typedef struct mg_bm25 mg_bm25;
mg_bm25 *mg_bm25_new(double k1, double b, const char *stem, int stopwords, const char **err);
void mg_bm25_free(mg_bm25 *ix);
int mg_bm25_add(mg_bm25 *ix, const char *text, size_t len, uint32_t *docno, const char **err);
int mg_bm25_commit(mg_bm25 *ix, const char **err);
int mg_bm25_committed(const mg_bm25 *ix);
int mg_bm25_search(mg_bm25 *ix, const char *query, size_t len, uint32_t k,
                   const uint64_t *allow, size_t allow_bits,
                   uint32_t *docs, float *scores, size_t *n, const char **err);
int mg_bm25_search_terms(mg_bm25 *ix, const char *buf, const uint32_t *offs, size_t nterms,
                         const float *weights, uint32_t k,
                         const uint64_t *allow, size_t allow_bits,
                         uint32_t *docs, float *scores, size_t *n, const char **err);
uint32_t mg_bm25_count(const mg_bm25 *ix);
uint32_t mg_bm25_term_count(const mg_bm25 *ix);
uint32_t mg_bm25_df(const mg_bm25 *ix, const char *term, size_t len);
uint32_t mg_bm25_doc_len(const mg_bm25 *ix, uint32_t docno);
double mg_bm25_k1(const mg_bm25 *ix);
double mg_bm25_b(const mg_bm25 *ix);
const char *mg_bm25_stem(const mg_bm25 *ix);
int mg_bm25_stopwords(const mg_bm25 *ix);
int mg_bm25_save(const mg_bm25 *ix, const char *path, const char **err);
mg_bm25 *mg_bm25_load(const char *path, const char **err);
]]

local C = ffi.C
local M = {}

local errbuf = ffi.new("const char *[1]")
local docbuf = ffi.new("uint32_t[1]")
local nbuf = ffi.new("size_t[1]")

local Index = {}
Index.__index = Index

local function wrap(p)
  return setmetatable({ _p = ffi.gc(p, C.mg_bm25_free), _cap = 0 }, Index)
end

-- bm25.new{k1 = 1.2, b = 0.75, stem = "english" | false, stopwords = false}
-- -> index | nil, err ("unknown stemmer language", "k1 must be >= 0 and b within [0, 1]")
function M.new(opts)
  if opts ~= nil and type(opts) ~= "table" then error("bm25 options must be a table", 2) end
  opts = opts or {}
  local k1, b = opts.k1 or 1.2, opts.b or 0.75
  if type(k1) ~= "number" or type(b) ~= "number" then error("k1 and b must be numbers", 2) end
  local stem, sw = analyzer.settings(opts, 2)
  local p = C.mg_bm25_new(k1, b, stem, sw, errbuf)
  if p == nil then return nil, ffi.string(errbuf[0]) end
  return wrap(p)
end

-- bm25.load(path) -> index | nil, err ("cannot open", "not a bm25 index", "corrupt index")
function M.load(path)
  if type(path) ~= "string" then error("path must be a string", 2) end
  local p = C.mg_bm25_load(path, errbuf)
  if p == nil then return nil, ffi.string(errbuf[0]) end
  return wrap(p)
end

local function handle(self)
  local p = self._p
  if p == nil then error("bm25 index is closed", 3) end
  return p
end

-- ix:add(text) -> docno (0, 1, 2, ...). Raises after commit.
function Index:add(text)
  local p = handle(self)
  if type(text) ~= "string" then error("text must be a string", 2) end
  if C.mg_bm25_committed(p) ~= 0 then error("bm25 index is committed: add() before commit()", 2) end
  if C.mg_bm25_add(p, text, #text, docbuf, errbuf) ~= 0 then
    return nil, ffi.string(errbuf[0])
  end
  return tonumber(docbuf[0])
end

-- ix:commit() -> true | nil, "out of memory". Idempotent.
function Index:commit()
  if C.mg_bm25_commit(handle(self), errbuf) ~= 0 then return nil, ffi.string(errbuf[0]) end
  return true
end

function Index:committed()
  return C.mg_bm25_committed(handle(self)) ~= 0
end

-- Checks k and allow, sizes the result buffers; returns k, allow words, allow bits.
local function prepare(self, p, k, allow)
  k = k or 10
  if type(k) ~= "number" or k < 0 or k % 1 ~= 0 or k >= 2 ^ 32 then
    error("k must be a non-negative integer", 3)
  end
  if allow ~= nil and not bitset.is(allow) then error("allow must be a bitset", 3) end
  if C.mg_bm25_committed(p) == 0 then error("bm25 index is not committed: commit() before search()", 3) end
  local n = C.mg_bm25_count(p)
  if k > n then k = n end
  if k > self._cap then
    self._docs = ffi.new("uint32_t[?]", k)
    self._scores = ffi.new("float[?]", k)
    self._cap = k
  end
  if allow then return k, allow:ptr(), allow.n end
  return k, nil, 0
end

local function results(self)
  local out, docs, scores = {}, self._docs, self._scores
  for i = 0, tonumber(nbuf[0]) - 1 do
    out[i + 1] = { doc = tonumber(docs[i]), score = tonumber(scores[i]) }
  end
  return out
end

-- ix:search(query, k = 10, allow) -> array of {doc = docno, score = number}, best first.
function Index:search(query, k, allow)
  local p = handle(self)
  if type(query) ~= "string" then error("query must be a string", 2) end
  local words, nbits
  k, words, nbits = prepare(self, p, k, allow)
  if C.mg_bm25_search(p, query, #query, k, words, nbits, self._docs, self._scores, nbuf, errbuf) ~= 0 then
    return nil, ffi.string(errbuf[0])
  end
  return results(self)
end

-- ix:search_terms(terms, k = 10, allow, weights) -> as search, for terms already analyzed
-- (as analyzer.terms returns them with the index's settings), each counting weights[i]
-- times (default 1): query expansion and boosts without analyzing twice.
function Index:search_terms(terms, k, allow, weights)
  local p = handle(self)
  if type(terms) ~= "table" then error("terms must be an array of strings", 2) end
  local nt = #terms
  if weights ~= nil and (type(weights) ~= "table" or #weights ~= nt) then
    error("weights must be an array as long as terms", 2)
  end
  local words, nbits
  k, words, nbits = prepare(self, p, k, allow)
  local offs = ffi.new("uint32_t[?]", nt + 1)
  local w = weights and ffi.new("float[?]", nt)
  local pos = 0
  for i = 1, nt do
    local t = terms[i]
    if type(t) ~= "string" then error("terms must be an array of strings", 2) end
    offs[i - 1] = pos
    pos = pos + #t
    if w then
      local x = weights[i]
      if type(x) ~= "number" or not (x > 0 and x <= 1e30) then
        error("weights must be positive numbers", 2)
      end
      w[i - 1] = x
    end
  end
  offs[nt] = pos
  local buf = table.concat(terms)
  if C.mg_bm25_search_terms(p, buf, offs, nt, w, k, words, nbits, self._docs, self._scores, nbuf, errbuf) ~= 0 then
    return nil, ffi.string(errbuf[0])
  end
  return results(self)
end

function Index:count() return tonumber(C.mg_bm25_count(handle(self))) end
function Index:term_count() return tonumber(C.mg_bm25_term_count(handle(self))) end

-- ix:df(term): documents containing an analyzed term (as analyzer.terms returns it).
function Index:df(term)
  local p = handle(self)
  if type(term) ~= "string" then error("term must be a string", 2) end
  return tonumber(C.mg_bm25_df(p, term, #term))
end

function Index:doc_len(docno)
  local p = handle(self)
  if type(docno) ~= "number" or docno < 0 or docno >= C.mg_bm25_count(p) then
    error("docno out of range", 2)
  end
  return tonumber(C.mg_bm25_doc_len(p, docno))
end

-- The settings: {k1 =, b =, stem = "english" | false, stopwords = bool}
function Index:settings()
  local p = handle(self)
  local stem = ffi.string(C.mg_bm25_stem(p))
  return { k1 = C.mg_bm25_k1(p), b = C.mg_bm25_b(p), stem = stem ~= "" and stem or false,
    stopwords = C.mg_bm25_stopwords(p) ~= 0 }
end

-- ix:save(path) -> true | nil, err. Needs commit. Atomic (written aside, then renamed).
function Index:save(path)
  local p = handle(self)
  if type(path) ~= "string" then error("path must be a string", 2) end
  if C.mg_bm25_committed(p) == 0 then error("bm25 index is not committed: commit() before save()", 2) end
  if C.mg_bm25_save(p, path, errbuf) ~= 0 then return nil, ffi.string(errbuf[0]) end
  return true
end

function Index:close()
  local p = self._p
  if p ~= nil then
    self._p = nil
    C.mg_bm25_free(ffi.gc(p, nil))
  end
end

M.Index = Index
return M
