-- moongate.trace.store: the traces of recent requests in sqlite, so the embedded default needs no
-- collector: one row per request (its summary, its step timings, its spans as OTLP JSON), kept
-- for a retention period and up to a row count.
local sqlite = require "moongate.sqlite"
local ffi = require "ffi"

pcall(ffi.cdef, "int chmod(const char *path, unsigned int mode);")

local M = {}
local Store = {}
Store.__index = Store

local SCHEMA = [[
CREATE TABLE IF NOT EXISTS traces (
  request_id  TEXT PRIMARY KEY,
  trace_id    TEXT NOT NULL,
  start       REAL NOT NULL,          -- Unix seconds
  duration_ms REAL NOT NULL,
  route       TEXT,
  tenant      TEXT,
  model       TEXT,                   -- the model the client asked for
  upstream    TEXT,                   -- provider/model that answered
  status      INTEGER,
  error       TEXT,
  tokens_in   INTEGER,
  tokens_out  INTEGER,
  cost        REAL,
  steps       TEXT,                   -- "step=ms;step=ms;..." for `moongate stats`
  spans       TEXT NOT NULL,          -- JSON array of OTLP spans
  raw         TEXT                    -- JSON {prompt, response} for tenants whose policy keeps text
);
CREATE INDEX IF NOT EXISTS traces_start ON traces(start);
CREATE INDEX IF NOT EXISTS traces_trace ON traces(trace_id);
]]

local COLUMNS = { "request_id", "trace_id", "start", "duration_ms", "route", "tenant", "model", "upstream",
  "status", "error", "tokens_in", "tokens_out", "cost", "steps", "spans", "raw" }

--- store.default_path() -> where traces go when the config says nothing: $MOONGATE_TRACES, else
--- moongate-traces.db (next to the config, or in the working directory without one).
--- store.duration("10m") -> seconds | nil: the --since of `moongate traces` and `moongate stats`
function M.duration(s)
  local n, unit = tostring(s):match("^(%d+%.?%d*)([smhd]?)$")
  if not n then return nil end
  return tonumber(n) * ({ s = 1, m = 60, h = 3600, d = 86400, [""] = 1 })[unit]
end

function M.default_path()
  return os.getenv("MOONGATE_TRACES") or "moongate-traces.db"
end

--- store.open(path, opts?) -> store | nil, err   (opts.readonly)
function M.open(path, opts)
  opts = opts or {}
  local db, err = sqlite.open(path, { readonly = opts.readonly, busy_timeout = 2 })
  if not db then return nil, "trace store " .. path .. ": " .. tostring(err) end
  if not opts.readonly then
    -- traces are diagnostics: no fsync on commit or checkpoint (a power cut may lose the last
    -- few), so writing them never stalls the worker that serves requests
    local ok, serr = db:exec("PRAGMA synchronous=OFF;" .. SCHEMA)
    if not ok then db:close(); return nil, "trace store " .. path .. ": " .. tostring(serr) end
    -- it may hold prompts (tenants with log_raw): readable by its owner only
    for _, suffix in ipairs{ "", "-wal", "-shm" } do ffi.C.chmod(path .. suffix, tonumber("600", 8)) end
  end
  return setmetatable({ db = db, path = path }, Store)
end

--- store:insert(rows): rows are tables keyed by column name, written in one transaction.
function Store:insert(rows)
  if #rows == 0 then return true end
  local db = self.db
  if not self.ins then
    local marks = {}
    for i = 1, #COLUMNS do marks[i] = "?" end
    self.ins = assert(db:prepare("INSERT OR REPLACE INTO traces (" .. table.concat(COLUMNS, ",") ..
      ") VALUES (" .. table.concat(marks, ",") .. ")"))
  end
  local st = self.ins
  return db:transaction(function()
    local args = {}
    for _, r in ipairs(rows) do
      for i = 1, #COLUMNS do args[i] = r[COLUMNS[i]] end
      st:bind(unpack(args, 1, #COLUMNS))
      st:step()
      st:reset()
    end
    return true
  end)
end

--- store:prune(retention seconds, max rows, pause?): drop what is older or beyond the count, 500
--- rows per statement with pause() between them (the exporter yields there, so serving goes on).
function Store:prune(retention, max_rows, pause)
  local db = self.db
  local cutoff = retention and os.time() - retention or 0
  if max_rows then
    local r = db:query("SELECT start FROM traces ORDER BY start DESC LIMIT 1 OFFSET ?", max_rows)
    if r[1] and r[1].start > cutoff then cutoff = r[1].start end
  end
  repeat
    db:query("DELETE FROM traces WHERE rowid IN (SELECT rowid FROM traces WHERE start <= ? LIMIT 500)", cutoff)
    local n = db:changes()
    if pause and n > 0 then pause() end
  until n < 500
end

--- store:list{since =, tenant =, errors =, slow = ms, limit =} -> rows, newest first
function Store:list(o)
  local where, args = { "start >= ?" }, { o.since or 0 }
  if o.tenant then where[#where + 1] = "tenant = ?"; args[#args + 1] = o.tenant end
  if o.errors then where[#where + 1] = "(status >= 400 OR error IS NOT NULL)" end
  if o.slow then where[#where + 1] = "duration_ms >= ?"; args[#args + 1] = o.slow end
  args[#args + 1] = o.limit or 50
  local order = o.slow and "duration_ms DESC" or "start DESC"
  return self.db:query("SELECT request_id, trace_id, start, duration_ms, route, tenant, model, upstream, status, " ..
    "error, tokens_in, tokens_out, cost FROM traces WHERE " .. table.concat(where, " AND ") ..
    " ORDER BY " .. order .. " LIMIT ?", unpack(args))
end

--- store:get(id) -> the row for a request id (or trace id, or a unique prefix of either) | nil
function Store:get(id)
  local rows = self.db:query("SELECT * FROM traces WHERE request_id = ? OR trace_id = ? LIMIT 1", id, id)
  if rows[1] then return rows[1] end
  rows = self.db:query("SELECT * FROM traces WHERE request_id LIKE ? OR trace_id LIKE ? LIMIT 2", id .. "%", id .. "%")
  if #rows == 1 then return rows[1] end
  return nil, #rows > 1 and "more than one trace starts with " .. id or "no trace " .. id
end

--- store:timings(since) -> { steps = { [step] = {ms...} }, models = { [model] = {ms...} } }
function Store:timings(since)
  local steps, models = {}, {}
  for _, r in ipairs(self.db:query("SELECT model, upstream, duration_ms, steps FROM traces WHERE start >= ?", since)) do
    local m = r.upstream or r.model
    if m then
      local l = models[m]
      if not l then l = {}; models[m] = l end
      l[#l + 1] = r.duration_ms
    end
    for step, ms in (r.steps or ""):gmatch("([^=;]+)=([^;]+)") do
      local l = steps[step]
      if not l then l = {}; steps[step] = l end
      l[#l + 1] = tonumber(ms)
    end
  end
  return { steps = steps, models = models }
end

--- store.percentile(sorted, p) -> the nearest-rank percentile of an ascending list (nil if empty)
function M.percentile(sorted, p)
  local n = #sorted
  if n == 0 then return nil end
  return sorted[math.max(1, math.ceil(p / 100 * n))]
end

-- { [name] = {ms...} } -> { {name =, count =, p50 =, p95 =, p99 =}... } sorted by name, in ms to
-- the microsecond (as the steps are stored)
local function summarize(groups)
  local function us(v) return math.floor(v * 1000 + 0.5) / 1000 end
  local out = {}
  for name, list in pairs(groups) do
    table.sort(list)
    out[#out + 1] = { name = name, count = #list, p50 = us(M.percentile(list, 50)),
                      p95 = us(M.percentile(list, 95)), p99 = us(M.percentile(list, 99)) }
  end
  table.sort(out, function(a, b) return a.name < b.name end)
  return out
end

--- store:stats(since) -> { steps = {{name, count, p50, p95, p99}...}, models = {...} }: exact
--- percentiles of the stored requests since a Unix time (`moongate stats`, GET /admin/stats)
function Store:stats(since)
  local t = self:timings(since)
  return { steps = summarize(t.steps), models = summarize(t.models) }
end

--- store:tenants(since) -> { {tenant, requests, errors, tokens_in, tokens_out, cost}... } per tenant
--- (requests without one are tenant "-"), busiest first
function Store:tenants(since)
  return self.db:query("SELECT COALESCE(tenant, '-') AS tenant, COUNT(*) AS requests, " ..
    "SUM(CASE WHEN status >= 400 OR error IS NOT NULL THEN 1 ELSE 0 END) AS errors, " ..
    "COALESCE(SUM(tokens_in), 0) AS tokens_in, COALESCE(SUM(tokens_out), 0) AS tokens_out, " ..
    "COALESCE(SUM(cost), 0) AS cost FROM traces WHERE start >= ? GROUP BY COALESCE(tenant, '-') " ..
    "ORDER BY requests DESC, tenant", since)
end

function Store:close() self.db:close() end

return M
