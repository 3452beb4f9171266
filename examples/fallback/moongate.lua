-- Two OpenAI-compatible upstreams: the model name `default` goes to `primary` first, then to
-- `secondary`. Each attempt must produce its first byte within 3 s, the whole request within 10 s;
-- no degrade tier, so when both fail the client gets the error (502/503/504/429).
--
--   MOONGATE_PRIMARY_URL=http://127.0.0.1:9001/v1 MOONGATE_SECONDARY_URL=http://127.0.0.1:9002/v1 \
--     moongate serve --listen 127.0.0.1:8080 examples/fallback/moongate.lua
return {
  providers = {
    primary = { kind = "openai", base_url = os.getenv("MOONGATE_PRIMARY_URL") or "http://127.0.0.1:9001/v1" },
    secondary = { kind = "openai", base_url = os.getenv("MOONGATE_SECONDARY_URL") or "http://127.0.0.1:9002/v1" },
  },
  models = {
    default = {
      route = {
        { provider = "primary", model = "gpt-4o-mini", timeout = 3 },
        { provider = "secondary", model = "gpt-4o-mini", timeout = 3 },
      },
      deadline = 10,
      degrade = false,
    },
  },
  retry = { max_attempts = 4, backoff = 0.05, backoff_max = 1 },
  breaker = { failures = 5, window = 30, cooldown = 10 },
  auth = nil,   -- no client key required
}
