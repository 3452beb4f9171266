-- The exact cache's shared tier in Redis, against a real redis-server: an entry written through
-- one instance is read by another, tenants stay apart, a flush on one holds on all, and Redis
-- going away is a miss, never an error.
local server = require "redis_server"
server.skip_unless_available()

local exact = require "moongate.cache.exact"
local key = require "moongate.cache.key"

describe("exact cache, Redis tier", function()
  local srv
  setup(function() srv = server.start() end)
  teardown(function() if srv then srv.stop() end end)

  it("an entry stored by instance A is a hit on instance B, with the time it has left", function()
    local a, b = exact.new { shared = srv.url, ttl = 30 }, exact.new { shared = srv.url, ttl = 30 }
    local ns = key.namespace("team-a")
    assert.is_nil((b:get(ns, "h1")))
    assert.is_true(a:set(ns, "h1", "answer"))
    assert.are.same({ "answer", "shared" }, { b:get(ns, "h1") })
    assert.are.same({ "answer", "local" }, { b:get(ns, "h1") })   -- now in B's LRU too
    local ttl = tonumber(srv.cli("pttl mgc:x:" .. ns .. ":0:h1"))
    assert.is_true(ttl > 29000 and ttl <= 30000, tostring(ttl))
  end)

  it("tenants are apart: another namespace never reads the entry", function()
    local a, b = exact.new { shared = srv.url }, exact.new { shared = srv.url }
    assert.is_true(a:set(key.namespace("team-a"), "same-hash", "a's answer"))
    assert.is_nil((b:get(key.namespace("team-b"), "same-hash")))
    assert.are.same({ "a's answer", "shared" }, { b:get(key.namespace("team-a"), "same-hash") })
  end)

  it("a flush on one instance holds on every instance, LRUs included; other tenants keep theirs", function()
    local a, b = exact.new { shared = srv.url }, exact.new { shared = srv.url }
    local na, nb = key.namespace("flush-a"), key.namespace("flush-b")
    assert.is_true(a:set(na, "h1", "x")); assert.is_true(a:set(na, "h2", "y")); assert.is_true(a:set(nb, "h1", "z"))
    assert.are.same({ "x", "local" }, { a:get(na, "h1") })
    assert.are.equal(2, b:flush(na))
    assert.is_nil((a:get(na, "h1")))          -- A's LRU copy carries the old generation
    assert.is_nil((a:get(na, "h2")))
    assert.are.same({ "z", "local" }, { a:get(nb, "h1") })
    assert.are.equal("1", a:generation(na))
    assert.is_true(a:set(na, "h1", "new"))
    assert.are.same({ "new", "shared" }, { b:get(na, "h1") })
  end)

  it("Redis down: lookups miss and stores fail softly; back, it serves again", function()
    local a = exact.new { shared = srv.url }
    local ns = key.namespace("down")
    assert.is_true(a:set(ns, "h", "v"))
    srv.kill()
    assert.is_nil((a:get(ns, "h")))
    assert.are.same({ nil, "redis: Connection refused" }, { a:set(ns, "h2", "v2") })
    assert.are.same({ nil, "redis: Connection refused" }, { a:flush(ns) })
    srv.launch()
    assert.is_nil((a:get(ns, "h")))   -- a new, empty server
    assert.is_true(a:set(ns, "h", "v3"))
    assert.are.same({ "v3", "local" }, { a:get(ns, "h") })
  end)

  it("a config naming a bad shared tier is refused with a clear error", function()
    local check = require("moongate.gateway.cache").check_config
    assert.are.same({ nil, "config: cache.exact.shared must be true, false or a redis:// url" },
      { check{ exact = { shared = "memcached://x" } } })
    assert.are.same({ nil, "config: cache.exact.shared: redis url port out of range: redis://h:99999" },
      { check{ exact = { shared = "redis://h:99999" } } })
    assert.are.same({ nil, "config: cache.exact.timeout must be a number of seconds > 0" },
      { check{ exact = { shared = "redis://h", timeout = 0 } } })
    assert.is_true(check{ exact = { shared = "redis://h:6380/1", prefix = "app1:" } })
  end)
end)
