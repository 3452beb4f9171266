-- A canary release: the flag `route_canary` sends 10% of users to the candidate routing policy
-- route_v2.lua (which answers from the second upstream); the watcher rolls it back when its
-- error rate is 5 points worse than control's over a minute. See docs/releases.md.
--
--   moongate mock --listen 127.0.0.1:9101 --name stable & moongate mock --listen 127.0.0.1:9102 --name new &
--   moongate serve --listen 127.0.0.1:8080 examples/releases/moongate.lua
return {
  providers = {
    stable = { kind = "mock", base_url = os.getenv("MOONGATE_STABLE_URL") or "http://127.0.0.1:9101/v1" },
    new = { kind = "mock", base_url = os.getenv("MOONGATE_NEW_URL") or "http://127.0.0.1:9102/v1" },
  },
  models = { default = { route = { { provider = "stable", model = "m1" } } } },
  flags = "flags.lua",
  releases = {
    route_v2 = { flag = "route_canary", candidate = "route_v2.lua",
                 window = 60, min_requests = 50, max_error_rate = 0.05, max_p95_ratio = 2, check_every = 5 },
  },
  trace = { store = "moongate-traces.db" },
}
