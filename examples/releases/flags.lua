-- The flag that picks the canary: 10% of tenants/users, stable by hash (docs/flags.md).
return {
  flags = { route_canary = { rollout = 10, description = "route_v2 canary" } },
  kill = { pipelines = {} },   -- add "route_v2" here to switch the canary off by hand
}
