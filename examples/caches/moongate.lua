-- examples/caches: the exact, semantic and snippet caches in front of a mock upstream
-- (docs/caches.md). Run `moongate mock --listen 127.0.0.1:9100` first, or set MOCK_URL.
local upstream = os.getenv("MOCK_URL") or "http://127.0.0.1:9100/v1"
return {
  providers = { local_mock = { kind = "mock", base_url = upstream } },
  models = {
    -- exact cache for requests that ask for a repeatable answer (temperature 0, a seed)
    default = { route = { { provider = "local_mock", model = "m1" } } },
    -- answers reused for any request: the model's answers do not vary (classification)
    classify = { route = { { provider = "local_mock", model = "m1" } }, cache = { idempotent = true } },
    -- questions that mean the same share an answer; an hour of reuse
    faq = { route = { { provider = "local_mock", model = "m1" } }, cache = { semantic = true, ttl = 3600 } },
    -- never cached
    chat = { route = { { provider = "local_mock", model = "m1" } }, cache = false },
  },
  auth = { keys = { ["sk-a"] = "team-a", ["sk-b"] = "team-b" }, admin_key = "sk-admin" },
  prices = { m1 = { input = 0.15, output = 0.60 } },   -- per 1M tokens: the cost a hit saves
  cache = {
    exact = { ttl = 300, max_entries = 10000, max_bytes = 32 * 1024 * 1024, max_entry_bytes = 1024 * 1024 },
    semantic = { threshold = 0.85, ttl = 600, max_entries = 10000 },
    snippet = { ttl = 600, max_entries = 10000 },
  },
}
