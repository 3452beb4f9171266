-- The gateway under test: one OpenAI-compatible provider (the nginx upstream, its URL from
-- MOONGATE_BENCH_UPSTREAM), the model name `bench` routed to it with one attempt.
return {
  providers = {
    upstream = { kind = "openai", base_url = os.getenv("MOONGATE_BENCH_UPSTREAM"), api_key = "sk-upstream" },
  },
  models = {
    bench = { route = { { provider = "upstream", model = "bench", timeout = 5 } }, deadline = 10 },
  },
  retry = { max_attempts = 1 },
}
