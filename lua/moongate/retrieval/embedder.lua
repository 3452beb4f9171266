-- Text embedders for dense retrieval: "glove" (offline default: frequency-weighted average of
-- GloVe word vectors shipped in data/embeddings), "hash" (hashed n-grams, last resort) and
-- "openai" (any /v1/embeddings provider). Every embedder returns unit-length float vectors.
local ffi = require "ffi"
local bit = require "bit"

local M = {}

local floatv = ffi.typeof("float[?]")

--- Scale v (float[dim]) to unit length in place (all zeros stay zeros); returns v.
local function normalize(v, dim)
  local s = 0
  for i = 0, dim - 1 do s = s + v[i] * v[i] end
  if s > 0 then
    local inv = 1 / math.sqrt(s)
    for i = 0, dim - 1 do v[i] = v[i] * inv end
  end
  return v
end

-- Terms for the embedders: case-folded words, no stemming, stop words kept (their low weight
-- does the filtering).
local function words(text)
  return require("moongate.analyzer").terms(text, { stem = false, stopwords = false })
end

---------------------------------------------------------------------------------------------
-- glove: smooth inverse frequency weighting, w = a / (a + p(word)), with p estimated from the
-- word's frequency rank by Zipf's law (the file stores words most frequent first).

local glove_cache = {}

local function load_glove(path)
  if glove_cache[path] then return glove_cache[path] end
  local f, err = io.open(path, "rb")
  if not f then return nil, "cannot open embeddings: " .. tostring(err) end
  local data = f:read("*a")
  f:close()
  local dim, count, pos = data:match("^MGEMB1\n(%d+) (%d+)\n()")
  if not dim then return nil, "not a moongate embeddings file: " .. path end
  dim, count = tonumber(dim), tonumber(count)
  local rank = {}
  local r = 0
  while r < count do
    local nl = data:find("\n", pos, true)
    if not nl then return nil, "truncated embeddings file: " .. path end
    rank[data:sub(pos, nl - 1)] = r
    r = r + 1
    pos = nl + 1
  end
  if #data - (pos - 1) ~= count * 4 + count * dim then
    return nil, "truncated embeddings file: " .. path
  end
  local scales = floatv(count)
  local comps = ffi.new("int8_t[?]", count * dim)
  local base = ffi.cast("const char *", data) + (pos - 1)
  ffi.copy(scales, base, count * 4)
  ffi.copy(comps, base + count * 4, count * dim)
  local g = { dim = dim, count = count, rank = rank, scales = scales, comps = comps }
  glove_cache[path] = g
  return g
end

local function glove_embedder(opts)
  local path = opts.path or (require("moongate.base").home .. "/data/embeddings/glove-50k-100d-i8.bin")
  local g, err = load_glove(path)
  if not g then return nil, err end
  local dim, rank, scales, comps = g.dim, g.rank, g.scales, g.comps
  local a = opts.sif_a or 3e-5
  local H = math.log(g.count) + 0.5772
  local e = { name = "glove", dim = dim, path = path }
  --- embed(text) -> float[dim] (unit length; all zeros when no word is known), known words
  function e.embed(text)
    local v = floatv(dim)
    local known = 0
    for _, w in ipairs(words(text)) do
      local r = rank[w]
      if r then
        local p = 1 / ((r + 10) * H)
        local weight = a / (a + p) * scales[r]
        local row = comps + r * dim
        for i = 0, dim - 1 do v[i] = v[i] + weight * row[i] end
        known = known + 1
      end
    end
    return normalize(v, dim), known
  end
  return e
end

---------------------------------------------------------------------------------------------
-- hash: signed feature hashing of words and character trigrams; catches shared vocabulary
-- and spelling variants, no semantics. Only for when nothing better is available.

local function fnv1a(s)
  local h = 2166136261
  for i = 1, #s do
    h = bit.bxor(h, s:byte(i))
    h = bit.tobit(bit.tobit(h) * 403 + bit.lshift(h, 24))   -- h * 16777619 mod 2^32
  end
  return h
end

local function hash_embedder(opts)
  local dim = opts.dim or 256
  local e = { name = "hash", dim = dim }
  function e.embed(text)
    local v = floatv(dim)
    local n = 0
    local function feature(f, w)
      local h = fnv1a(f)
      local slot = bit.band(h, 0x7fffffff) % dim
      v[slot] = v[slot] + (bit.band(h, 0x80000000) ~= 0 and -w or w)
    end
    for _, w in ipairs(words(text)) do
      n = n + 1
      feature("w:" .. w, 1)
      local padded = "^" .. w .. "$"
      for i = 1, #padded - 2 do feature(padded:sub(i, i + 2), 0.5) end
    end
    return normalize(v, dim), n
  end
  return e
end

---------------------------------------------------------------------------------------------
-- openai: POST {model, input = [texts]} to an OpenAI-compatible /v1/embeddings endpoint.

local function openai_embedder(opts)
  local url = opts.url or "https://api.openai.com/v1/embeddings"
  local model = opts.model or "text-embedding-3-small"
  local key = opts.api_key or (opts.api_key_env and os.getenv(opts.api_key_env)) or os.getenv("OPENAI_API_KEY")
  local e = { name = "openai:" .. model, dim = opts.dim, remote = true }
  --- embed_batch(texts) -> array of float[dim] | nil, err
  function e.embed_batch(texts)
    local http = require "moongate.http"
    local json = require "moongate.json"
    local headers = { ["content-type"] = "application/json" }
    if key then headers["authorization"] = "Bearer " .. key end
    local res, err = http.request {
      method = "POST", url = url, headers = headers,
      body = json.encode { model = model, input = texts },
      timeout = opts.timeout or 30,
    }
    if not res then return nil, err end
    if res.status ~= 200 then return nil, "embeddings http " .. tostring(res.status) end
    local body, jerr = json.decode(res.body)
    if not body or type(body.data) ~= "table" then return nil, "bad embeddings response: " .. tostring(jerr) end
    local out = {}
    for i, item in ipairs(body.data) do
      local emb = item.embedding
      if type(emb) ~= "table" then return nil, "bad embeddings response" end
      local d = #emb
      if e.dim and e.dim ~= d then return nil, "embedding dimension changed" end
      e.dim = d
      local v = floatv(d)
      for j = 1, d do v[j - 1] = emb[j] end
      out[(item.index or (i - 1)) + 1] = normalize(v, d)
    end
    if #out ~= #texts then return nil, "bad embeddings response" end
    return out
  end
  function e.embed(text)
    local out, err = e.embed_batch({ text })
    if not out then return nil, err end
    return out[1], 1
  end
  return e
end

M.normalize = normalize

local KINDS = { glove = glove_embedder, hash = hash_embedder, openai = openai_embedder }

--- new{kind = "glove"|"hash"|"openai", ...} -> embedder | nil, err
-- An embedder has .name, .dim, .embed(text) -> float[dim], and for remote kinds .embed_batch.
function M.new(opts)
  opts = opts or {}
  local kind = opts.kind or "glove"
  local make = KINDS[kind]
  if not make then return nil, "unknown embedder: " .. tostring(kind) end
  return make(opts)
end

--- Embed many texts; calls progress(done) now and then. Returns array of float[dim].
function M.embed_all(e, texts, progress)
  local out = {}
  if e.embed_batch then
    local batch = 64
    for i = 1, #texts, batch do
      local part = {}
      for j = i, math.min(#texts, i + batch - 1) do part[#part + 1] = texts[j] end
      local vs, err = e.embed_batch(part)
      if not vs then return nil, err end
      for j = 1, #vs do out[i + j - 1] = vs[j] end
      if progress then progress(#out) end
    end
  else
    for i = 1, #texts do
      out[i] = e.embed(texts[i])
      if progress and i % 256 == 0 then progress(i) end
    end
    if progress then progress(#texts) end
  end
  return out
end

return M
