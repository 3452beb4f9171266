-- moongate.releases: canary releases of a candidate routing policy. A flag sends a share of
-- traffic (stable by tenant/user hash) to the candidate; each variant's requests, errors and
-- latency are counted per second across workers; a watcher compares canary with control over a
-- window and, when the canary is worse beyond the thresholds, switches it off (the automatic
-- kill switch), logs it, counts it and records it where `moongate releases status` reads it.
local moongate = require "moongate"
local shared = require "moongate.shared"
local metrics = require "moongate.metrics"
local sqlite = require "moongate.sqlite"

local M = {}

local format, floor = string.format, math.floor
local now = moongate.now

local BUCKETS = metrics.LATENCY
M.DEFAULTS = { window = 60, min_requests = 50, max_error_rate = 0.05, check_every = 5 }
local FIELDS = { flag = true, candidate = true, window = true, min_requests = true, max_error_rate = true,
                 max_p95_ratio = true, check_every = true, shadow = true, description = true }

local requests = metrics.counter("moongate_release_requests_total",
  "Requests of a release by variant (control, candidate) and outcome (ok, error: HTTP status >= 500).",
  { "release", "variant", "outcome" })
local duration = metrics.histogram("moongate_release_duration_seconds",
  "Request duration of a release by variant.", { "release", "variant" })
local tokens = metrics.counter("moongate_release_tokens_total", "Tokens used by a release's variant.",
  { "release", "variant", "direction" })
local cost = metrics.counter("moongate_release_cost_total", "Spend of a release's variant.", { "release", "variant" })
local rollbacks = metrics.counter("moongate_release_rollbacks_total",
  "Automatic rollbacks: the canary was worse than control beyond the release's thresholds.", { "release" })
M.rollbacks = rollbacks

local dict
local function d()
  if not dict then dict = shared.dict("releases") end
  return dict
end

-- ---- the config ------------------------------------------------------------------------------

local function positive(v) return type(v) == "number" and v > 0 and v < math.huge end

--- releases.compile(config, gw) -> { list = { release... }, by_name = {} } | nil (none) | nil, err
--- config.releases = { [name] = { flag =, candidate = "pipelines/route_v2.lua", window =,
---   min_requests =, max_error_rate =, max_p95_ratio =, check_every = } }
function M.compile(config)
  local t = config.releases
  if t == nil then return nil end
  if type(t) ~= "table" then return nil, "releases must be a table { [name] = { flag =, candidate = } }" end
  local names = {}
  for name in pairs(t) do
    if type(name) ~= "string" or not name:match("^[%w_%-]+$") then
      return nil, format("release name '%s' must be letters, digits, _ or -", tostring(name))
    end
    names[#names + 1] = name
  end
  table.sort(names)
  local out = { list = {}, by_name = {} }
  for _, name in ipairs(names) do
    local r = t[name]
    local where = "release " .. name
    if type(r) ~= "table" then return nil, where .. " must be a table" end
    for k in pairs(r) do
      if not FIELDS[k] then
        return nil, format("%s: unknown field '%s' (expected flag, candidate, window, min_requests, max_error_rate, " ..
          "max_p95_ratio, check_every, shadow)", where, tostring(k))
      end
    end
    if type(r.flag) ~= "string" or r.flag == "" then return nil, where .. ": flag must name a flag of the flags file" end
    if type(r.candidate) ~= "string" or r.candidate == "" then return nil, where .. ": candidate must be a routing policy file" end
    local rel = { name = name, flag = r.flag, candidate_spec = r.candidate }
    for k, v in pairs(M.DEFAULTS) do
      local x = r[k]
      if x == nil then x = v end
      if not positive(x) then return nil, format("%s: %s must be a number > 0", where, k) end
      rel[k] = x
    end
    if r.max_error_rate ~= nil and r.max_error_rate > 1 then return nil, where .. ": max_error_rate is a share, from 0 to 1" end
    if r.max_p95_ratio ~= nil then
      if not positive(r.max_p95_ratio) then return nil, where .. ": max_p95_ratio must be a number > 0" end
      rel.max_p95_ratio = r.max_p95_ratio
    end
    if r.shadow ~= nil then
      if type(r.shadow) ~= "number" or r.shadow < 0 or r.shadow > 1 then
        return nil, where .. ": shadow is the share of control traffic copied to the candidate, from 0 to 1"
      end
      rel.shadow = r.shadow > 0 and r.shadow or nil
    end
    rel.min_requests = floor(rel.min_requests)
    out.list[#out.list + 1], out.by_name[name] = rel, rel
  end
  return out
end

-- ---- the per-second window, shared by every worker -----------------------------------------------

local function key(rel, variant, sec, field) return format("w:%s:%s:%d:%s", rel.name, variant, sec, field) end

--- releases.record(rel, variant, status, seconds, tokens_in, tokens_out, spent)
function M.record(rel, variant, status, seconds, tin, tout, spent)
  local sec = floor(now())
  local ttl = rel.window + 10
  local s = d()
  local failed = status >= 500
  s.incr(key(rel, variant, sec, "n"), 1, 0, ttl)
  if failed then s.incr(key(rel, variant, sec, "e"), 1, 0, ttl) end
  local i = 1
  while BUCKETS[i] and seconds > BUCKETS[i] do i = i + 1 end
  s.incr(key(rel, variant, sec, "h" .. i), 1, 0, ttl)
  requests:inc(1, rel.name, variant, failed and "error" or "ok")
  duration:observe(seconds, rel.name, variant)
  if tin and tin > 0 then tokens:inc(tin, rel.name, variant, "input") end
  if tout and tout > 0 then tokens:inc(tout, rel.name, variant, "output") end
  if spent then cost:inc(spent, rel.name, variant) end
end

--- releases.window(rel, variant[, t]) -> { requests =, errors =, error_rate =, p95 = seconds (the
--- upper bound of the bucket it falls in) } over the last rel.window seconds
function M.window(rel, variant, t)
  local s = d()
  t = floor(t or now())
  local n, e, h = 0, 0, {}
  for sec = t - rel.window + 1, t do
    n = n + (s.get(key(rel, variant, sec, "n")) or 0)
    e = e + (s.get(key(rel, variant, sec, "e")) or 0)
    for i = 1, #BUCKETS + 1 do
      local c = s.get(key(rel, variant, sec, "h" .. i))
      if c then h[i] = (h[i] or 0) + c end
    end
  end
  local p95
  if n > 0 then
    local want, acc = math.ceil(0.95 * n), 0
    for i = 1, #BUCKETS + 1 do
      acc = acc + (h[i] or 0)
      if acc >= want then p95 = BUCKETS[i] or math.huge; break end
    end
  end
  return { requests = n, errors = e, error_rate = n > 0 and e / n or 0, p95 = p95 }
end

--- releases.verdict(rel, control, canary) -> nil (keep going) | reason (roll back)
function M.verdict(rel, ctl, can)
  if ctl.requests < rel.min_requests or can.requests < rel.min_requests then return nil end
  if can.error_rate - ctl.error_rate > rel.max_error_rate then
    return format("canary error rate %.1f%% (%d of %d) vs control %.1f%% (%d of %d) over %ds, more than %.1f points worse",
      100 * can.error_rate, can.errors, can.requests, 100 * ctl.error_rate, ctl.errors, ctl.requests, rel.window,
      100 * rel.max_error_rate)
  end
  if rel.max_p95_ratio and ctl.p95 and can.p95 and can.p95 > rel.max_p95_ratio * ctl.p95 then
    return format("canary p95 %.0f ms vs control %.0f ms over %ds, more than %.2fx", can.p95 * 1000, ctl.p95 * 1000,
      rel.window, rel.max_p95_ratio)
  end
  return nil
end

-- ---- state: what is live, since when, what was rolled back -----------------------------------------

local STATE_SCHEMA = [[
CREATE TABLE IF NOT EXISTS releases (
  name              TEXT NOT NULL,
  candidate         TEXT NOT NULL,      -- the candidate file
  candidate_version TEXT NOT NULL,      -- its content hash
  flag              TEXT NOT NULL,
  since             REAL NOT NULL,      -- when this candidate version first went live
  rolled_back       REAL,               -- when the watcher switched it off
  reason            TEXT,
  PRIMARY KEY (name, candidate_version)
);
]]

--- releases.state(path[, readonly]) -> db | nil, err: the state table in the store at path
function M.state(path, readonly)
  local db, err = sqlite.open(path, { readonly = readonly, busy_timeout = 2 })
  if not db then return nil, err end
  if not readonly then
    local ok, serr = db:exec(STATE_SCHEMA)
    if not ok then db:close(); return nil, serr end
  end
  return db
end

-- The automatic kill switch: a shared-dict entry per candidate version, which every worker reads.
local function kill_key(rel) return "killed:" .. rel.name .. ":" .. tostring(rel.version) end

--- releases.killed(rel) -> reason | nil
function M.killed(rel) return d().get(kill_key(rel)) end

--- releases.go_live(rel, path): note that this candidate version serves (once per version), and
--- take over a rollback recorded for it before a restart.
function M.go_live(rel, path)
  if not path then return end
  local db = M.state(path)
  if not db then return end
  db:query("INSERT OR IGNORE INTO releases (name, candidate, candidate_version, flag, since) VALUES (?,?,?,?,?)",
    rel.name, rel.candidate, rel.version, rel.flag, os.time())
  local rows = db:query("SELECT reason FROM releases WHERE name = ? AND candidate_version = ? AND rolled_back IS NOT NULL",
    rel.name, rel.version)
  db:close()
  if rows and rows[1] then d().set(kill_key(rel), rows[1].reason) end
end

--- releases.roll_back(rel, reason, path) -> true when this call switched it off (one worker wins)
function M.roll_back(rel, reason, path)
  if not d().add(kill_key(rel), reason) then return false end
  rollbacks:inc(1, rel.name)
  local log = package.loaded["moongate.log"] or require("moongate.log")
  log.error("release rolled back", { release = rel.name, candidate = rel.candidate, version = rel.version, reason = reason })
  if path then
    local db = M.state(path)
    if db then
      db:query("UPDATE releases SET rolled_back = ?, reason = ? WHERE name = ? AND candidate_version = ?",
        os.time(), reason, rel.name, rel.version)
      db:close()
    end
  end
  return true
end

--- releases.watch(rel, path): the watcher task of one release in this worker: every check_every
--- seconds, compare the window's canary with its control.
function M.watch(rel, path, version_of)
  return moongate.spawn(function()
    while true do
      moongate.sleep(rel.check_every)
      local v = version_of and version_of()
      if v and v ~= rel.version then rel.version = v; M.go_live(rel, path) end
      if not M.killed(rel) then
        local reason = M.verdict(rel, M.window(rel, "control"), M.window(rel, "candidate"))
        if reason then M.roll_back(rel, reason, path) end
      end
    end
  end)
end

return M
