-- The one price lookup behind spend in metrics, spans, quotas, releases and cache savings.
local prices = require "moongate.prices"

describe("moongate.prices", function()
  local t = { ["gpt-4o-mini"] = { input = 0.15, output = 0.60 }, default = { input = 3, output = 5 },
              ["*"] = { input = 1, output = 2 } }

  it("prices by the upstream model, else the alias, else *", function()
    assert.equal(t["gpt-4o-mini"], prices.of(t, "gpt-4o-mini", "default"))
    assert.equal(t.default, prices.of(t, "m2", "default"))
    assert.equal(t["*"], prices.of(t, "m2", "other"))
    assert.equal(t["*"], prices.of(t, nil, nil))
    assert.is_nil(prices.of({ m1 = t.default }, "m2", "other"))
    assert.is_nil(prices.of(nil, "gpt-4o-mini"))
  end)

  it("costs tokens at prices per million", function()
    assert.equal(450 / 1e6, prices.cost(t["gpt-4o-mini"], 1000, 500))
    assert.equal(3 * 10 / 1e6, prices.cost({ input = 3 }, 10, 99))
  end)
end)
