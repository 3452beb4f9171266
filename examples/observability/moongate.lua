-- Two mock upstreams behind a fallback, every request traced: spans in the trace store next to
-- this file (moongate traces / stats read it), and exported over OTLP/HTTP when
-- MOONGATE_OTLP_ENDPOINT names a collector (e.g. http://127.0.0.1:4318/v1/traces). The `default`
-- model's budgets make a slow upstream an overrun, and cut it at 1.5 s so the fallback answers.
--
--   moongate mock --listen 127.0.0.1:9001 --name p1 & moongate mock --listen 127.0.0.1:9002 --name p2 &
--   moongate serve --listen 127.0.0.1:8080 examples/observability/moongate.lua
return {
  providers = {
    primary = { kind = "mock", base_url = os.getenv("MOONGATE_PRIMARY_URL") or "http://127.0.0.1:9001/v1" },
    secondary = { kind = "mock", base_url = os.getenv("MOONGATE_SECONDARY_URL") or "http://127.0.0.1:9002/v1" },
  },
  models = {
    default = {
      route = { { provider = "primary", model = "m1", timeout = 3 },
                { provider = "secondary", model = "m2", timeout = 3 } },
      deadline = 10,
      budgets = { upstream = 1.5, route = 0.005, overhead = 0.002, enforce = true },
    },
  },
  prices = { m1 = { input = 0.15, output = 0.60 }, m2 = { input = 2.50, output = 10.00 } },  -- per 1M tokens
  trace = {
    sample = 1,                           -- share of requests traced (a caller's traceparent decides for its own)
    -- store: a path; by default $MOONGATE_TRACES, else moongate-traces.db next to this file
    retention = 86400,                    -- seconds
    otlp = os.getenv("MOONGATE_OTLP_ENDPOINT"),
    service = "moongate-example",
  },
}
