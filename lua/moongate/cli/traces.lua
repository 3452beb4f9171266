-- `moongate traces [--slow] [--errors] [--tenant T] [--since 10m] [--db FILE]`: recent requests
-- from the trace store; `moongate traces show ID` draws one request's span tree as a waterfall.
local usage = [==[
usage: moongate traces [--slow] [--errors] [--tenant T] [--since 10m] [--limit N] [--db FILE]
       moongate traces show REQUEST_ID [--raw] [--db FILE]

Lists recent requests from the trace store, newest first (slowest first with --slow):
  --slow        slowest first (with --slow=MS, only those over MS milliseconds)
  --errors      only requests that failed (HTTP status >= 400, or a failed span)
  --tenant T    only tenant T
  --since D     only the last D: 30s, 10m, 2h, 1d (default: all kept)
  --limit N     at most N rows (default 20)
  --json        rows as JSON lines
`show ID` (a request id or trace id, or a unique prefix) draws the span tree with each span's
start, duration, tokens, cost and decisions. --raw adds the prompt and response text, stored
only for tenants whose policy has log_raw = true, and shown only with the admin key
(--admin-key KEY or $MOONGATE_ADMIN_KEY, checked against the tenants store: --tenants-db
FILE, else $MOONGATE_DB, else ./moongate.db). GET /admin/traces/ID serves the same over HTTP.

The store: --db FILE, else $MOONGATE_TRACES, else ./moongate-traces.db (a config's trace.store
names it; relative to the config's folder).
]==]

local json = require "moongate.json"
local tstore = require "moongate.trace.store"

local format = string.format

local fail = require("moongate.cli.lib.args").failer("traces")

local function parse(args)
  local o = { limit = 20 }
  local i = 1
  while i <= #args do
    local a = args[i]
    local function value()
      i = i + 1
      if args[i] == nil then error({ msg = a .. " needs a value" }) end
      return args[i]
    end
    if a == "--help" or a == "-h" then o.help = true
    elseif a == "--slow" then o.slow = 0
    elseif a:match("^%-%-slow=") then o.slow = tonumber(a:sub(8)) or error({ msg = "--slow=MS needs a number" })
    elseif a == "--errors" then o.errors = true
    elseif a == "--raw" then o.raw = true
    elseif a == "--json" then o.json = true
    elseif a == "--tenant" then o.tenant = value()
    elseif a == "--db" then o.db = value()
    elseif a == "--tenants-db" then o.tenants_db = value()
    elseif a == "--admin-key" then o.admin_key = value()
    elseif a == "--limit" then o.limit = tonumber(value()) or error({ msg = "--limit needs a number" })
    elseif a == "--since" then
      local v = value()
      o.since = tstore.duration(v) or error({ msg = "--since takes a duration such as 30s, 10m, 2h, 1d; got " .. v })
    elseif a:sub(1, 1) == "-" then error({ msg = "unknown option " .. a })
    else o.words = o.words or {}; o.words[#o.words + 1] = a
    end
    i = i + 1
  end
  return o
end

local function open(o)
  local path = o.db or tstore.default_path()
  local f = io.open(path, "rb")
  if not f then return nil, "no trace store at " .. path .. " (serve writes one; --db FILE names another)" end
  f:close()
  return tstore.open(path, { readonly = true })
end

local function clock(t) return os.date("%H:%M:%S", math.floor(t)) .. format(".%03d", math.floor(t % 1 * 1000)) end

local function list(o)
  local s, err = open(o)
  if not s then return fail(err, 1) end
  local rows = s:list{ since = o.since and (os.time() - o.since) or 0, tenant = o.tenant, errors = o.errors,
                       slow = o.slow and o.slow > 0 and o.slow or (o.slow and 0) or nil, limit = o.limit }
  s:close()
  if o.json then
    for _, r in ipairs(rows) do io.write(json.encode_sorted(r), "\n") end
    return 0
  end
  if #rows == 0 then io.write("no requests recorded", o.since and " in that time" or "", "\n"); return 0 end
  io.write(format("%-12s  %-32s  %-6s %4s %10s  %-10s %-22s %6s %6s %s\n", "time", "request", "route",
    "code", "ms", "tenant", "answered by", "in", "out", "cost"))
  for _, r in ipairs(rows) do
    io.write(format("%-12s  %-32s  %-6s %4s %10.1f  %-10s %-22s %6s %6s %s\n", clock(r.start), r.request_id,
      r.route or "", tostring(r.status or ""), r.duration_ms, r.tenant or "-", r.upstream or "-",
      r.tokens_in and tostring(r.tokens_in) or "", r.tokens_out and tostring(r.tokens_out) or "",
      r.cost and format("%.6f", r.cost) or ""))
  end
  return 0
end

-- ---- the waterfall ---------------------------------------------------------------------------

local function attr_value(v)
  if v.stringValue then return v.stringValue end
  if v.intValue then return tostring(v.intValue) end
  if v.doubleValue then return format("%.6g", v.doubleValue) end
  if v.boolValue ~= nil then return tostring(v.boolValue) end
  if v.arrayValue then
    local out = {}
    for i, x in ipairs(v.arrayValue.values or {}) do out[i] = attr_value(x) end
    return "[" .. table.concat(out, ", ") .. "]"
  end
  return "?"
end

local function attrs_of(sp)
  local a = {}
  for _, kv in ipairs(sp.attributes or {}) do a[kv.key] = attr_value(kv.value) end
  return a
end

-- The attributes a reader wants next to each bar: the decisions and the figures.
local SHOWN = {
  { "gen_ai.provider.name", "provider" }, { "gen_ai.request.model", "model" },
  { "gen_ai.response.model", "answered" }, { "gen_ai.usage.input_tokens", "in" },
  { "gen_ai.usage.output_tokens", "out" }, { "moongate.cost", "cost" }, { "moongate.tenant", "tenant" },
  { "http.response.status_code", "status" }, { "moongate.route.version", "policy" },
  { "moongate.route.tiers", "tiers" }, { "moongate.route.reason", "because" },
  { "moongate.route.triage", "triage" }, { "moongate.retrieval.candidates", "candidates" },
  { "moongate.retrieval.chosen", "chosen" }, { "moongate.citations", "cited" },
  { "moongate.redactions", "redactions" }, { "moongate.safety.refused", "refused" },
  { "moongate.flags", "flags" }, { "error.type", "error" }, { "gen_ai.tool.name", "tool" },
  { "moongate.degraded", "degraded" },
}

local WIDTH = 40

-- The raw text of a request is for the admin only.
local function check_admin(o)
  local admin_db = require "moongate.cli.lib.admin_db"
  local path = o.tenants_db or os.getenv("MOONGATE_DB") or "moongate.db"
  local f = io.open(path, "rb")
  if not f then return nil, "--raw needs the admin key of a tenants store, and there is none at " .. path end
  f:close()
  local st, err = admin_db.open({ db = path, ["admin-key"] = o.admin_key }, true)
  if not st then return nil, err end
  st:close()
  return true
end

local function show(o, id)
  if o.raw then
    local ok, aerr = check_admin(o)
    if not ok then return fail(aerr, 2) end
  end
  local s, err = open(o)
  if not s then return fail(err, 1) end
  local row, gerr = s:get(id)
  s:close()
  if not row then return fail(gerr, 1) end
  local spans = json.decode(row.spans) or {}
  local byid, children, root = {}, {}, nil
  for _, sp in ipairs(spans) do byid[sp.spanId] = sp end
  for _, sp in ipairs(spans) do
    local p = sp.parentSpanId and byid[sp.parentSpanId]
    if p then
      children[p] = children[p] or {}
      table.insert(children[p], sp)
    elseif not root then
      root = sp
    end
  end
  if not root then return fail("trace " .. id .. " has no spans", 1) end
  local t0 = tonumber(root.startTimeUnixNano) / 1e9
  local total = math.max(tonumber(root.endTimeUnixNano) / 1e9 - t0, 1e-6)
  io.write(format("request %s  trace %s  %s  status %s  %.2f ms\n", row.request_id, row.trace_id,
    os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(row.start)), tostring(row.status or "-"), row.duration_ms))
  local function draw(sp, depth)
    local s0 = tonumber(sp.startTimeUnixNano) / 1e9 - t0
    local d = tonumber(sp.endTimeUnixNano) / 1e9 - t0 - s0
    local from = math.floor(s0 / total * WIDTH + 0.5)
    local len = math.max(1, math.floor(d / total * WIDTH + 0.5))
    if from + len > WIDTH then from = math.max(0, WIDTH - len) end
    local bar = string.rep(" ", from) .. string.rep("█", len) .. string.rep(" ", WIDTH - from - len)
    local failed = sp.status and sp.status.code == 2
    local label = string.rep("  ", depth) .. sp.name
    local a = attrs_of(sp)
    local notes = {}
    for _, f in ipairs(SHOWN) do
      local v = a[f[1]]
      if v and not (depth == 0 and f[1] == "http.response.status_code") then notes[#notes + 1] = f[2] .. "=" .. v end
    end
    if failed then notes[#notes + 1] = "FAILED" .. (sp.status.message ~= "" and (": " .. sp.status.message) or "") end
    for _, e in ipairs(sp.events or {}) do
      local ea = attrs_of(e)
      notes[#notes + 1] = "event " .. e.name .. (ea["moongate.budget_ms"] and (" (budget " .. ea["moongate.budget_ms"] .. " ms)") or "")
    end
    io.write(format("%-34s %9.3f ms %9.3f ms |%s| %s\n", label, s0 * 1000, d * 1000, bar, table.concat(notes, " ")))
    local kids = children[sp] or {}
    table.sort(kids, function(x, y) return tonumber(x.startTimeUnixNano) < tonumber(y.startTimeUnixNano) end)
    for _, c in ipairs(kids) do draw(c, depth + 1) end
  end
  io.write(format("%-34s %12s %12s  %s\n", "span", "start", "duration", ""))
  draw(root, 0)
  if o.raw then
    local raw = row.raw and json.decode(row.raw)
    if not raw then
      io.write("\nno raw text stored for this request (the tenant's policy keeps hashes only)\n")
    else
      if raw.prompt then io.write("\nprompt:\n", raw.prompt, "\n") end
      if raw.response then io.write("\nresponse:\n", raw.response, "\n") end
    end
  end
  return 0
end

return function(args)
  local ok, o = pcall(parse, args)
  if not ok then
    if type(o) == "table" then io.stderr:write("moongate traces: ", o.msg, "\n", usage); return 2 end
    error(o, 0)
  end
  if o.help then io.write(usage); return 0 end
  local words = o.words or {}
  if words[1] == "show" then
    if not words[2] or words[3] then return fail("traces show takes one request id") end
    return show(o, words[2])
  end
  if words[1] then return fail("unknown subcommand '" .. words[1] .. "' (see --help)") end
  return list(o)
end
