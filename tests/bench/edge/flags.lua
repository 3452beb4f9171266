-- twenty flags of every kind, and a kill list: what a production flags file looks like
local flags = {}
for i = 1, 5 do flags["switch_" .. i] = { enabled = i % 2 == 1 } end
for i = 1, 5 do flags["rollout_" .. i] = { rollout = i * 15 } end
for i = 1, 5 do flags["tenants_" .. i] = { tenants = { "bench", "t" .. i }, deny = { "blocked" } } end
for i = 1, 5 do
  flags["variant_" .. i] = { variants = { { name = "a", weight = 90 }, { name = "b", weight = 10 } } }
end
return { flags = flags, kill = { providers = { "retired" }, models = { "old" }, tools = { "refund" } } }
