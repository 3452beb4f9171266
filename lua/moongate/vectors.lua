-- moongate.vectors: a dense vector store (float32, or int8 with a per-vector scale)
-- searched by exact top-k dot product with SIMD kernels; rows are 0-based.
local ffi = require "ffi"
local bitset = require "moongate.bitset"

ffi.cdef [[
typedef struct mg_vectors mg_vectors;
mg_vectors *mg_vectors_new(uint32_t dim, int quant, const char **err);
void mg_vectors_free(mg_vectors *vs);
int mg_vectors_reserve(mg_vectors *vs, size_t n, const char **err);
int mg_vectors_add(mg_vectors *vs, const float *v, size_t n, uint32_t *first, const char **err);
int mg_vectors_search(const mg_vectors *vs, const float *q, uint32_t k,
                      const uint64_t *allow, size_t allow_bits,
                      uint32_t *rows, float *scores, size_t *n, const char **err);
int mg_vectors_scores(const mg_vectors *vs, const float *q, float *out, const char **err);
int mg_vectors_get(const mg_vectors *vs, uint32_t r, float *out);
uint32_t mg_vectors_count(const mg_vectors *vs);
uint32_t mg_vectors_dim(const mg_vectors *vs);
int mg_vectors_quant(const mg_vectors *vs);
int mg_vectors_save(const mg_vectors *vs, const char *path, const char **err);
mg_vectors *mg_vectors_load(const char *path, const char **err);
const char *mg_vectors_kernel(void);
int mg_vectors_set_kernel(const char *name);
]]

local C = ffi.C
local M = {}

local errbuf = ffi.new("const char *[1]")
local rowbuf = ffi.new("uint32_t[1]")
local nbuf = ffi.new("size_t[1]")
local QUANT = { f32 = 0, i8 = 1 }
local QUANT_NAME = { [0] = "f32", [1] = "i8" }
local float_ptr = ffi.typeof("const float *")

local Store = {}
Store.__index = Store

local function wrap(p)
  local dim = C.mg_vectors_dim(p)
  return setmetatable({ _p = ffi.gc(p, C.mg_vectors_free), _dim = dim,
    _v = ffi.new("float[?]", dim), _cap = 0 }, Store)
end

-- vectors.new(dim, {quant = "f32" | "i8"}) -> store | nil, err
function M.new(dim, opts)
  if type(dim) ~= "number" or dim % 1 ~= 0 then error("dim must be an integer", 2) end
  if opts ~= nil and type(opts) ~= "table" then error("vector options must be a table", 2) end
  local quant = QUANT[(opts and opts.quant) or "f32"]
  if not quant then error('quant must be "f32" or "i8"', 2) end
  if dim < 1 or dim > 65536 then return nil, "dim must be within [1, 65536]" end
  local p = C.mg_vectors_new(dim, quant, errbuf)
  if p == nil then return nil, ffi.string(errbuf[0]) end
  return wrap(p)
end

-- vectors.load(path) -> store | nil, err ("cannot open", "not a vector file", "corrupt vector file")
function M.load(path)
  if type(path) ~= "string" then error("path must be a string", 2) end
  local p = C.mg_vectors_load(path, errbuf)
  if p == nil then return nil, ffi.string(errbuf[0]) end
  return wrap(p)
end

-- The SIMD kernel in use ("avx512", "avx2", "portable"); vectors.set_kernel(name) forces one
-- (returns false when this CPU lacks it).
function M.kernel() return ffi.string(C.mg_vectors_kernel()) end
function M.set_kernel(name)
  if type(name) ~= "string" then error("kernel name must be a string", 2) end
  return C.mg_vectors_set_kernel(name) == 0
end

local function handle(self)
  local p = self._p
  if p == nil then error("vector store is closed", 3) end
  return p
end

-- A Lua array (copied into scratch) or float* cdata, as a const float *.
local function as_floats(self, v, level)
  if type(v) == "table" then
    local dim = self._dim
    if #v ~= dim then error("vector must have " .. dim .. " numbers, got " .. #v, level + 1) end
    local buf = self._v
    for i = 1, dim do
      local x = v[i]
      if type(x) ~= "number" then error("vector must hold numbers", level + 1) end
      buf[i - 1] = x
    end
    return buf
  elseif type(v) == "cdata" then
    return ffi.cast(float_ptr, v)
  end
  error("vector must be an array of numbers or float* cdata", level + 1)
end

-- vs:add(v) -> row | nil, "not a finite number"
function Store:add(v)
  local p = handle(self)
  local f = as_floats(self, v, 2)
  if C.mg_vectors_add(p, f, 1, rowbuf, errbuf) ~= 0 then return nil, ffi.string(errbuf[0]) end
  return tonumber(rowbuf[0])
end

-- vs:add_many(ptr, n) -> first row | nil, err: n vectors back to back in float* cdata.
function Store:add_many(ptr, n)
  local p = handle(self)
  if type(ptr) ~= "cdata" then error("add_many takes float* cdata", 2) end
  if type(n) ~= "number" or n < 0 or n % 1 ~= 0 then error("n must be a non-negative integer", 2) end
  if C.mg_vectors_add(p, ffi.cast(float_ptr, ptr), n, rowbuf, errbuf) ~= 0 then
    return nil, ffi.string(errbuf[0])
  end
  return tonumber(rowbuf[0])
end

-- vs:search(q, k = 10, allow) -> array of {row = r, score = s}, best first (ties: lower row)
function Store:search(q, k, allow)
  local p = handle(self)
  local f = as_floats(self, q, 2)
  k = k or 10
  if type(k) ~= "number" or k < 0 or k % 1 ~= 0 or k >= 2 ^ 32 then
    error("k must be a non-negative integer", 2)
  end
  if allow ~= nil and not bitset.is(allow) then error("allow must be a bitset", 2) end
  local count = C.mg_vectors_count(p)
  if k > count then k = count end
  if k > self._cap then
    self._rows = ffi.new("uint32_t[?]", k)
    self._scores = ffi.new("float[?]", k)
    self._cap = k
  end
  local words, nbits = nil, 0
  if allow then words, nbits = allow:ptr(), allow.n end
  if C.mg_vectors_search(p, f, k, words, nbits, self._rows, self._scores, nbuf, errbuf) ~= 0 then
    return nil, ffi.string(errbuf[0])
  end
  local out, rows, scores = {}, self._rows, self._scores
  for i = 0, tonumber(nbuf[0]) - 1 do
    out[i + 1] = { row = tonumber(rows[i]), score = tonumber(scores[i]) }
  end
  return out
end

-- vs:get(row) -> array of numbers (dequantized for int8)
function Store:get(row)
  local p = handle(self)
  if type(row) ~= "number" or row < 0 or row % 1 ~= 0 or row >= C.mg_vectors_count(p) then
    error("row out of range", 2)
  end
  local buf = self._v
  C.mg_vectors_get(p, row, buf)
  local out = {}
  for i = 0, self._dim - 1 do out[i + 1] = tonumber(buf[i]) end
  return out
end

function Store:count() return tonumber(C.mg_vectors_count(handle(self))) end
function Store:dim() return tonumber(C.mg_vectors_dim(handle(self))) end
function Store:quant() return QUANT_NAME[C.mg_vectors_quant(handle(self))] end

function Store:reserve(n)
  local p = handle(self)
  if type(n) ~= "number" or n < 0 or n % 1 ~= 0 then error("n must be a non-negative integer", 2) end
  if C.mg_vectors_reserve(p, n, errbuf) ~= 0 then return nil, ffi.string(errbuf[0]) end
  return true
end

-- vs:save(path) -> true | nil, err (written aside, then renamed)
function Store:save(path)
  local p = handle(self)
  if type(path) ~= "string" then error("path must be a string", 2) end
  if C.mg_vectors_save(p, path, errbuf) ~= 0 then return nil, ffi.string(errbuf[0]) end
  return true
end

function Store:close()
  local p = self._p
  if p ~= nil then
    self._p = nil
    C.mg_vectors_free(ffi.gc(p, nil))
  end
end

M.Store = Store
return M
