-- moongate.trace.store: the summaries behind `moongate stats` and GET /admin/stats — nearest-rank
-- percentiles per step and per model, and requests, errors, tokens and cost per tenant.
local tstore = require "moongate.trace.store"

local path = os.tmpname()

local function row(id, t)
  t.request_id, t.trace_id, t.spans = id, id, "[]"
  t.start = t.start or os.time()
  return t
end

describe("moongate.trace.store", function()
  local s
  setup(function()
    s = assert(tstore.open(path))
    local rows = {}
    -- ten requests for team-a answered by p/m in 1..10 ms; one failed request of team-b; one
    -- without a tenant; one too old for the window
    for i = 1, 10 do
      rows[#rows + 1] = row("a" .. i, { duration_ms = i, tenant = "team-a", model = "default", upstream = "p/m",
        status = 200, tokens_in = 10, tokens_out = 5, cost = 0.001, steps = "request=" .. i .. ";upstream=" .. (i / 2) })
    end
    rows[#rows + 1] = row("b1", { duration_ms = 50, tenant = "team-b", model = "default", status = 502,
      error = "upstream_error", steps = "request=50;upstream=49" })
    rows[#rows + 1] = row("c1", { duration_ms = 1, status = 200, route = "models", steps = "request=1" })
    rows[#rows + 1] = row("old", { start = os.time() - 7200, duration_ms = 999, tenant = "team-a", status = 200,
      steps = "request=999" })
    assert(s:insert(rows))
  end)
  teardown(function()
    s:close()
    for _, suffix in ipairs{ "", "-wal", "-shm" } do os.remove(path .. suffix) end
  end)

  it("percentile is the nearest rank", function()
    local l = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 }
    assert.equal(5, tstore.percentile(l, 50))
    assert.equal(10, tstore.percentile(l, 95))
    assert.equal(1, tstore.percentile(l, 1))
    assert.is_nil(tstore.percentile({}, 50))
  end)

  it("stats: count and p50/p95/p99 per step and per model in the window", function()
    local st = s:stats(os.time() - 3600)
    assert.same({
      { name = "request", count = 12, p50 = 5, p95 = 50, p99 = 50 },
      { name = "upstream", count = 11, p50 = 3, p95 = 49, p99 = 49 },
    }, st.steps)
    assert.same({
      { name = "default", count = 1, p50 = 50, p95 = 50, p99 = 50 },
      { name = "p/m", count = 10, p50 = 5, p95 = 10, p99 = 10 },
    }, st.models)
  end)

  it("tenants: requests, errors, tokens and cost per tenant, busiest first", function()
    local t = s:tenants(os.time() - 3600)
    assert.equal(3, #t)
    assert.same({ tenant = "team-a", requests = 10, errors = 0, tokens_in = 100, tokens_out = 50 },
      { tenant = t[1].tenant, requests = t[1].requests, errors = t[1].errors, tokens_in = t[1].tokens_in,
        tokens_out = t[1].tokens_out })
    assert.is_true(math.abs(t[1].cost - 0.01) < 1e-12)
    assert.same({ tenant = "-", requests = 1, errors = 0, tokens_in = 0, tokens_out = 0, cost = 0 }, t[2])
    assert.same({ tenant = "team-b", requests = 1, errors = 1, tokens_in = 0, tokens_out = 0, cost = 0 }, t[3])
  end)
end)
