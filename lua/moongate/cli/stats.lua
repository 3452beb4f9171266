-- `moongate stats [--since 1h] [--db FILE]`: p50/p95/p99 per step and per model, from the trace
-- store (exact percentiles of the stored requests, not histogram estimates).
local usage = [==[
usage: moongate stats [--since 1h] [--db FILE] [--json]

Prints, for the requests in the trace store over the last --since (default 1h: 30s, 10m, 2h,
1d), the count and p50/p95/p99 latency of each step (the edge stages, route, upstream
attempts, tools, pipeline stages; "request" is the whole request) and of each model that
answered. The store: --db FILE, else $MOONGATE_TRACES, else ./moongate-traces.db.
GET /metrics has the same steps as Prometheus histograms, across every worker.
]==]

local json = require "moongate.json"
local tstore = require "moongate.trace.store"

local format = string.format

local fail = require("moongate.cli.lib.args").failer("stats")

return function(args)
  local o = { since = 3600 }
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "--help" or a == "-h" then io.write(usage); return 0
    elseif a == "--json" then o.json = true
    elseif a == "--db" or a == "--since" then
      i = i + 1
      local v = args[i]
      if not v then return fail(a .. " needs a value") end
      if a == "--db" then o.db = v else
        o.since = tstore.duration(v)
        if not o.since then return fail("--since takes a duration such as 30s, 10m, 2h, 1d; got " .. v) end
      end
    else
      return fail("unknown argument " .. a .. "\n" .. usage)
    end
    i = i + 1
  end
  local path = o.db or tstore.default_path()
  local f = io.open(path, "rb")
  if not f then return fail("no trace store at " .. path .. " (serve writes one; --db FILE names another)", 1) end
  f:close()
  local s, err = tstore.open(path, { readonly = true })
  if not s then return fail(err, 1) end
  local t = s:stats(os.time() - o.since)
  s:close()
  local steps, models = t.steps, t.models
  if o.json then
    io.write(json.encode_sorted({ since_seconds = o.since, steps = json.array(steps), models = json.array(models) }), "\n")
    return 0
  end
  local function section(title, rows)
    io.write(format("%-24s %8s %10s %10s %10s\n", title, "count", "p50 ms", "p95 ms", "p99 ms"))
    if #rows == 0 then io.write("  (no requests in this window)\n") end
    for _, r in ipairs(rows) do
      io.write(format("%-24s %8d %10.3f %10.3f %10.3f\n", r.name, r.count, r.p50, r.p95, r.p99))
    end
  end
  section("step", steps)
  io.write("\n")
  section("model", models)
  return 0
end
