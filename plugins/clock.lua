-- plugins/clock.lua: the current date and time in UTC (idempotent, no side effect).
return {
  name = "clock",
  description = "The current date and time in UTC, as ISO 8601.",
  parameters = { type = "object", properties = {
    format = { type = "string", enum = { "iso", "unix" }, description = "iso (default) or unix seconds" },
  } },
  timeout = 1,
  idempotent = true,
  run = function(args)
    if args.format == "unix" then return { unix = os.time() } end
    return { utc = os.date("!%Y-%m-%dT%H:%M:%SZ") }
  end,
}
