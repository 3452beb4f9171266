-- The gateway's config checks: a retry, breaker or upstream setting it does not know is an error
-- naming it; elsewhere (the top level, a model, a tier, where a routing policy may keep settings
-- of its own) one it does not read is listed for the startup warning.
local gateway = require "moongate.gateway"

local function config(extra)
  local c = { providers = { p = { kind = "mock" } },
              models = { m = { route = { { provider = "p", model = "x", timeout = 3 } }, deadline = 5 } } }
  for k, v in pairs(extra or {}) do c[k] = v end
  return c
end

describe("gateway config settings", function()
  it("refuses a retry, breaker or upstream setting it does not know", function()
    assert.are.same({ nil, "config: retry: unknown setting 'max_attempt' (expected backoff, backoff_max, max_attempts, retry_after_max)" },
      { gateway.new(config{ retry = { max_attempt = 2 } }) })
    assert.are.same({ nil, "config: breaker: unknown setting 'cooldwn' (expected cooldown, failure_rate, failures, min_requests, probe_timeout, window)" },
      { gateway.new(config{ breaker = { cooldwn = 5 } }) })
    assert.are.same({ nil, "config: upstream must be a table" }, { gateway.new(config{ upstream = 4 }) })
  end)

  it("lists the settings nothing reads at the top, in a model and in a tier", function()
    local c = config{ retyr = {} }
    c.models.m.dedline = 5
    c.models.m.route[1].timeuot = 3
    c.models.m.easy_route = { { provider = "p", wieght = 1 } }
    assert.are.same({ true, { "models.m.dedline", "models.m.easy_route[1].wieght", "models.m.route[1].timeuot", "retyr" } },
      { gateway.check_config(c) })
    assert.are.same({ true, {} }, { gateway.check_config(config{ retry = { max_attempts = 2 }, prices = {} }) })
  end)

  it("leaves another app's top-level settings alone", function()
    assert.are.same({ true, {} }, { gateway.check_config(config{ app = "myapp", greeting = "hi" }) })
  end)
end)
