-- moongate.pii: each detector on what it must find and on the look-alikes it must not.
local pii = require "moongate.pii"

local function found(text)
  local out = {}
  for _, f in ipairs(pii.scan(text)) do out[#out + 1] = f.type .. "=" .. f.text end
  return out
end

describe("moongate.pii", function()
  it("emails", function()
    assert.are.same({ "email=jane.doe+billing@example.co.uk" }, found("Write to jane.doe+billing@example.co.uk."))
    assert.are.same({}, found("the @mention and user@localhost"))
  end)

  it("payment cards: Luhn-checked, known issuers, printed groups", function()
    assert.are.same({ "card=4111 1111 1111 1111" }, found("card 4111 1111 1111 1111 exp 12/27"))
    assert.are.same({ "card=5500-0000-0000-0004" }, found("MC 5500-0000-0000-0004"))
    assert.are.same({ "card=378282246310005" }, found("amex 378282246310005"))
    assert.are.same({}, found("order 4111 1111 1111 1112"))          -- fails Luhn
    assert.are.same({}, found("tracking 1Z999AA10123456784"))
    assert.are.same({}, found("ISBN 978-0-306-40615-7"))
  end)

  it("IBANs: country length and mod 97", function()
    assert.are.same({ "iban=GB82 WEST 1234 5698 7654 32" }, found("pay to GB82 WEST 1234 5698 7654 32 today"))
    assert.are.same({ "iban=DE89370400440532013000" }, found("IBAN DE89370400440532013000"))
    assert.are.same({}, found("GB82 WEST 1234 5698 7654 33"))         -- bad checksum
  end)

  it("US SSNs with the allocation rules", function()
    assert.are.same({ "ssn=123-45-6789" }, found("SSN 123-45-6789"))
    assert.are.same({}, found("000-12-3456 666-12-3456 900-12-3456 123-00-4567 123-45-0000"))
  end)

  it("IPv4 and IPv6 addresses", function()
    assert.are.same({ "ip=192.168.10.4" }, found("from 192.168.10.4."))
    assert.are.same({ "ip=2001:db8::8a2e:370:7334" }, found("peer 2001:db8::8a2e:370:7334 closed"))
    assert.are.same({ "ip=fe80::1" }, found("link fe80::1"))
    assert.are.same({}, found("version 1.2.3.4.5, 999.1.1.1, at 10:30:15"))
  end)

  it("phone numbers in international formats, not dates or versions", function()
    assert.are.same({ "phone=+44 20 7946 0958" }, found("call +44 20 7946 0958"))
    assert.are.same({ "phone=(415) 555-2671" }, found("or (415) 555-2671"))
    assert.are.same({ "phone=+1-415-555-2671" }, found("us +1-415-555-2671"))
    assert.are.same({ "phone=0049 30 1234567" }, found("de 0049 30 1234567"))
    assert.are.same({}, found("on 2024-01-15, build 10.2.3, order 12345678, price 1 299.00"))
  end)

  it("secrets: API keys, bearer tokens, private keys", function()
    assert.are.same({ "secret=sk-proj-abcdefghijklmnopqrstuvwx" }, found("key sk-proj-abcdefghijklmnopqrstuvwx"))
    assert.are.same({ "secret=AKIAIOSFODNN7EXAMPLE" }, found("aws AKIAIOSFODNN7EXAMPLE"))
    assert.are.same({ "secret=ghp_0123456789abcdefghijklmnopqrstuvwxyz" }, found("gh ghp_0123456789abcdefghijklmnopqrstuvwxyz"))
    assert.are.same({ "secret=eyJhbGciOiJIUzI1NiJ9.e30.abc123def456" },
      found("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc123def456"))
    local pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAK\n-----END RSA PRIVATE KEY-----"
    assert.are.same({ "secret=" .. pem }, found("here: " .. pem .. " done"))
    assert.are.same({}, found("a sk-short key, the task-list"))
  end)

  it("mask, placeholder and restore, refuse", function()
    assert.are.same({ "mail [EMAIL], card [CARD]", 2 },
      { pii.redact("mail a@b.io, card 4111111111111111", { mode = "mask" }) })
    local map = {}
    local s, n = pii.redact("a@b.io wrote to c@d.io and a@b.io", { mode = "placeholder" }, map)
    assert.are.same({ "[EMAIL_1] wrote to [EMAIL_2] and [EMAIL_1]", 3 }, { s, n })
    assert.are.equal("Reply to a@b.io, cc c@d.io [EMAIL_9]", pii.restore("Reply to [EMAIL_1], cc [EMAIL_2] [EMAIL_9]", map))
    local out, err, f = pii.redact("ssn 123-45-6789", { mode = "refuse" })
    assert.are.same({ nil, "pii refused", "ssn" }, { out, err, f[1].type })
    assert.are.same({ "nothing here", 0 }, { pii.redact("nothing here", { mode = "refuse" }) })
  end)

  it("messages in place, text parts included; detectors can be chosen", function()
    local msgs = { { role = "system", content = "Be brief." },
                   { role = "user", content = { { type = "text", text = "I am x@y.org" }, { type = "image_url" } } } }
    assert.are.equal(1, pii.redact_messages(msgs, { mode = "mask" }, nil))
    assert.are.equal("I am [EMAIL]", msgs[2].content[1].text)
    assert.are.same({ "a@b.io 192.168.0.1", 0 }, { pii.redact("a@b.io 192.168.0.1", { mode = "mask", detectors = { "card" } }) })
  end)

  it("a detector of your own", function()
    pii.register("ticket", function(text)
      local out = {}
      for s, e in text:gmatch("()TCK%-%d+()") do out[#out + 1] = { s, e - 1 } end
      return out
    end)
    assert.are.same({ "see [TICKET]", 1 }, { pii.redact("see TCK-4411", { mode = "mask" }) })
  end)

  it("keeps its precision and recall on the labelled set (tests/bench/pii/run prints them)", function()
    local home = require("moongate.base").home
    local score = dofile(home .. "/tests/bench/pii/score.lua")
    local by = score.score(score.load(home .. "/tests/data/pii/labelled.jsonl"))
    assert.are.same({ 360, 0, 0 }, { by.all.tp, by.all.fp, by.all.fn })
  end)
end)
