-- examples/caches/redis.lua: the exact cache's shared tier in Redis, so that every instance
-- started with this config shares one cache (docs/caches.md, "The shared tier in Redis";
-- tests/e2e/cache_redis.sh runs it on two instances).
local upstream = os.getenv("MOCK_URL") or "http://127.0.0.1:9100/v1"
return {
  providers = { local_mock = { kind = "mock", base_url = upstream } },
  models = { default = { route = { { provider = "local_mock", model = "m1", timeout = 3 } } } },
  auth = { keys = { ["sk-a"] = "team-a", ["sk-b"] = "team-b" }, admin_key = "sk-admin" },
  cache = { exact = { ttl = 600, shared = os.getenv("REDIS_URL") or "redis://127.0.0.1:6379/0" } },
}
