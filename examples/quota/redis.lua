-- examples/quota/redis.lua: every instance started with this config shares one limit through
-- Redis (docs/quota.md, "Across machines: Redis"; tests/e2e/quota_redis.sh runs it).
local upstream = os.getenv("MOCK_URL") or "http://127.0.0.1:9100/v1"
return {
  providers = { local_mock = { kind = "mock", base_url = upstream } },
  models = { default = { route = { { provider = "local_mock", model = "m1" } } } },
  auth = { keys = { ["sk-a"] = "team-a" } },
  quota = {
    backend = os.getenv("REDIS_URL") or "redis://127.0.0.1:6379/0",
    on_error = "deny",    -- Redis unreachable: 503 (or "allow": served, unmetered, counted and logged)
    timeout = 0.5,        -- seconds per call to Redis (the request's deadline bounds it too)
    rpm = 3,              -- the default policy: 3 requests a minute per tenant, across all instances
  },
}
