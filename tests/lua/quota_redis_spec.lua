-- moongate.quota on the Redis backend, against a real redis-server: a request's limits are taken
-- all or nothing, two clients (as two instances would) share one limit exactly, windows and
-- slots behave as on the shared-memory backend, and a store that is down answers nil, err.
local mg = require "moongate"
local server = require "redis_server"
server.skip_unless_available()

local quota = require "moongate.quota"

describe("moongate.quota (redis)", function()
  local srv, n = nil, 0
  local function fresh()
    n = n + 1
    return assert(quota.new{ url = srv.url, prefix = "spec" .. n .. ":" }), "spec" .. n .. ":"
  end
  setup(function() srv = server.start() end)
  teardown(function() if srv then srv.stop() end end)

  it("takes while the amount fits, then refuses with what is left and when it resets", function()
    local q = fresh()
    local ok, rem, reset = q:take("k", 400, 1000, 60)
    assert.is_true(ok); assert.are.equal(600, rem)
    assert.is_true(reset > 0 and reset <= 60)
    assert.are.same({ true, 0 }, { (q:take("k", 600, 1000, 60)) and true, (select(2, q:take("k", 0, 1000, 60))) })
    ok, rem = q:take("k", 1, 1000, 60)
    assert.is_false(ok); assert.are.equal(0, rem)
  end)

  it("reserve is all or nothing: a refused op leaves every counter as it was", function()
    local q, prefix = fresh()
    local ops = { { kind = "take", key = "r", amount = 1, limit = 10, window = 60 },
                  { kind = "slot", key = "s", limit = 5 },
                  { kind = "peek", key = "o", limit = 100, window = 60 },
                  { kind = "take", key = "i", amount = 30, limit = 50, window = 60 } }
    local ok, res = q:reserve(ops)
    assert.is_true(ok)
    assert.are.same({ 9, 4, 100, 20 }, { res[1][1], res[2][1], res[3][1], res[4][1] })
    local ok2, i, res2 = q:reserve(ops)
    assert.are.same({ false, 4, 20 }, { ok2, i, res2[4][1] })
    assert.are.same({ 9, 4, 100 }, { res2[1][1], res2[2][1], res2[3][1] })   -- what the earlier ones have left
    assert.are.same({ true, 8 }, { (q:take("r", 1, 10, 60)), (select(2, q:take("r", 0, 10, 60))) })  -- the refused one took nothing
    assert.are.equal("1", srv.cli("get " .. prefix .. "s"))
    -- reconciled: the output spends the peeked budget, the next reserve is refused by it
    assert.is_true(q:settle{ { kind = "add", key = "o", amount = 100, window = 60 }, { kind = "release", key = "s" },
                             { kind = "add", key = "i", amount = -30, window = 60 } })
    assert.are.equal("0", srv.cli("get " .. prefix .. "s"))
    local ok3, j = q:reserve(ops)
    assert.are.same({ false, 3 }, { ok3, j })
    -- every windowed counter carries a TTL: it dies with its window
    local ttl = tonumber(srv.cli("ttl $(redis-cli -p " .. srv.port .. " --scan --pattern '" .. prefix .. "r:*')"))
    assert.is_true(ttl > 0 and ttl <= 61, tostring(ttl))
  end)

  it("two clients share one limit exactly under concurrency", function()
    local a, prefix = fresh()
    local b = assert(quota.new{ url = srv.url, prefix = prefix })
    local tasks, wins = {}, 0
    for i = 1, 300 do
      local q = i % 2 == 0 and a or b
      tasks[i] = mg.spawn(function() return (q:take("shared", 1, 100, 60)) end)
    end
    for i = 1, 300 do if tasks[i]:wait() then wins = wins + 1 end end
    assert.are.equal(100, wins)
  end)

  it("slots: acquire up to the limit, release gives one back, never below zero", function()
    local q = fresh()
    assert.are.same({ true, 1 }, { q:acquire("c", 2) })
    assert.are.same({ true, 2 }, { q:acquire("c", 2) })
    assert.are.same({ false, 2 }, { q:acquire("c", 2) })
    q:release("c"); q:release("c"); q:release("c")
    assert.are.same({ true, 1 }, { q:acquire("c", 2) })
  end)

  it("a store that is down answers nil and the reason, and is used again once back", function()
    local q = fresh()
    assert.is_true((q:take("d", 1, 10, 60)))
    srv.kill()
    local ok, err = q:take("d", 1, 10, 60)
    assert.is_nil(ok)
    assert.is_truthy(err:match("^redis: "), err)
    assert.are.same({ nil, "redis: Connection refused" }, { q:take("d", 1, 10, 60) })
    srv.launch()
    assert.are.same({ true, 9 }, { (q:take("d", 1, 10, 60)), (select(2, q:take("d", 0, 10, 60))) })
  end)

  it("the edge refuses a config with a bad backend or policy, with a clear error", function()
    local stage = require "moongate.edge.quota"
    assert.are.same({ nil, 'quota.backend must be "shared" or a redis:// or unix:// url, got http://x' },
      { stage.new({ quota = { backend = "http://x" } }) })
    assert.are.same({ nil, "quota backend: redis url database must be a number: redis://h/x" },
      { stage.new({ quota = { backend = "redis://h/x" } }) })
    assert.are.same({ nil, 'quota.on_error must be "deny" or "allow", got maybe' },
      { stage.new({ quota = { backend = srv.url, on_error = "maybe" } }) })
    assert.are.same({ nil, "quota: unknown limit 'rpn'" }, { stage.new({ quota = { backend = srv.url, rpn = 5 } }) })
    local st = assert(stage.new({ quota = { backend = srv.url, on_error = "allow", rpm = 5 } }))
    assert.are.same({ { rpm = 5 }, "allow", "redis://127.0.0.1:" .. srv.port .. "/0" }, { st.default, st.on_error, st.backend_name })
  end)
end)
