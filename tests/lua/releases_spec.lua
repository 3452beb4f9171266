-- moongate.releases: the release table checked at load, the shared per-second window, and the
-- verdict that rolls a canary back, on exact values.
local releases = require "moongate.releases"
local shared = require "moongate.shared"

describe("releases.compile", function()
  it("fills the defaults", function()
    local set = assert(releases.compile { releases = { r1 = { flag = "f", candidate = "p.lua" } } })
    local r = set.by_name.r1
    assert.same({ 60, 50, 0.05, 5 }, { r.window, r.min_requests, r.max_error_rate, r.check_every })
    assert.is_nil(r.max_p95_ratio)
    assert.is_nil((releases.compile {}))
  end)

  it("says what is wrong", function()
    local function why(r) return select(2, releases.compile { releases = r }) end
    assert.equal("release a: flag must name a flag of the flags file", why { a = { candidate = "p.lua" } })
    assert.equal("release a: candidate must be a routing policy file", why { a = { flag = "f" } })
    assert.equal("release a: window must be a number > 0", why { a = { flag = "f", candidate = "p", window = 0 } })
    assert.equal("release a: max_error_rate is a share, from 0 to 1",
      why { a = { flag = "f", candidate = "p", max_error_rate = 5 } })
    assert.equal("release a: unknown field 'windw' (expected flag, candidate, window, min_requests, max_error_rate, " ..
      "max_p95_ratio, check_every, shadow)", why { a = { flag = "f", candidate = "p", windw = 3 } })
    assert.equal("release name 'a b' must be letters, digits, _ or -", why { ["a b"] = { flag = "f", candidate = "p" } })
  end)
end)

describe("releases.window and verdict", function()
  before_each(function() shared.dict("releases").flush_all() end)

  local rel = { name = "spec", window = 10, min_requests = 20, max_error_rate = 0.1, max_p95_ratio = 2 }

  it("sums the window's requests, errors and p95 bucket", function()
    for i = 1, 40 do releases.record(rel, "control", 200, 0.004) end
    for i = 1, 30 do releases.record(rel, "candidate", i <= 9 and 502 or 200, i <= 2 and 0.2 or 0.004) end
    local c, k = releases.window(rel, "control"), releases.window(rel, "candidate")
    assert.same({ 40, 0, 0, 0.005 }, { c.requests, c.errors, c.error_rate, c.p95 })
    assert.same({ 30, 9, 0.3, 0.25 }, { k.requests, k.errors, k.error_rate, k.p95 })
    assert.equal("canary error rate 30.0% (9 of 30) vs control 0.0% (0 of 40) over 10s, more than 10.0 points worse",
      releases.verdict(rel, c, k))
  end)

  it("waits for enough requests in both variants", function()
    local c = { requests = 100, errors = 0, error_rate = 0, p95 = 0.01 }
    assert.is_nil(releases.verdict(rel, c, { requests = 19, errors = 19, error_rate = 1, p95 = 1 }))
    assert.is_nil(releases.verdict(rel, c, { requests = 50, errors = 5, error_rate = 0.1, p95 = 0.01 }))
    assert.equal("canary p95 50 ms vs control 10 ms over 10s, more than 2.00x",
      releases.verdict(rel, c, { requests = 50, errors = 0, error_rate = 0, p95 = 0.05 }))
  end)

  it("rolls back once, whoever asks first", function()
    local r = { name = "once", version = "v1", candidate = "c.lua", window = 10 }
    assert.is_nil(releases.killed(r))
    assert.is_true(releases.roll_back(r, "because"))
    assert.is_false(releases.roll_back(r, "again"))
    assert.equal("because", releases.killed(r))
    r.version = "v2"
    assert.is_nil(releases.killed(r))
  end)
end)
