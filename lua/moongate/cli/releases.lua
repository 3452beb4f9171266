-- `moongate releases status CONFIG`: the canary releases a gateway config declares — which
-- candidate version is live, at what share of traffic, since when, and what was rolled back.
local usage = [==[
usage: moongate releases status CONFIG [--db FILE] [--json]

For each release in CONFIG (releases = { NAME = { flag =, candidate =, ... } }): the candidate
file and its version (content hash), the share of traffic its flag sends it, and its state:
  live         serving its share since the time shown
  rolled back  the watcher switched it off (when, and why); a new version of the file goes live again
  killed       the flags file's kill.pipelines lists the release
  not started  no gateway has served this version yet
The state is read from the store the gateway writes (the config's trace.store; --db FILE
names another).
]==]

local json = require "moongate.json"
local releases = require "moongate.releases"
local flags = require "moongate.flags"
local lib = require "moongate.cli.lib.admin_db"

local format = string.format

local fail = require("moongate.cli.lib.args").failer("releases")

-- The share of requests a flag turns on, as text: "30%", "variants candidate 10", "tenants a, b".
local function share_of(set, name)
  local c = set and set.by_name[name]
  if not c then return "no such flag" end
  local r = c.rule
  if c.off then return "0% (off)" end
  local parts = {}
  if r.tenants then parts[#parts + 1] = "tenants " .. table.concat(r.tenants, ", ") end
  if r.variants then
    local on, total = 0, 0
    for _, v in ipairs(r.variants) do
      total = total + v.weight
      if v.name ~= "control" then on = on + v.weight end
    end
    local pct = total > 0 and on / total * (r.rollout or 100) or 0
    parts[#parts + 1] = format("%g%%", pct)
  elseif r.rollout then
    parts[#parts + 1] = format("%g%%", r.rollout)
  elseif not r.tenants then
    parts[#parts + 1] = "100%"
  end
  return table.concat(parts, "; ")
end

return function(args)
  local pok, o = pcall(lib.parse, args, { json = true, help = true, h = true })
  if not pok then return fail(type(o) == "table" and o.msg or tostring(o)) end
  if o.help or o.h then io.write(usage); return 0 end
  if o.words[1] ~= "status" or not o.words[2] or o.words[3] then
    return fail("usage: moongate releases status CONFIG [--db FILE] (see --help)")
  end
  local config = require "moongate.config"
  local cfg, err = config.load(config.absolute(o.words[2]))
  if not cfg then return fail(tostring(err)) end
  local set, rerr = releases.compile(cfg)
  if rerr then return fail(rerr) end
  if not set then io.write("no releases in ", o.words[2], "\n"); return 0 end
  local gateway = require "moongate.gateway"
  local fset, ferr
  if cfg.flags then
    fset, ferr = flags.load(gateway.resolve(cfg.flags, cfg))
    if not fset then return fail(ferr) end
  end
  local path = o.db
  if not path then
    local store = cfg.trace and cfg.trace.store
    path = type(store) == "string" and store or require("moongate.trace.store").default_path()
    if path:sub(1, 1) ~= "/" then path = cfg.dir .. "/" .. path end
  end
  local db
  local f = io.open(path, "rb")
  if f then f:close(); db = releases.state(path, true) end
  local rows = {}
  for _, rel in ipairs(set.list) do
    local file = gateway.resolve(rel.candidate_spec, cfg)
    local h = io.open(file, "rb")
    local version = h and require("moongate.reload").hash(h:read("*a"))
    if h then h:close() end
    local row = { release = rel.name, flag = rel.flag, candidate = rel.candidate_spec, version = version or "missing",
                  share = share_of(fset, rel.flag) }
    local st = db and version and select(2, pcall(db.query, db,
      "SELECT since, rolled_back, reason FROM releases WHERE name = ? AND candidate_version = ?", rel.name, version))
    st = type(st) == "table" and st[1] or nil
    if fset and flags.killed(fset, "pipeline", rel.name) then
      row.state = "killed"
      row.reason = select(2, flags.killed(fset, "pipeline", rel.name))
    elseif st and st.rolled_back then
      row.state, row.rolled_back, row.reason = "rolled back", lib.date(st.rolled_back), st.reason
    elseif st then
      row.state = "live"
    else
      row.state = "not started"
    end
    row.since = st and lib.date(st.since) or nil
    rows[#rows + 1] = row
  end
  if db then db:close() end
  if o.json then lib.json_out(json.array(rows)); return 0 end
  lib.table_out(rows, { "release", "flag", "candidate", "version", "share", "state", "since" })
  for _, r in ipairs(rows) do
    if r.reason then io.write(format("%s: %s%s\n", r.release, r.rolled_back and ("rolled back " .. r.rolled_back .. ": ") or "", r.reason)) end
  end
  return 0
end
