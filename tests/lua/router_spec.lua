-- The router: weighted ordering of tiers, and running a plan against fake attempts with a fake
-- clock: fallback order, attempt cap, backoff, Retry-After, breakers, deadline, final status.
local router = require "moongate.router"
local breaker = require "moongate.breaker"

-- A fake world: a clock that only moves when attempts take time or the router sleeps.
local function world(script)
  local w = { t = 0, calls = {}, slept = {} }
  w.now = function() return w.t end
  w.sleep = function(s) w.slept[#w.slept + 1] = s; w.t = w.t + s end
  w.attempt = function(tier, budget, n)
    w.calls[#w.calls + 1] = tier.provider
    local step = script[tier.provider]
    local r = type(step) == "function" and step(budget, w) or step
    if type(r) == "table" and r.fail then
      w.t = w.t + (r.took or 0)
      return nil, r.fail
    end
    w.t = w.t + (type(r) == "table" and r.took or 0)
    return { from = tier.provider }
  end
  w.opts = function(extra)
    local o = { now = w.now, sleep = w.sleep, max_attempts = 4, backoff = 0.05, backoff_max = 1,
                rand = function() return 1 end }
    for k, v in pairs(extra or {}) do o[k] = v end
    return o
  end
  return w
end

local function tiers(...)
  local out = {}
  for i, p in ipairs{ ... } do out[i] = { provider = p, timeout = 1 } end
  return { tiers = out }
end

local F503 = { fail = { status = 503, kind = "retry", reason = "status", message = "down" } }

describe("router.weighted_order", function()
  it("keeps unweighted tiers in place and draws weighted groups by weight", function()
    local ts = { { provider = "a" }, { provider = "b", weight = 3 }, { provider = "c", weight = 1 },
                 { provider = "z" } }
    local seq = { 0.9, 0.0 }   -- 0.9*4=3.6 -> past b's 3 -> c first; then b
    local i = 0
    local out = router.weighted_order(ts, function() i = i + 1; return seq[i] end)
    assert.are.same({ "a", "c", "b", "z" }, { out[1].provider, out[2].provider, out[3].provider, out[4].provider })
    i = 0; seq = { 0.5, 0.0 }
    out = router.weighted_order(ts, function() i = i + 1; return seq[i] end)
    assert.are.same({ "a", "b", "c", "z" }, { out[1].provider, out[2].provider, out[3].provider, out[4].provider })
  end)

  it("picks in proportion to the weights", function()
    local ts = { { provider = "b", weight = 3 }, { provider = "c", weight = 1 } }
    local first = { b = 0, c = 0 }
    math.randomseed(7)
    for _ = 1, 4000 do
      local p = router.weighted_order(ts)[1].provider
      first[p] = first[p] + 1
    end
    assert.is_true(first.b > 2700 and first.b < 3300, "b first " .. first.b .. " of 4000")
  end)

  it("drops zero-weight tiers", function()
    local out = router.weighted_order{ { provider = "b", weight = 0 }, { provider = "c", weight = 1 } }
    assert.are.equal(1, #out)
    assert.are.equal("c", out[1].provider)
  end)
end)

describe("router.run", function()
  it("answers from the first tier that works", function()
    local w = world{ a = F503, b = {} }
    local r, info = router.run(tiers("a", "b"), w.attempt, w.opts())
    assert.are.equal("b", r.from)
    assert.are.equal(2, info.attempts)
    assert.are.same({ "a", "b" }, w.calls)
    assert.are.same({}, w.slept)   -- moving to another tier does not wait
  end)

  it("502 with the last message when every tier fails", function()
    local w = world{ a = F503, b = F503 }
    local r, f = router.run(tiers("a", "b"), w.attempt, w.opts())
    assert.is_nil(r)
    assert.are.equal(502, f.status)
    assert.are.equal("upstream_error", f.code)
    assert.are.equal("every provider failed; last: down", f.message)
    assert.are.equal(2, f.attempts)
  end)

  it("retries a tier with attempts > 1, backing off, within the attempt cap", function()
    local w = world{ a = F503 }
    local plan = { tiers = { { provider = "a", attempts = 10 } } }
    local _, f = router.run(plan, w.attempt, w.opts{ max_attempts = 3 })
    assert.are.equal(3, #w.calls)
    assert.are.equal(3, f.attempts)
    assert.are.same({ 0.05, 0.1 }, w.slept)
  end)

  it("429 everywhere is a 429 with the shortest Retry-After", function()
    local w = world{
      a = { fail = { status = 429, kind = "retry", retry_after = 7 } },
      b = { fail = { status = 429, kind = "retry", retry_after = 2.2 } },
    }
    local _, f = router.run(tiers("a", "b"), w.attempt, w.opts())
    assert.are.equal(429, f.status)
    assert.are.equal(3, f.retry_after)
    assert.are.equal("rate_limited", f.code)
  end)

  it("waits Retry-After before retrying the same tier, unless it is too long", function()
    local w = world{ a = { fail = { status = 429, kind = "retry", retry_after = 2 } } }
    local plan = { tiers = { { provider = "a", attempts = 2 } } }
    router.run(plan, w.attempt, w.opts())
    assert.are.same({ 2 }, w.slept)
    assert.are.equal(2, #w.calls)
    w = world{ a = { fail = { status = 429, kind = "retry", retry_after = 60 } } }
    router.run(plan, w.attempt, w.opts{ retry_after_max = 10 })
    assert.are.same({}, w.slept)
    assert.are.equal(1, #w.calls)
  end)

  it("a client error stops at once and is handed back", function()
    local w = world{ a = { fail = { status = 400, kind = "client", body = '{"error":{}}' } }, b = {} }
    local r, f = router.run(tiers("a", "b"), w.attempt, w.opts())
    assert.is_nil(r)
    assert.are.equal(400, f.status)
    assert.are.equal('{"error":{}}', f.fail.body)
    assert.are.same({ "a" }, w.calls)
  end)

  it("gives each attempt min(timeout, time left) and 504s at the deadline", function()
    local budgets = {}
    local w = world{
      a = function(budget) budgets[#budgets + 1] = budget; return { fail = { reason = "timeout", kind = "retry" }, took = budget } end,
      b = function(budget) budgets[#budgets + 1] = budget; return { fail = { reason = "timeout", kind = "retry" }, took = budget } end,
    }
    local plan = { tiers = { { provider = "a", timeout = 3 }, { provider = "b", timeout = 3 } } }
    local _, f = router.run(plan, w.attempt, w.opts{ deadline = 4 })
    assert.are.same({ 3, 1 }, budgets)
    assert.are.equal(504, f.status)
    assert.are.equal("deadline_exceeded", f.code)
  end)

  it("a timeout of an attempt the deadline cut short is the deadline's, even a hair early", function()
    local w = world{ a = function(budget) return { fail = { reason = "timeout", kind = "retry" }, took = budget - 0.001 } end }
    local plan = { tiers = { { provider = "a", timeout = 5 } } }
    local _, f = router.run(plan, w.attempt, w.opts{ deadline = 1 })
    assert.are.equal(504, f.status)
    assert.are.equal("deadline_exceeded", f.code)
  end)

  it("every attempt timing out before the deadline is a 504 upstream_timeout", function()
    local w = world{ a = { fail = { reason = "timeout", kind = "retry" }, took = 1 } }
    local _, f = router.run(tiers("a"), w.attempt, w.opts{ deadline = 10 })
    assert.are.equal(504, f.status)
    assert.are.equal("upstream_timeout", f.code)
  end)

  it("skips open circuits and says 503 when nothing could be tried", function()
    local t = 0
    local b = breaker.new({ failures = 1, cooldown = 10 }, nil, function() return t end)
    local w = world{ a = F503, b = {} }
    local opts = w.opts{ breaker = b }
    b:failure("a")
    local r, info = router.run(tiers("a", "b"), w.attempt, opts)
    assert.are.equal("b", r.from)
    assert.are.equal(1, info.attempts)
    assert.are.same({ "b" }, w.calls)
    b:failure("b")
    local _, f = router.run(tiers("a", "b"), w.attempt, opts)
    assert.are.equal(503, f.status)
    assert.are.equal("circuit_open", f.code)
    assert.are.equal(10, f.retry_after)
  end)

  it("records results in the breaker, and a probe closes the circuit", function()
    local t = 0
    local b = breaker.new({ failures = 2, cooldown = 5 }, nil, function() return t end)
    local w = world{ a = F503, b = {} }
    local opts = w.opts{ breaker = b }
    router.run(tiers("a", "b"), w.attempt, opts)
    router.run(tiers("a", "b"), w.attempt, opts)
    assert.are.equal("open", b:state("a").state)
    w.calls = {}
    router.run(tiers("a", "b"), w.attempt, opts)
    assert.are.same({ "b" }, w.calls)            -- a is skipped while open
    t = 6
    w.calls = {}
    local okw = world{ a = {} }
    local r, info = router.run(tiers("a", "b"), okw.attempt, okw.opts{ breaker = b })
    assert.are.equal("a", r.from)
    assert.is_true(info.probe)
    assert.are.equal("closed", b:state("a").state)
  end)

  it("a failure after the first byte ends the run", function()
    local w = world{ a = { fail = { kind = "committed", message = "cut" } }, b = {} }
    local _, f = router.run(tiers("a", "b"), w.attempt, w.opts())
    assert.are.same({ "a" }, w.calls)
    assert.are.equal(502, f.status)
  end)
end)
