-- tests/bench/caches: the gateway in front of one upstream, exact and semantic caches on.
return {
  providers = { up = { kind = "openai", base_url = os.getenv("MOONGATE_BENCH_UPSTREAM"), api_key = "sk-bench" } },
  models = {
    bench = { route = { { provider = "up", timeout = 5 } }, cache = { semantic = true } },
    uncached = { route = { { provider = "up", timeout = 5 } }, cache = false },
  },
  auth = { keys = { ["sk-bench"] = "bench" } },
  cache = { exact = { ttl = 3600 }, semantic = { ttl = 3600 } },
  trace = false,
}
