-- The gateway under test for tests/bench/observability: one OpenAI-compatible upstream (nginx,
-- MOONGATE_BENCH_UPSTREAM) and tracing as MOONGATE_BENCH_TRACE says: "off" (trace = false),
-- "store" (every request's spans to the sqlite trace store) or "otlp" (the store and an OTLP/HTTP
-- collector at MOONGATE_BENCH_COLLECTOR); MOONGATE_BENCH_SAMPLE is the share of requests traced
-- (default 1). Metrics are on in every configuration.
local mode = os.getenv("MOONGATE_BENCH_TRACE") or "off"
local config = {
  providers = {
    upstream = { kind = "openai", base_url = os.getenv("MOONGATE_BENCH_UPSTREAM"), api_key = "sk-upstream" },
  },
  models = { bench = { route = { { provider = "upstream", model = "bench", timeout = 5 } }, deadline = 10 } },
  retry = { max_attempts = 1 },
  access_log = false,
}
if mode == "off" then
  config.trace = false
else
  config.trace = { sample = tonumber(os.getenv("MOONGATE_BENCH_SAMPLE") or "1"), store = os.getenv("MOONGATE_BENCH_STORE"),
                   otlp = mode == "otlp" and os.getenv("MOONGATE_BENCH_COLLECTOR") or nil }
end
return config
