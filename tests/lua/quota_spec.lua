-- moongate.quota on the shared-memory backend: exact takes, windows, reconciliation, slots.
local quota = require "moongate.quota"
local moongate = require "moongate"

describe("moongate.quota (shared memory)", function()
  local n = 0
  local function fresh()
    n = n + 1
    return quota.new{ prefix = "spec" .. n .. ":" }
  end

  it("takes while the amount fits, then refuses with what is left and when it resets", function()
    local q = fresh()
    local ok, rem, reset = q:take("k", 400, 1000, 60)
    assert.is_true(ok); assert.are.equal(600, rem)
    assert.is_true(reset > 0 and reset <= 60)
    ok, rem = q:take("k", 600, 1000, 60)
    assert.is_true(ok); assert.are.equal(0, rem)
    ok, rem = q:take("k", 1, 1000, 60)
    assert.is_false(ok); assert.are.equal(0, rem)
    assert.are.equal(1000, (q:get("k", 60)))
  end)

  it("refuses an amount that would not fit, and leaves the counter alone", function()
    local q = fresh()
    assert.is_true((q:take("t", 900, 1000, 60)))
    local ok, rem = q:take("t", 200, 1000, 60)
    assert.is_false(ok); assert.are.equal(100, rem)
    assert.is_true((q:take("t", 100, 1000, 60)))
  end)

  it("add reconciles past the limit; the next take is refused", function()
    local q = fresh()
    assert.is_true((q:take("o", 10, 100, 60)))
    assert.are.equal(130, q:add("o", 120, 60))
    local ok, rem = q:take("o", 1, 100, 60)
    assert.is_false(ok); assert.are.equal(-30, rem)
  end)

  it("a new window starts from zero", function()
    local q = fresh()
    assert.is_true((q:take("w", 1, 1, 1)))
    assert.is_false((q:take("w", 1, 1, 1)))
    local _, reset = q:get("w", 1)
    moongate.sleep(reset + 0.02)
    assert.is_true((q:take("w", 1, 1, 1)))
  end)

  it("concurrency slots: acquire up to the limit, release gives one back", function()
    local q = fresh()
    assert.are.same({ true, 1 }, { q:acquire("c", 2) })
    assert.are.same({ true, 2 }, { q:acquire("c", 2) })
    assert.are.same({ false, 2 }, { q:acquire("c", 2) })
    q:release("c")
    assert.are.same({ true, 2 }, { q:acquire("c", 2) })
    q:release("c"); q:release("c"); q:release("c")
    assert.are.same({ true, 1 }, { q:acquire("c", 2) })   -- never below zero
  end)

  it("reserve takes all of a request's limits or none, and says which one refused", function()
    local q = fresh()
    local ops = { { kind = "take", key = "r", amount = 1, limit = 2, window = 60 },
                  { kind = "slot", key = "s", limit = 5 },
                  { kind = "take", key = "i", amount = 30, limit = 50, window = 60 } }
    local ok, res = q:reserve(ops)
    assert.is_true(ok)
    assert.are.same({ 1, 4, 20 }, { res[1][1], res[2][1], res[3][1] })
    local ok2, i, res2 = q:reserve(ops)
    assert.are.same({ false, 3, 20 }, { ok2, i, res2[3][1] })
    assert.are.same({ 1, 4 }, { res2[1][1], res2[2][1] })   -- what the earlier limits have left
    assert.are.equal(1, (q:get("r", 60)))                   -- the refused request took nothing
    assert.is_true(q:settle{ { kind = "add", key = "i", amount = -30, window = 60 }, { kind = "release", key = "s" } })
    assert.are.equal(0, (q:get("i", 60)))
    assert.are.same({ true, 1 }, { q:acquire("s", 5) })       -- its slot was given back too
  end)

  it("a url that is not redis is refused", function()
    assert.are.same({ nil, "quota backend: redis url must start with redis:// or unix:// (got 'http://x')" },
      { quota.new{ url = "http://x" } })
  end)
end)
