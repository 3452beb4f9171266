-- moongate.crypto: SHA-256 (FIPS 180-2 vectors), HMAC-SHA256 (RFC 4231 vectors), random bytes,
-- constant-time equality, hex and base64url (RFC 4648 vectors).
local crypto = require "moongate.crypto"

local function unhex(h)
  return (h:gsub("%x%x", function(b) return string.char(tonumber(b, 16)) end))
end

describe("moongate.crypto", function()
  it("hashes the FIPS 180-2 SHA-256 vectors", function()
    assert.equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", crypto.sha256_hex("abc"))
    assert.equal("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
      crypto.sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))
    assert.equal("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
      crypto.sha256_hex(string.rep("a", 1000000)))
    assert.equal("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", crypto.sha256_hex(""))
  end)

  it("returns the raw 32-byte digest from sha256", function()
    local d = crypto.sha256("abc")
    assert.equal(32, #d)
    assert.equal(unhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"), d)
    assert.equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", crypto.hex(d))
  end)

  it("computes the RFC 4231 HMAC-SHA256 vectors", function()
    local cases = {
      { string.rep("\11", 20), "Hi There",
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7" },
      { "Jefe", "what do ya want for nothing?",
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843" },
      { string.rep("\170", 20), string.rep("\221", 50),
        "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe" },
      { unhex("0102030405060708090a0b0c0d0e0f10111213141516171819"), string.rep("\205", 50),
        "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b" },
      { string.rep("\170", 131), "Test Using Larger Than Block-Size Key - Hash Key First",
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54" },
      { string.rep("\170", 131), "This is a test using a larger than block-size key and a larger than "
        .. "block-size data. The key needs to be hashed before being used by the HMAC algorithm.",
        "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2" },
    }
    for i, c in ipairs(cases) do
      assert.equal(c[3], crypto.hex(crypto.hmac_sha256(c[1], c[2])), "RFC 4231 test case " .. i)
    end
    -- test case 5 is truncated to 128 bits
    assert.equal("a3b6167473100ee06e0c796c2955552b",
      crypto.hex(crypto.hmac_sha256(string.rep("\12", 20), "Test With Truncation")):sub(1, 32))
  end)

  it("accepts an empty HMAC key and keeps every byte of binary data", function()
    assert.equal("b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad",
      crypto.hex(crypto.hmac_sha256("", "")))
    assert.are_not.equal(crypto.sha256("a\0b"), crypto.sha256("a\0c"))
  end)

  it("encodes hex", function()
    assert.equal("", crypto.hex(""))
    assert.equal("00ff10ab", crypto.hex("\0\255\16\171"))
    assert.equal(2000, #crypto.hex(string.rep("x", 1000)))
  end)

  it("encodes the RFC 4648 base64 vectors in the URL alphabet without padding", function()
    local cases = { [""] = "", f = "Zg", fo = "Zm8", foo = "Zm9v", foob = "Zm9vYg", fooba = "Zm9vYmE",
      foobar = "Zm9vYmFy" }
    for input, want in pairs(cases) do assert.equal(want, crypto.base64url(input)) end
    assert.equal("-_8", crypto.base64url("\251\255"))   -- "+/8=" in the standard alphabet
    assert.equal(32, #crypto.base64url(string.rep("\0", 24)))
  end)

  it("returns n random bytes, different each call", function()
    assert.equal("", crypto.random(0))
    local a, b = crypto.random(32), crypto.random(32)
    assert.equal(32, #a)
    assert.are_not.equal(a, b)
    assert.equal(100000, #crypto.random(100000))   -- beyond getrandom's single-call size
    -- every byte value shows up in a large sample (a stuck or truncated source would not)
    local seen, n = {}, 0
    for c in crypto.random(65536):gmatch(".") do
      if not seen[c] then seen[c] = true; n = n + 1 end
    end
    assert.equal(256, n)
  end)

  it("compares in constant time and says unequal for different lengths", function()
    assert.is_true(crypto.equal("", ""))
    assert.is_true(crypto.equal("secret", "secret"))
    assert.is_false(crypto.equal("secret", "secreT"))
    assert.is_false(crypto.equal("Secret", "secret"))
    assert.is_false(crypto.equal("secret", "secret!"))
    assert.is_false(crypto.equal("a\0b", "a\0c"))
  end)

  it("raises for arguments of the wrong type", function()
    assert.has_error(function() crypto.sha256(nil) end, "data must be a string")
    assert.has_error(function() crypto.hmac_sha256(1, "x") end, "key must be a string")
    assert.has_error(function() crypto.random(-1) end, "n must be an integer >= 0")
    assert.has_error(function() crypto.random(1.5) end, "n must be an integer >= 0")
    assert.has_error(function() crypto.equal("a", nil) end, "b must be a string")
  end)
end)
