-- The gateway under test for tests/bench/edge: one OpenAI-compatible upstream (nginx, its URL
-- from MOONGATE_BENCH_UPSTREAM) and the edge stages named in MOONGATE_BENCH_EDGE
-- ("off", or a comma list of auth, quota, flags, redact), each configured as production would.
local here = debug.getinfo(1, "S").source:sub(2):match("^(.*)/[^/]*$") or "."
local want = {}
for s in (os.getenv("MOONGATE_BENCH_EDGE") or "off"):gmatch("[^,]+") do want[s] = true end

local config = {
  providers = {
    upstream = { kind = "openai", base_url = os.getenv("MOONGATE_BENCH_UPSTREAM"), api_key = "sk-upstream" },
  },
  models = { bench = { route = { { provider = "upstream", model = "bench", timeout = 5 } }, deadline = 10 } },
  retry = { max_attempts = 1 },
  edge = { stages = {} },
}
local stages = config.edge.stages
if want.auth then
  stages[#stages + 1] = "auth"
  config.auth = { db = os.getenv("MOONGATE_BENCH_DB") }   -- a sqlite-backed key, as in production
end
if want.quota then
  stages[#stages + 1] = "quota"
  config.quota = { rpm = 1e9, concurrent = 10000, tokens_in_per_min = 1e12 }   -- checked, never hit
end
if want.flags then
  stages[#stages + 1] = "flags"
  config.flags = here .. "/flags.lua"
end
if want.redact then
  stages[#stages + 1] = "redact"
  config.redaction = { mode = "placeholder" }
end
return config
