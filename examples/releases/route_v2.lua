-- The candidate routing policy of the route_v2 release: the new upstream first, the stable one
-- behind it. Editing this file makes a new version, which goes live at the flag's share.
return {
  plan = function(req, ctx)
    return { tiers = { { provider = "new", model = "m2", timeout = 5 }, { provider = "stable", model = "m1", timeout = 5 } } }
  end,
}
