-- moongate.simhash: 64-bit SimHash fingerprints of text (over analyzer term shingles) and
-- their Hamming distance, for near-duplicate detection.
local ffi = require "ffi"
local bit = require "bit"
local analyzer = require "moongate.analyzer"

ffi.cdef [[
int mg_simhash_text(struct mg_analyzer *a, const char *text, size_t len, uint32_t shingle,
                    uint64_t *out, const char **err);
int mg_simhash_distance(uint64_t a, uint64_t b);
]]

local C = ffi.C
local M = {}

local errbuf = ffi.new("const char *[1]")
local outbuf = ffi.new("uint64_t[1]")
local u64 = ffi.typeof("uint64_t")

-- simhash.hash(text, {shingle = 3, stem = false, stopwords = false}) -> uint64_t cdata
-- Case, punctuation and Unicode forms do not change the fingerprint (the analyzer folds them).
function M.hash(text, opts)
  if type(text) ~= "string" then error("text must be a string", 2) end
  if opts ~= nil and type(opts) ~= "table" then error("simhash options must be a table", 2) end
  opts = opts or {}
  local shingle = opts.shingle or 3
  if type(shingle) ~= "number" or shingle % 1 ~= 0 or shingle < 1 or shingle > 16 then
    error("shingle must be an integer within [1, 16]", 2)
  end
  local a, err = analyzer.shared({ stem = opts.stem or false, stopwords = opts.stopwords or false }, 2)
  if not a then return nil, err end
  if C.mg_simhash_text(a._p, text, #text, shingle, outbuf, errbuf) ~= 0 then
    return nil, ffi.string(errbuf[0])
  end
  return u64(outbuf[0])
end

local function as_u64(x, level)
  if type(x) == "cdata" then return ffi.cast(u64, x) end
  if type(x) == "string" and #x == 16 and x:match("^%x+$") then
    return u64(tonumber(x:sub(1, 8), 16)) * 4294967296ULL + tonumber(x:sub(9), 16)
  end
  error("fingerprint must be uint64_t cdata or 16 hex digits", level + 1)
end

-- simhash.distance(a, b) -> number of differing bits, 0..64 (cdata or hex strings)
function M.distance(a, b)
  return C.mg_simhash_distance(as_u64(a, 2), as_u64(b, 2))
end

-- simhash.hex(h) -> 16 lower-case hex digits (for storage); simhash.parse(s) -> uint64_t
function M.hex(h)
  return bit.tohex(ffi.cast("int64_t", as_u64(h, 2)), 16)
end

function M.parse(s)
  return as_u64(s, 2)
end

return M
