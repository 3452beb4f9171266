-- TEMPORARY stand-in for moongate.simhash (C, retrieval-core) until it lands: 64-bit SimHash
-- over word bigrams of analyzer terms. Deleted once moongate.simhash exists.
local ffi = require "ffi"
local bit = require "bit"
local analyzer = require "moongate.analyzer"
local M = {}
local function fnv64(s)
  local h = ffi.new("uint64_t", 0xcbf29ce484222325ULL)
  for i = 1, #s do h = bit.bxor(h, s:byte(i)) * 0x100000001b3ULL end
  return h
end
function M.hash(text)
  local terms = analyzer.terms(text, { stem = false, stopwords = false })
  local acc = {}
  for b = 0, 63 do acc[b] = 0 end
  local n = #terms
  for i = 1, math.max(n - 1, n == 1 and 1 or 0) do
    local h = fnv64(terms[i] .. " " .. (terms[i + 1] or ""))
    for b = 0, 63 do
      if bit.band(bit.rshift(h, b), 1ULL) ~= 0ULL then acc[b] = acc[b] + 1 else acc[b] = acc[b] - 1 end
    end
  end
  local out = ffi.new("uint64_t", 0)
  for b = 0, 63 do if acc[b] > 0 then out = bit.bor(out, bit.lshift(1ULL, b)) end end
  return out
end
function M.distance(a, b)
  local x = bit.bxor(a, b)
  local c = 0
  while x ~= 0ULL do x = bit.band(x, x - 1); c = c + 1 end
  return c
end
return M
