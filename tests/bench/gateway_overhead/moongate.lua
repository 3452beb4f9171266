-- The gateway under test: one OpenAI-compatible provider for completions and one for streams (the
-- nginx upstream, its base URL from MOONGATE_BENCH_UPSTREAM), the models `bench` and
-- `bench-stream` routed to them with one attempt. MOONGATE_BENCH_FEATURES picks what is on:
--   bare   not the gateway: bare.lua relays the request with moongate.http (the floor under it)
--   off    no edge, trace = false, no access log: the gateway alone
--   edge   the edge chain as production runs it: auth by a sqlite-backed key (MOONGATE_BENCH_DB),
--          quota (checked, never hit) and flags (tests/bench/edge/flags.lua)
--   spans  edge, and every request's spans written to the sqlite trace store (MOONGATE_BENCH_STORE)
--   otlp   spans, and every trace also exported over OTLP/HTTP (MOONGATE_BENCH_COLLECTOR)
local here = debug.getinfo(1, "S").source:sub(2):match("^(.*)/[^/]*$") or "."
local features = os.getenv("MOONGATE_BENCH_FEATURES") or "off"
local up = os.getenv("MOONGATE_BENCH_UPSTREAM")
if features == "bare" then return dofile(here .. "/bare.lua") end

local config = {
  providers = {
    upstream = { kind = "openai", base_url = up .. "/v1", api_key = "sk-upstream" },
    upstream_stream = { kind = "openai", base_url = up .. "/stream/v1", api_key = "sk-upstream" },
  },
  models = {
    bench = { route = { { provider = "upstream", model = "bench", timeout = 5 } }, deadline = 10 },
    ["bench-stream"] = { route = { { provider = "upstream_stream", model = "bench", timeout = 5 } }, deadline = 10 },
  },
  retry = { max_attempts = 1 },
  access_log = false,
  trace = false,
}
if features ~= "off" then
  config.edge = { stages = { "auth", "quota", "flags" } }
  config.auth = { db = os.getenv("MOONGATE_BENCH_DB") }
  config.quota = { rpm = 1e9, concurrent = 10000, tokens_in_per_min = 1e12 }
  config.flags = here .. "/../edge/flags.lua"
end
if features == "spans" or features == "otlp" then
  config.trace = { sample = 1, store = os.getenv("MOONGATE_BENCH_STORE"),
                   otlp = features == "otlp" and os.getenv("MOONGATE_BENCH_COLLECTOR") or nil }
end
return config
