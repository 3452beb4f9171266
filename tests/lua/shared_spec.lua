-- moongate.shared: values, TTLs, named dicts, keys and errors (the cross-process test is
-- tests/c/test_shdict.c, and tests/e2e/shared_workers.sh under `moongate serve --workers 2`).
local shared = require "moongate.shared"
local jit_check = require "moongate.jit_check"
local moongate = require "moongate"

-- Wait at least s seconds of wall-clock time (TTLs are measured on CLOCK_MONOTONIC).
local function wait(s)
  local deadline = moongate.now() + s
  repeat moongate.sleep(math.max(deadline - moongate.now(), 0.001)) until moongate.now() >= deadline
end

describe("moongate.shared", function()
  local d
  before_each(function()
    d = shared.dict("spec")
    d.flush_all()
    shared.flush_all()
  end)

  it("stores numbers, strings and booleans", function()
    assert.is_true(shared.set("n", 1.25))
    assert.is_true(shared.set("s", "a\0b"))
    assert.is_true(shared.set("t", true))
    assert.is_true(shared.set("f", false))
    assert.equal(1.25, shared.get("n"))
    assert.equal("a\0b", shared.get("s"))
    assert.equal(true, shared.get("t"))
    assert.equal(false, shared.get("f"))
    assert.is_nil(shared.get("missing"))
    assert.is_true(shared.set("n", "now a string"))
    assert.equal("now a string", shared.get("n"))
    assert.is_true(shared.set("n", nil)) -- nil deletes
    assert.is_nil(shared.get("n"))
  end)

  it("keeps long strings whole", function()
    local big = string.rep("0123456789", 100000) -- 1 MB, beyond the 4 KiB scratch buffer
    assert.is_true(d.set("big", big))
    assert.equal(big, d.get("big"))
  end)

  it("works as d.get(k) and d:get(k)", function()
    assert.is_true(d:set("k", 5))
    assert.equal(5, d.get("k"))
    assert.equal(5, d:get("k"))
    assert.equal(7, d:incr("k", 2))
    assert.equal(8, shared:incr("x", 1, 7))
    assert.equal(8, shared.get("x"))
  end)

  it("keeps named dicts apart", function()
    d.set("k", "in spec")
    shared.set("k", "in default")
    assert.equal("in spec", d.get("k"))
    assert.equal("in default", shared.get("k"))
    assert.equal(d, shared.dict("spec"))
    assert.equal("spec", d.name)
  end)

  it("add only when absent, replace only when present", function()
    assert.is_true(d.add("a", 1))
    local ok, err = d.add("a", 2)
    assert.is_nil(ok)
    assert.equal("exists", err)
    assert.equal(1, d.get("a"))
    ok, err = d.replace("b", 1)
    assert.is_nil(ok)
    assert.equal("not found", err)
    assert.is_true(d.replace("a", 3))
    assert.equal(3, d.get("a"))
  end)

  it("incr: by defaults to 1, init creates, strings refuse", function()
    local v, err = d.incr("c")
    assert.is_nil(v)
    assert.equal("not found", err)
    assert.equal(11, d.incr("c", 1, 10))
    assert.equal(12, d.incr("c"))
    assert.equal(11.5, d.incr("c", -0.5))
    d.set("s", "x")
    v, err = d.incr("s", 1, 0)
    assert.is_nil(v)
    assert.equal("not a number", err)
  end)

  it("incr_capped: adds only what fits under the limit", function()
    local d = shared.dict("capped_spec")
    d.delete("k")
    assert.are.equal(3, d.incr_capped("k", 3, 5, 60))
    assert.are.equal(5, d.incr_capped("k", 2, 5))
    local v, err, cur = d.incr_capped("k", 1, 5)
    assert.is_nil(v); assert.are.equal("limit", err); assert.are.equal(5, cur)
    assert.are.equal(5, d.get("k"))
    v, err, cur = d.incr_capped("fresh", 7, 5, 60)
    assert.is_nil(v); assert.are.equal("limit", err); assert.are.equal(0, cur)
    assert.is_nil(d.get("fresh"))   -- a refused take creates nothing
    d.set("s", "text")
    assert.are.same({ nil, "not a number" }, { d.incr_capped("s", 1, 5) })
  end)

  it("expires keys after their ttl (seconds, as floats)", function()
    d.set("short", "v", 0.05)
    d.set("forever", "v")
    local t = d.ttl("short")
    assert.is_true(t > 0.03 and t <= 0.05)
    assert.equal(0, d.ttl("forever"))
    local none, err = d.ttl("absent")
    assert.is_nil(none)
    assert.equal("not found", err)
    assert.equal(1, d.incr("window", 1, 0, 0.05)) -- ttl applies when incr creates the key
    assert.equal(2, d.incr("window", 1, 0, 10)) -- and an existing key keeps its ttl
    assert.is_true(d.ttl("window") <= 0.05)
    wait(0.08)
    assert.is_nil(d.get("short"))
    assert.is_nil(d.get("window"))
    assert.equal("v", d.get("forever"))
    assert.is_true(d.add("short", "again")) -- an expired key is absent for add
    assert.is_true(d.expire("forever", 0.01))
    wait(0.03)
    assert.is_nil(d.get("forever"))
    none, err = d.expire("forever", 1)
    assert.equal("not found", err)
  end)

  it("lists live keys, optionally by prefix", function()
    for i = 1, 5 do d.set("user:" .. i, i) end
    d.set("other", 1)
    d.set("user:gone", 1, 0.01)
    wait(0.02)
    local keys = d.keys("user:")
    table.sort(keys)
    assert.same({ "user:1", "user:2", "user:3", "user:4", "user:5" }, keys)
    assert.equal(6, #d.keys())
    d.delete("user:1")
    assert.equal(5, #d:keys())
    local many = {}
    for i = 1, 2000 do d.set(("long-key-%05d"):format(i), i) end -- keys beyond one buffer
    for _, k in ipairs(d.keys("long-key-")) do many[#many + 1] = k end
    assert.equal(2000, #many)
  end)

  it("evicts least recently used entries when full, and reports stats", function()
    local s0 = shared.stats()
    assert.is_true(s0.capacity > 0)
    local big = string.rep("x", 64 * 1024)
    local n = math.floor(s0.capacity / #big) * 2
    for i = 1, n do
      assert.is_true(d.set("fill" .. i, big))
      if i % 8 == 0 then d.get("fill1") end -- keep one key hot
    end
    local s1 = shared.stats()
    assert.is_true(s1.evictions > s0.evictions)
    assert.equal(big, d.get("fill1"))
    assert.equal(big, d.get("fill" .. n))
    assert.is_nil(d.get("fill2"))
    d.flush_all()
    local ok, err = d.set("huge", string.rep("y", s0.capacity + 1))
    assert.is_nil(ok)
    assert.equal("value too large", err)
  end)

  it("compiles a get/incr loop into one trace (no NYI, no stitch)", function()
    d.set("s", "abc")
    local x = 0
    local log = jit_check.trace_log(function()
      for _ = 1, 2000 do
        d.incr("n", 1, 0)
        x = x + #d.get("s") + d.get("n")
      end
    end)
    assert.equal(3 * 2000 + 2000 * 2001 / 2, x)
    assert.matches("shared_spec.lua:%d+ loop%]", log)
    assert.is_nil(log:find("NYI", 1, true), log)
    assert.is_nil(log:find("stitch", 1, true), log)
    assert.is_nil(log:find("abort", 1, true), log)
  end)

  it("raises for caller bugs", function()
    assert.has_error(function() d.get(42) end, "shared.get: key must be a string, got number")
    assert.has_error(function() d.set("", 1) end, "shared.set: key must be 1 to 65535 bytes")
    assert.has_error(function() d.set("k", {}) end, "shared.set: value must be a number, string or boolean, got table")
    assert.has_error(function() d.set("k", 1, -1) end, "shared.set: ttl must be a number of seconds >= 0")
    assert.has_error(function() d.incr("k", "1") end, "shared.incr: by must be a number")
    assert.has_error(function() shared.dict(string.rep("n", 48)) end)
    assert.has_error(function() shared.dict(1) end, "shared.dict: name must be a string")
  end)
end)
