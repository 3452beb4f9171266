-- The circuit breaker: closed -> open after N failures or a failure rate, half-open probe after the
-- cool-down, closed again on a good probe, open again on a bad one.
local breaker = require "moongate.breaker"

local function clocked(opts)
  local t = { now = 1000 }
  local b = breaker.new(opts, nil, function() return t.now end)
  return b, t
end

describe("breaker", function()
  it("stays closed below the failure threshold", function()
    local b = clocked{ failures = 3, window = 30, cooldown = 10 }
    b:failure("p"); b:failure("p")
    assert.are.same({ true, false }, { b:allow("p") })
    assert.are.equal("closed", b:state("p").state)
    assert.are.equal(2, b:state("p").failures)
  end)

  it("opens after N failures and refuses with the time left", function()
    local b, t = clocked{ failures = 3, window = 30, cooldown = 10 }
    for _ = 1, 3 do b:failure("p") end
    local ok, err, retry_in = b:allow("p")
    assert.is_false(ok)
    assert.are.equal("circuit open", err)
    assert.are.equal(10, retry_in)
    t.now = t.now + 4
    assert.are.same({ false, "circuit open", 6 }, { b:allow("p") })
    assert.are.equal("open", b:state("p").state)
    -- another provider is not affected
    assert.are.same({ true, false }, { b:allow("q") })
  end)

  it("failures outside the window do not add up", function()
    local b, t = clocked{ failures = 3, window = 5, cooldown = 10 }
    b:failure("p"); b:failure("p")
    t.now = t.now + 6
    b:failure("p")
    assert.are.equal("closed", b:state("p").state)
    assert.are.equal(1, b:state("p").failures)
  end)

  it("lets exactly one probe through after the cool-down; a good probe closes it", function()
    local b, t = clocked{ failures = 2, window = 30, cooldown = 10 }
    b:failure("p"); b:failure("p")
    t.now = t.now + 10
    assert.are.equal("half_open", b:state("p").state)
    assert.are.same({ true, true }, { b:allow("p") })
    assert.are.same({ false, "circuit open", 0 }, { b:allow("p") })
    b:success("p", true)
    assert.are.equal("closed", b:state("p").state)
    assert.are.same({ true, false }, { b:allow("p") })
  end)

  it("a failed probe opens the circuit for another cool-down", function()
    local b, t = clocked{ failures = 2, window = 30, cooldown = 10 }
    b:failure("p"); b:failure("p")
    t.now = t.now + 11
    assert.are.same({ true, true }, { b:allow("p") })
    b:failure("p", true)
    assert.are.same({ false, "circuit open", 10 }, { b:allow("p") })
  end)

  it("a probe that never reports lets another through after probe_timeout", function()
    local b, t = clocked{ failures = 1, window = 30, cooldown = 10, probe_timeout = 5 }
    b:failure("p")
    t.now = t.now + 10
    assert.are.same({ true, true }, { b:allow("p") })
    t.now = t.now + 4
    assert.is_false((b:allow("p")))
    t.now = t.now + 2
    assert.are.same({ true, true }, { b:allow("p") })
  end)

  it("opens on the failure rate once the window has enough requests", function()
    local b = clocked{ failures = 100, failure_rate = 0.5, min_requests = 4, window = 30, cooldown = 10 }
    b:success("p"); b:failure("p"); b:success("p")
    assert.are.equal("closed", b:state("p").state)   -- 1 of 3: below both the rate and the minimum
    b:failure("p")                                    -- 2 of 4 = 0.5
    assert.are.equal("open", b:state("p").state)
  end)

  it("reset closes an open circuit", function()
    local b = clocked{ failures = 1 }
    b:failure("p")
    assert.are.equal("open", b:state("p").state)
    b:reset("p")
    assert.are.equal("closed", b:state("p").state)
  end)
end)
