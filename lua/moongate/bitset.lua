-- moongate.bitset: fixed-size 0-based bitsets, used as allow lists for bm25 and vector
-- searches (the C scan tests bit i as word i/64, bit i%64; stored as 32-bit words here).
local ffi = require "ffi"
local bit = require "bit"

ffi.cdef [[
size_t mg_bitset_count(const uint64_t *words, size_t nbits);
]]

local C = ffi.C
local band, bor, bnot, lshift, rshift = bit.band, bit.bor, bit.bnot, bit.lshift, bit.rshift
local M = {}

local Bitset = {}
Bitset.__index = Bitset

-- bitset.new(n) -> a set of n bits, all clear
function M.new(n)
  if type(n) ~= "number" or n < 0 or n % 1 ~= 0 or n >= 2 ^ 32 then
    error("bitset size must be an integer in [0, 2^32)", 2)
  end
  local nwords = math.ceil(n / 64) * 2
  return setmetatable({ n = n, words = ffi.new("uint32_t[?]", nwords + 2) }, Bitset)
end

local function check(self, i)
  if type(i) ~= "number" or i < 0 or i >= self.n or i % 1 ~= 0 then
    error("bit index out of range", 3)
  end
end

function Bitset:set(i)
  check(self, i)
  local w = rshift(i, 5)
  self.words[w] = bor(self.words[w], lshift(1, band(i, 31)))
  return self
end

function Bitset:clear(i)
  check(self, i)
  local w = rshift(i, 5)
  self.words[w] = band(self.words[w], bnot(lshift(1, band(i, 31))))
  return self
end

function Bitset:get(i)
  check(self, i)
  return band(rshift(self.words[rshift(i, 5)], band(i, 31)), 1) == 1
end

-- Sets every bit (true) or clears every bit (false).
function Bitset:fill(on)
  local nwords = math.ceil(self.n / 64) * 2
  ffi.fill(self.words, nwords * 4, on and 0xff or 0)
  return self
end

function Bitset:count()
  return tonumber(C.mg_bitset_count(self:ptr(), self.n))
end

function Bitset:size() return self.n end

-- The words as the C ABI takes them.
function Bitset:ptr()
  return ffi.cast("const uint64_t *", self.words)
end

function M.is(x)
  return getmetatable(x) == Bitset
end

return M
