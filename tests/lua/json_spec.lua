-- moongate.json: exact outputs for the cases where a plain cJSON binding gets it wrong.
local json = require "moongate.json"
local ffi = require "ffi"

describe("moongate.json", function()
  describe("encode", function()
    it("prints scalars", function()
      assert.equal("true", json.encode(true))
      assert.equal("false", json.encode(false))
      assert.equal("null", json.encode(json.null))
      assert.equal("null", json.encode(nil))
      assert.equal('"hi"', json.encode("hi"))
      assert.equal("0", json.encode(0))
      assert.equal("-0", json.encode(-0.0))
      assert.equal("42", json.encode(42))
      assert.equal("-7", json.encode(-7))
    end)

    it("prints floats in the shortest form that round-trips", function()
      assert.equal("0.30000000000000004", json.encode(0.1 + 0.2))
      assert.equal("0.1", json.encode(0.1))
      assert.equal("1.5", json.encode(1.5))
      assert.equal("3.141592653589793", json.encode(math.pi))
      assert.equal("1e+300", json.encode(1e300))
      assert.equal("5e-324", json.encode(5e-324))
      assert.equal("1e+20", json.encode(1e20))
      assert.equal("0.1", json.encode(json.decode("0.1")))
    end)

    it("prints integers exactly, including 2^53 and int64 cdata", function()
      assert.equal("9007199254740992", json.encode(2 ^ 53))
      assert.equal("-9007199254740992", json.encode(-2 ^ 53))
      assert.equal("-9223372036854775808", json.encode(-2 ^ 63))   -- int64's least, a double too
      assert.equal("9.223372036854776e+18", json.encode(2 ^ 63))    -- past int64: a double
      assert.equal("9007199254740993", json.encode(ffi.new("int64_t", 9007199254740992LL + 1)))
      assert.equal("-9223372036854775808", json.encode(-9223372036854775807LL - 1))
      assert.equal("18446744073709551615", json.encode(18446744073709551615ULL))
      assert.equal("[1,9223372036854775807]", json.encode({ 1, 9223372036854775807LL }))
      -- other number cdata print as numbers
      assert.equal("[5,1.5,0.10000000149011612]",
        json.encode({ ffi.new("int32_t", 5), ffi.new("double", 1.5), ffi.new("float", 0.1) }))
    end)

    it("refuses nan and inf", function()
      local s, err = json.encode(0 / 0)
      assert.is_nil(s)
      assert.equal("cannot encode nan", err)
      s, err = json.encode({ x = math.huge })
      assert.is_nil(s)
      assert.equal("cannot encode inf", err)
      s, err = json.encode({ -math.huge })
      assert.equal("cannot encode inf", err)
    end)

    it("escapes strings and keeps \\u0000", function()
      assert.equal('"a\\u0000b"', json.encode("a\0b"))
      assert.equal('"\\"\\\\\\n\\r\\t\\b\\f\\u0001\\u001f/"', json.encode('"\\\n\r\t\b\f\1\31/'))
      assert.equal('"h\195\169llo \226\130\172 \240\159\152\128"', json.encode("h\195\169llo \226\130\172 \240\159\152\128"))
    end)

    it("replaces invalid UTF-8 with \\ufffd, never emitting invalid JSON", function()
      assert.equal('"\\ufffd"', json.encode("\255"))
      assert.equal('"a\\ufffdb"', json.encode("a\128b"))
      -- truncated 3-byte sequence: one replacement for the maximal ill-formed prefix
      assert.equal('"\\ufffdx"', json.encode("\226\130x"))
      -- overlong encoding of '/' and a UTF-16 surrogate encoded in UTF-8
      assert.equal('"\\ufffd\\ufffd"', json.encode("\192\175"))
      assert.equal('"\\ufffd\\ufffd\\ufffd"', json.encode("\237\160\128"))
      -- beyond U+10FFFF
      assert.equal('"\\ufffd\\ufffd\\ufffd\\ufffd"', json.encode("\244\144\128\128"))
      -- a string cut in the middle of a code point
      assert.equal('"ab\\ufffd"', json.encode("ab\240\159\152"))
    end)

    it("handles long strings across its 64 KiB output segments", function()
      for _, pre in ipairs({ 65533, 65534, 65535, 65536 }) do
        for _, piece in ipairs({ "\240\159\152\128", "\226\130\172", "\0", '"' }) do
          local s = string.rep("a", pre) .. piece .. string.rep("b", 70000) .. piece
          assert.equal(s, json.decode(assert(json.encode(s))))
        end
        local s = string.rep("a", pre) .. "\255" .. string.rep("b", 10) .. "\240\159"
        assert.equal(string.rep("a", pre) .. "\239\191\189" .. string.rep("b", 10) .. "\239\191\189",
          json.decode(assert(json.encode(s))))
      end
    end)

    it("prints arrays, objects and the empty-table marks", function()
      assert.equal("[1,2,3]", json.encode({ 1, 2, 3 }))
      assert.equal('{"a":1}', json.encode({ a = 1 }))
      assert.equal("{}", json.encode({}))
      assert.equal("[]", json.encode(json.array()))
      assert.equal("[]", json.encode(json.array({})))
      assert.equal("{}", json.encode(json.object({})))
      assert.equal('{"1":"a","2":"b"}', json.encode(json.object({ "a", "b" })))
      assert.equal('[[],{},[null,false]]', json.encode({ json.array(), {}, { json.null, false } }))
      assert.equal('{"k":[{"x":"y"}]}', json.encode({ k = { { x = "y" } } }))
    end)

    it("refuses sparse arrays, mixed tables and unencodable values", function()
      local s, err = json.encode({ 1, nil, 3 })
      assert.is_nil(s)
      assert.equal("cannot encode sparse array", err)
      s, err = json.encode({ [2] = "x" })
      assert.equal("cannot encode sparse array", err)
      s, err = json.encode({ 1, 2, x = 3 })
      assert.is_nil(s)
      assert.matches("mixed table", err)
      s, err = json.encode({ x = 3, [1] = 2 })
      assert.matches("mixed table", err)
      s, err = json.encode({ [1.5] = 1 })
      assert.equal("cannot encode array with non-integer keys", err)
      s, err = json.encode({ f = print })
      assert.equal("cannot encode function", err)
      s, err = json.encode(ffi.new("char *"))
      assert.equal("cannot encode cdata", err)
      s, err = json.encode({ ffi.new("uint8_t[4]") })
      assert.equal("cannot encode cdata", err)
      s, err = json.encode(json.array({ a = 1 }))
      assert.equal("cannot encode array with non-integer keys", err)
    end)

    it("stops at depth 1000 and on cycles", function()
      local t = {}
      t.self = t
      local s, err = json.encode(t)
      assert.is_nil(s)
      assert.matches("nesting too deep", err)
      local deep = {}
      local cur = deep
      for _ = 1, 999 do
        cur[1] = {}
        cur = cur[1]
      end
      assert.is_string(json.encode(deep)) -- 1000 levels
      cur[1] = {}
      s, err = json.encode(deep)
      assert.is_nil(s)
      assert.matches("nesting too deep", err)
    end)
  end)

  describe("decode", function()
    it("reads scalars", function()
      assert.equal(true, json.decode("true"))
      assert.equal(false, json.decode(" false "))
      assert.equal(json.null, json.decode("null"))
      assert.equal("x", json.decode('"x"'))
      assert.equal(12, json.decode("12"))
      assert.equal(-0.5, json.decode("-5e-1"))
      assert.equal(1e300, json.decode("1E+300"))
      assert.equal(0.30000000000000004, json.decode("0.30000000000000004"))
    end)

    it("reads floats as the nearest double, like tonumber", function()
      for _, s in ipairs({ "0.1", "0.30000000000000004", "1e22", "1e23", "1e-22", "1e-23", "100e-2",
        "123456789012345e-22", "9007199254740993.0", "1.7976931348623157e308", "5e-324",
        "2.2250738585072014e-308", "-0.0069292834", "3.14159265358979323846264338327950288" }) do
        assert.equal(tonumber(s), json.decode(s))
      end
      assert.equal(1 / -math.huge, json.decode("-0.0")) -- -0 keeps its sign
      assert.equal("-0", json.encode(json.decode("-0.0")))
    end)

    it("round-trips random doubles exactly", function()
      local u = ffi.new("union { uint64_t u; double d; }")
      math.randomseed(42)
      for _ = 1, 20000 do
        u.u = ffi.cast("uint64_t", math.random(0, 2 ^ 31)) * 4294967296ULL + math.random(0, 2 ^ 32 - 1)
        local d = u.d
        if d == d and d ~= math.huge and d ~= -math.huge then
          local s = json.encode(d)
          assert.equal(d, json.decode(s), s)
        end
      end
    end)

    it("reads integers beyond 2^53 as exact int64 cdata", function()
      assert.equal(9007199254740992, json.decode("9007199254740992"))
      assert.equal("number", type(json.decode("9007199254740992")))
      local v = json.decode("9007199254740993")
      assert.equal("cdata", type(v))
      assert.is_true(ffi.istype("int64_t", v))
      assert.is_true(v == 9007199254740993LL)
      assert.equal("9007199254740993", json.encode(v))
      assert.is_true(json.decode("-9223372036854775808") == -9223372036854775807LL - 1)
      assert.is_true(json.decode("9223372036854775807") == 9223372036854775807LL)
      assert.equal("[9223372036854775807,-9007199254740993]",
        json.encode(json.decode("[9223372036854775807, -9007199254740993]")))
    end)

    it("refuses integers beyond int64 and floats beyond double", function()
      local v, err = json.decode("9223372036854775808")
      assert.is_nil(v)
      assert.equal("number out of range", err)
      v, err = json.decode("[-9223372036854775809]")
      assert.equal("number out of range", err)
      v, err = json.decode("123456789012345678901234567890")
      assert.equal("number out of range", err)
      v, err = json.decode("1e400")
      assert.equal("number out of range", err)
    end)

    it("keeps \\u0000 and decodes escapes and surrogate pairs", function()
      assert.equal("a\0b", json.decode('"a\\u0000b"'))
      assert.equal("a\0b", json.decode(json.encode("a\0b")))
      assert.equal('"\\/\b\f\n\r\t', json.decode('"\\"\\\\\\/\\b\\f\\n\\r\\t"'))
      assert.equal("\195\169", json.decode('"\\u00e9"'))
      assert.equal("\240\159\152\128", json.decode('"\\ud83d\\ude00"'))
      assert.equal("\239\191\189x", json.decode('"\\ud83dx"')) -- lone surrogate -> U+FFFD
      assert.equal("\239\191\189", json.decode('"\\udc00"'))
    end)

    it("marks arrays so that [] and {} round-trip", function()
      assert.equal("[]", json.encode(json.decode("[]")))
      assert.equal("{}", json.encode(json.decode("{}")))
      assert.equal('{"a":[]}', json.encode(json.decode('{"a":[]}')))
      local t = json.decode('{"a":[],"b":[{}]}')
      assert.is_true(json.is_array(t.a))
      assert.is_false(json.is_array(t))
      assert.equal("[{}]", json.encode(t.b))
      assert.same({ 1, json.null, "x" }, json.decode('[1,null,"x"]'))
      assert.equal(3, #json.decode('[1,null,"x"]'))
    end)

    it("reports the byte offset of invalid JSON", function()
      local cases = {
        { '"', "invalid json at byte 2: unterminated string" },
        { '{"a":"', "invalid json at byte 7: unterminated string" },
        { '{"a":1,}', "invalid json at byte 8: expected string key near '}'" },
        { '[1 2]', "invalid json at byte 4: expected ',' or ']' near '2'" },
        { '', "invalid json at byte 1: unexpected end of input" },
        { '   ', "invalid json at byte 4: unexpected end of input" },
        { '{"a" 1}', "invalid json at byte 6: expected ':' near '1'" },
        { 'nul', "invalid json at byte 1: invalid literal near 'n'" },
        { '[1] x', "invalid json at byte 5: trailing garbage after value near 'x'" },
        { '"abc', "invalid json at byte 5: unterminated string" },
        { '"a\nb"', "invalid json at byte 3: control character in string near byte 0x0a" },
        { '"\\x"', "invalid json at byte 2: invalid escape in string near '\\'" },
        { '"\\u12"', "invalid json at byte 2: invalid \\u escape near '\\'" },
        { '01', "invalid json at byte 2: trailing garbage after value near '1'" },
        { '-', "invalid json at byte 2: invalid number" },
        { '1.', "invalid json at byte 3: invalid number" },
        { '.5', "invalid json at byte 1: unexpected character near '.'" },
        { '1e', "invalid json at byte 3: invalid number" },
        { 'NaN', "invalid json at byte 1: unexpected character near 'N'" },
        { '{"a":{"b":[1,2,{"c":tru}]}}', "invalid json at byte 21: invalid literal near 't'" },
      }
      for _, c in ipairs(cases) do
        local v, err = json.decode(c[1])
        assert.is_nil(v)
        assert.equal(c[2], err)
      end
      -- strings are scanned eight bytes at a time: a stop byte at every offset of a word
      for i = 0, 17 do
        local pre = string.rep("a", i)
        assert.equal(pre .. '"' .. pre, json.decode('"' .. pre .. '\\"' .. pre .. '"'))
        assert.equal(pre, json.decode('"' .. pre .. '"' .. string.rep(" ", 9)))
        assert.equal(pre .. "\255\127", json.decode('"' .. pre .. '\255\127"'))
        assert.equal("invalid json at byte " .. (i + 2) .. ": control character in string near byte 0x1f",
          select(2, json.decode('"' .. pre .. '\31' .. pre .. '"')))
      end
    end)

    it("escapes a byte that needs it at every offset of an eight-byte word", function()
      for i = 0, 17 do
        local pre = string.rep("a", i)
        assert.equal('"' .. pre .. '\\"' .. pre .. '"', json.encode(pre .. '"' .. pre))
        assert.equal('"' .. pre .. '\\\\' .. '"', json.encode(pre .. "\\"))
        assert.equal('"' .. pre .. '\\u001f~\127"', json.encode(pre .. "\31~\127"))
        assert.equal('"' .. pre .. 'é\\ufffd' .. pre .. '"', json.encode(pre .. "é\255" .. pre))
      end
    end)

    it("stops at depth 1000", function()
      assert.is_table(json.decode(string.rep("[", 1000) .. string.rep("]", 1000)))
      local v, err = json.decode(string.rep("[", 1001) .. string.rep("]", 1001))
      assert.is_nil(v)
      assert.equal("invalid json at byte 1001: nesting too deep (over 1000 levels) near '['", err)
      v, err = json.decode(string.rep("[", 100000))
      assert.is_nil(v)
      assert.matches("nesting too deep", err)
    end)

    it("raises on a non-string argument (a caller bug)", function()
      assert.has_error(function() json.decode({}) end)
      assert.has_error(function() json.decode() end)
      assert.has_error(function() json.decode(5) end)   -- not read as the string "5"
    end)

    it("round-trips a document", function()
      local doc = '{"model":"gpt-4o","messages":[{"role":"user","content":"h\\u00e9\\u0000"}],' ..
        '"n":1,"temperature":0.7,"stop":[],"meta":{},"id":12345678901234567890}'
      local v, err = json.decode(doc)
      assert.is_nil(v)
      assert.equal("number out of range", err)
      doc = doc:gsub("12345678901234567890", "1234567890123456789")
      v = assert(json.decode(doc))
      local again = assert(json.decode(assert(json.encode(v))))
      assert.same(v, again)
      assert.equal("[]", json.encode(again.stop))
      assert.equal("{}", json.encode(again.meta))
      assert.equal("h\195\169\0", again.messages[1].content)
      assert.equal("1234567890123456789", json.encode(again.id))
      assert.equal(0.7, again.temperature)
    end)
  end)
end)
