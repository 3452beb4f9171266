-- moongate.simhash: stable fingerprints, tolerant of case and punctuation, close for a
-- small edit and far for unrelated text.
local simhash = require "moongate.simhash"

local base = "an experimental study of a wing in a propeller slipstream was made in order to " ..
  "determine the spanwise distribution of the lift increase due to slipstream at different " ..
  "angles of attack of the wing and at different free stream to slipstream velocity ratios. " ..
  "the results were intended in part as an evaluation basis for different theoretical " ..
  "treatments of this problem."

describe("simhash", function()
  it("gives the same 64-bit fingerprint as the C core", function()
    local h = simhash.hash("the quick brown fox")
    assert.are.equal("cdata", type(h))
    assert.are.equal("2349248450980084", simhash.hex(h))
    assert.is_true(simhash.hash("The QUICK, brown fox!") == h)
    assert.is_true(simhash.parse("2349248450980084") == h)
  end)

  it("measures Hamming distance", function()
    local a = simhash.hash(base)
    local b = simhash.hash((base:gsub("propeller", "airscrew")))
    local c = simhash.hash("simple shear flows of a viscous incompressible fluid between parallel plates")
    local d = simhash.distance(a, b)
    assert.is_true(d > 0 and d <= 10)
    assert.is_true(simhash.distance(a, c) >= 16)
    assert.are.equal(0, simhash.distance(a, a))
    assert.are.equal(64, simhash.distance("0000000000000000", "ffffffffffffffff"))
  end)

  it("empty text hashes to 0; bad arguments raise", function()
    assert.are.equal("0000000000000000", simhash.hex(simhash.hash("")))
    assert.has_error(function() simhash.hash(1) end, "text must be a string")
    assert.has_error(function() simhash.hash("x", { shingle = 0 }) end, "shingle must be an integer within [1, 16]")
    assert.has_error(function() simhash.distance("xyz", 0ULL) end, "fingerprint must be uint64_t cdata or 16 hex digits")
  end)
end)
