-- A gateway whose requests carry flags: two mock upstreams, one tenant key, and the flags file
-- next to this config (edit it while the gateway runs; GET /admin/flags shows what serves).
--
--   moongate mock --listen 127.0.0.1:9101 & moongate mock --listen 127.0.0.1:9102 &
--   moongate serve --listen 127.0.0.1:8080 examples/flags/moongate.lua
return {
  providers = {
    primary = { kind = "mock", base_url = os.getenv("MOONGATE_PRIMARY_URL") or "http://127.0.0.1:9101/v1" },
    secondary = { kind = "mock", base_url = os.getenv("MOONGATE_SECONDARY_URL") or "http://127.0.0.1:9102/v1" },
  },
  models = {
    default = { route = { { provider = "primary", model = "m1" }, { provider = "secondary", model = "m2" } } },
    ["gpt-4"] = { route = { { provider = "primary", model = "gpt-4" } } },
  },
  auth = { keys = { ["sk-acme"] = "acme" }, admin_key = "sk-admin" },
  tenants = { acme = { flags = { beta_search = true } } },   -- acme pins beta_search on
  flags = "flags.lua",
}
