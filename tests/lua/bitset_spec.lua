-- moongate.bitset: allow lists for bm25 and vector searches.
local bitset = require "moongate.bitset"
local jit_check = require "moongate.jit_check"

describe("bitset", function()
  it("sets, clears, gets and counts bits", function()
    local s = bitset.new(130)
    assert.are.equal(0, s:count())
    s:set(0):set(63):set(64):set(129)
    assert.is_true(s:get(63))
    assert.is_true(s:get(129))
    assert.is_false(s:get(1))
    assert.are.equal(4, s:count())
    s:clear(63)
    assert.is_false(s:get(63))
    assert.are.equal(3, s:count())
    assert.are.equal(130, s:size())
  end)

  it("fill sets exactly n bits", function()
    local s = bitset.new(70):fill(true)
    assert.are.equal(70, s:count())
    assert.are.equal(0, s:fill(false):count())
    assert.are.equal(0, bitset.new(0):count())
  end)

  it("raises on out of range indexes and bad sizes", function()
    local s = bitset.new(10)
    assert.has_error(function() s:set(10) end, "bit index out of range")
    assert.has_error(function() s:get(-1) end, "bit index out of range")
    assert.has_error(function() s:set(1.5) end, "bit index out of range")
    assert.has_error(function() bitset.new(-1) end, "bitset size must be an integer in [0, 2^32)")
  end)
end)

describe("bitset under the JIT", function()
  it("a set/get loop compiles to a trace without NYI or stitch", function()
    local s = bitset.new(5000)
    local n = 0
    local log = jit_check.trace_log(function()
      for i = 0, 4999 do
        if i % 3 == 0 then s:set(i) end
        if s:get(i) then n = n + 1 end
      end
    end)
    assert.are.equal(1667, n)
    assert.are.equal(1667, s:count())
    assert.matches("bitset_spec.lua:%d+ loop%]", log)
    assert.is_nil(log:find("NYI", 1, true), log)
    assert.is_nil(log:find("stitch", 1, true), log)
  end)
end)
