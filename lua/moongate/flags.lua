-- moongate.flags: the feature flags file (on/off, percentage rollouts, tenant lists, weighted
-- variants) and the kill switch, hot-reloaded, compiled once per version, evaluated per request.
--
-- The file is a Lua file returning { flags = { [name] = rule }, kill = { ... } }; see
-- docs/flags.md. Its version id is the file's content hash (moongate.reload).
local ffi = require "ffi"
local reload = require "moongate.reload"

ffi.cdef [[
uint64_t XXH3_64bits(const void *data, size_t len);
uint64_t XXH3_64bits_withSeed(const void *data, size_t len, uint64_t seed);
]]
local C = ffi.C
local xxh3, xxh3_seed = C.XXH3_64bits, C.XXH3_64bits_withSeed
local tonumber, type, pairs, ipairs = tonumber, type, pairs, ipairs
local format, concat, sort = string.format, table.concat, table.sort
-- values tables are made at their final size: growing one 20-flag table rehashes five times
local new_tab = require "table.new"

local M = {}

-- A bucket is 0..SCALE-1: rollout percentages and variant shares resolve to 0.0001%.
local SCALE = 1000000
M.SCALE = SCALE

local RULE_FIELDS = { enabled = true, rollout = true, tenants = true, deny = true, variants = true,
                      description = true }
local TOP_FIELDS = { flags = true, kill = true }
-- kill switch lists: the file's plural field -> the kind killed() is asked about
local KILL_FIELDS = { providers = "provider", pipelines = "pipeline", tools = "tool", models = "model" }
M.KINDS = { "provider", "pipeline", "tool", "model" }
local DEFAULT_REASON = "switched off by the kill switch"

-- ---- hashing ---------------------------------------------------------------------------------

local function seed_of(s) return xxh3(s, #s) end

-- The hashed key: the tenant, or tenant NUL user when a user is given.
local function key_of(tenant, user)
  tenant = tenant or ""
  if user ~= nil and user ~= "" then return tenant .. "\0" .. user end
  return tenant
end

local function bucket(seed, key)
  return tonumber(xxh3_seed(key, #key, seed) % SCALE)
end

--- flags.bucket(flag, tenant[, user][, what]) -> 0..999999: where the tenant/user falls for the
--- flag's rollout (what = "rollout", the default) or its variants (what = "variants").
function M.bucket(flag, tenant, user, what)
  if type(flag) ~= "string" then error("flags.bucket: flag must be a string", 2) end
  local salt = what == "variants" and flag .. "\0variants" or flag
  return bucket(seed_of(salt), key_of(tenant, user))
end

-- ---- validation and compilation ---------------------------------------------------------------

local function sorted_keys(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = k end
  sort(ks, function(a, b) return tostring(a) < tostring(b) end)
  return ks
end

-- A list of non-empty strings -> a set of them | nil, err
local function string_set(v, what)
  if type(v) ~= "table" then return nil, what .. " must be a list of names" end
  local n = #v
  for k in pairs(v) do
    if type(k) ~= "number" or k < 1 or k > n or k % 1 ~= 0 then
      return nil, what .. " must be a list of names"
    end
  end
  local set = {}
  for i = 1, n do
    local s = v[i]
    if type(s) ~= "string" or s == "" then
      return nil, format("%s[%d] must be a non-empty string", what, i)
    end
    set[s] = true
  end
  return set
end

local function compile_variants(v, what)
  if type(v) ~= "table" or #v == 0 then return nil, what .. " must be a non-empty list of { name =, weight = }" end
  local names, weights, seen, total = {}, {}, {}, 0
  for k in pairs(v) do
    if type(k) ~= "number" or k < 1 or k > #v or k % 1 ~= 0 then
      return nil, what .. " must be a list of { name =, weight = }"
    end
  end
  for i, var in ipairs(v) do
    local w = format("%s[%d]", what, i)
    if type(var) ~= "table" then return nil, w .. " must be a table { name =, weight = }" end
    for f in pairs(var) do
      if f ~= "name" and f ~= "weight" then
        return nil, format("%s: unknown field '%s' (expected name, weight)", w, tostring(f))
      end
    end
    if type(var.name) ~= "string" or var.name == "" then return nil, w .. ": name must be a non-empty string" end
    if seen[var.name] then return nil, format("%s: variant '%s' is listed twice", w, var.name) end
    local wt = var.weight
    if type(wt) ~= "number" or wt ~= wt or wt < 0 or wt == math.huge then
      return nil, format("%s: weight must be a number >= 0", w)
    end
    seen[var.name] = true
    names[i], weights[i] = var.name, wt
    total = total + wt
  end
  if not (total > 0) then return nil, what .. ": the weights must sum to more than 0" end
  -- cumulative thresholds on the bucket scale; the last is SCALE so every bucket lands
  local cum, acc = {}, 0
  for i = 1, #weights do
    acc = acc + weights[i]
    cum[i] = math.floor(acc / total * SCALE + 0.5)
  end
  cum[#cum] = SCALE
  return { names = names, weights = weights, cum = cum, total = total, set = seen }
end

local function compile_rule(name, r)
  local where = format("flag '%s'", name)
  if type(r) ~= "table" then return nil, where .. " must be a table" end
  for k in pairs(r) do
    if not RULE_FIELDS[k] then
      return nil, format("%s: unknown field '%s' (expected enabled, rollout, tenants, deny, variants, description)",
        where, tostring(k))
    end
  end
  if r.enabled == nil and r.rollout == nil and r.tenants == nil and r.deny == nil and r.variants == nil then
    return nil, where .. ": no rule (give enabled, rollout, tenants, deny or variants)"
  end
  local c = { name = name, rule = r }
  if r.description ~= nil and type(r.description) ~= "string" then
    return nil, where .. ": description must be a string"
  end
  if r.enabled ~= nil then
    if type(r.enabled) ~= "boolean" then return nil, where .. ": enabled must be true or false" end
    c.off = r.enabled == false
  end
  if r.rollout ~= nil then
    local p = r.rollout
    if type(p) ~= "number" or p ~= p or p < 0 or p > 100 then
      return nil, where .. ": rollout must be a percentage from 0 to 100"
    end
    c.threshold = math.floor(p * (SCALE / 100) + 0.5)
    c.seed = seed_of(name)
  end
  local err
  if r.tenants ~= nil then
    c.allow, err = string_set(r.tenants, where .. ": tenants")
    if not c.allow then return nil, err end
  end
  if r.deny ~= nil then
    c.deny, err = string_set(r.deny, where .. ": deny")
    if not c.deny then return nil, err end
    if c.allow then
      for t in pairs(c.deny) do
        if c.allow[t] then return nil, format("%s: tenant '%s' is both in tenants and in deny", where, t) end
      end
    end
  end
  if r.variants ~= nil then
    c.variants, err = compile_variants(r.variants, where .. ": variants")
    if not c.variants then return nil, err end
    c.vseed = seed_of(name .. "\0variants")
  end
  return c
end

local function compile_kill(k)
  local kill = {}
  for _, kind in pairs(KILL_FIELDS) do kill[kind] = {} end
  if k == nil then return kill end
  if type(k) ~= "table" then return nil, "kill must be a table { providers =, pipelines =, tools =, models = }" end
  for field, list in pairs(k) do
    local kind = KILL_FIELDS[field]
    if not kind then
      return nil, format("kill: unknown field '%s' (expected providers, pipelines, tools, models)", tostring(field))
    end
    if type(list) ~= "table" then return nil, format("kill.%s must be a list of names", field) end
    local out = kill[kind]
    for key, v in pairs(list) do
      if type(key) == "number" then
        if type(v) ~= "string" or v == "" then
          return nil, format("kill.%s[%s] must be a non-empty string", field, tostring(key))
        end
        if out[v] == nil then out[v] = DEFAULT_REASON end
      elseif type(key) == "string" and key ~= "" then
        -- name = "why" (or true): the reason killed() returns
        if v == true then v = DEFAULT_REASON end
        if type(v) ~= "string" or v == "" then
          return nil, format("kill.%s.%s: give a reason string or true", field, key)
        end
        out[key] = v
      else
        return nil, format("kill.%s must be a list of names", field)
      end
    end
  end
  return kill
end

--- flags.compile(tbl) -> set | nil, err: validate a flags table and build what evaluate needs.
--- (load() does this for files; set.version is nil until load() gives it the content hash.)
function M.compile(t)
  if type(t) ~= "table" then return nil, "the flags file must return a table { flags =, kill = }" end
  for k in pairs(t) do
    if not TOP_FIELDS[k] then return nil, format("unknown field '%s' (expected flags, kill)", tostring(k)) end
  end
  local fl = t.flags
  if fl == nil then fl = {} end
  if type(fl) ~= "table" then return nil, "flags must be a table { [name] = rule }" end
  local names, compiled, by_name = {}, {}, {}
  for name in pairs(fl) do
    if type(name) ~= "string" or not name:match("^[%w_][%w_.%-]*$") then
      return nil, format("flag name '%s' must be letters, digits, _, . or -", tostring(name))
    end
    names[#names + 1] = name
  end
  sort(names)
  for i, name in ipairs(names) do
    local c, err = compile_rule(name, fl[name])
    if not c then return nil, err end
    compiled[i], by_name[name] = c, c
  end
  local kill, kerr = compile_kill(t.kill)
  if not kill then return nil, kerr end
  return { names = names, n = #names, compiled = compiled, by_name = by_name, kill = kill, source = t }
end

-- ---- loading -----------------------------------------------------------------------------------

-- The compiled set of each loaded file table; reload keeps the table, we keep what it compiles to.
local sets = setmetatable({}, { __mode = "k" })
local last_good = {}    -- path -> the set load() last returned for it

-- reload's validator: compile while the edit is being checked, so a bad file never swaps in
-- and a good one is compiled once per version.
local function validate(mod)
  local set, err = M.compile(mod)
  if not set then return nil, err end
  sets[mod] = set
  return true
end

--- flags.load(path) -> set | nil, err. The newest version of the file that loaded and
--- validated (a bad edit keeps the old one); cheap after the first call. set.version is the
--- file's content hash.
function M.load(path)
  if type(path) ~= "string" then error("flags.load: path must be a string", 2) end
  local mod, version = reload.require(path, validate)
  if not mod then return nil, version end
  local set = sets[mod]
  if not set then
    -- loaded by other code without our validator: compile here, and keep the last good set
    -- when this version does not validate
    local err
    set, err = M.compile(mod)
    if not set then
      local prev = last_good[path]
      if prev then return prev end
      return nil, err
    end
    sets[mod] = set
  end
  if set.version == nil then set.version = version end
  if last_good[path] ~= set then last_good[path] = set end
  return set
end

--- flags.status(path) -> { version =, error = the last failed reload's message or nil,
--- failures = reloads that failed in this worker (all units) } | nil when never loaded
function M.status(path)
  local units = reload.units()
  local u = units[path]
  if not u then
    local ok, config = pcall(require, "moongate.config")
    if ok and config.absolute then u = units[config.absolute(path)] end
  end
  if not u then return nil end
  return { version = u.version, error = u.last_error, failures = reload.stats.failures }
end

-- ---- evaluation ------------------------------------------------------------------------------

-- Is an override a value this flag can take?
local function valid_override(c, v)
  if c.variants then return v == false or (type(v) == "string" and c.variants.set[v] == true) end
  return type(v) == "boolean"
end

--- flags.evaluate(set, { tenant =, user =, overrides = { [flag] = value } })
---   -> { version = set.version, values = { [flag] = true | false | "variant" } }
--- Per flag, first match wins: the tenant's override; enabled = false; deny; not in tenants;
--- outside the rollout; then the variant picked by weight, or true.
function M.evaluate(set, opts)
  if type(set) ~= "table" or set.compiled == nil then error("flags.evaluate: set must come from flags.load", 2) end
  local tenant, user, overrides
  if opts ~= nil then tenant, user, overrides = opts.tenant, opts.user, opts.overrides end
  local key = key_of(tenant, user)
  local values = new_tab(0, set.n)
  local compiled = set.compiled
  for i = 1, set.n do
    local c = compiled[i]
    local name = c.name
    local v
    local o = overrides and overrides[name]
    if o ~= nil and valid_override(c, o) then
      v = o
    elseif c.off then
      v = false
    elseif c.deny and tenant and c.deny[tenant] then
      v = false
    elseif c.allow and not (tenant and c.allow[tenant]) then
      v = false
    elseif c.threshold and bucket(c.seed, key) >= c.threshold then
      v = false
    elseif c.variants then
      local b, cum = bucket(c.vseed, key), c.variants.cum
      local j = 1
      while b >= cum[j] do j = j + 1 end
      v = c.variants.names[j]
    else
      v = true
    end
    values[name] = v
  end
  return { version = set.version, values = values }
end

--- flags.check_overrides(set, overrides) -> true | nil, err: does a tenant policy's `flags`
--- pin only flags this file has, to values they can take? (evaluate ignores the others)
function M.check_overrides(set, overrides)
  if overrides == nil then return true end
  if type(overrides) ~= "table" then return nil, "flags overrides must be a table { [flag] = value }" end
  for _, name in ipairs(sorted_keys(overrides)) do
    local c = set.by_name[name]
    if not c then return nil, format("override of unknown flag '%s'", tostring(name)) end
    if not valid_override(c, overrides[name]) then
      if c.variants then
        return nil, format("override of flag '%s' must be false or one of its variants (%s)", name,
          concat(c.variants.names, ", "))
      end
      return nil, format("override of flag '%s' must be true or false", name)
    end
  end
  return true
end

--- flags.killed(set, kind, name) -> true, reason | false: has the kill switch turned it off?
--- kind: "provider" | "pipeline" | "tool" | "model"
function M.killed(set, kind, name)
  local k = set.kill[kind]
  if k == nil then
    error(format("flags.killed: kind must be provider, pipeline, tool or model, not '%s'", tostring(kind)), 2)
  end
  local reason = k[name]
  if reason then return true, reason end
  return false
end

-- ---- display ---------------------------------------------------------------------------------

local function list_str(set)
  return concat(sorted_keys(set), ", ")
end

-- One line saying what a flag does, in evaluation order.
local function rule_text(c)
  local parts = {}
  local r = c.rule
  if c.off then return "off (enabled = false)" end
  if c.deny then parts[#parts + 1] = "deny " .. list_str(c.deny) end
  if c.allow then parts[#parts + 1] = "tenants " .. list_str(c.allow) end
  if r.rollout ~= nil then parts[#parts + 1] = format("rollout %s%%", tostring(r.rollout)) end
  if c.variants then
    local vs = {}
    for i, n in ipairs(c.variants.names) do vs[i] = format("%s %s", n, tostring(c.variants.weights[i])) end
    parts[#parts + 1] = "variants " .. concat(vs, ", ")
  end
  if #parts == 0 then return "on" end
  return concat(parts, "; ")
end
M.rule_text = rule_text

local function kind_of(c)
  if c.variants then return "variants" end
  if c.threshold then return "rollout" end
  if c.allow or c.deny then return "tenants" end
  return "switch"
end

--- flags.describe(set) -> { version =, flags = { { name =, kind =, rule =, description =,
---   enabled =, rollout =, tenants =, deny =, variants = } ... sorted by name },
---   kill = { providers = { { name =, reason = } }, pipelines =, tools =, models = } }
--- plain tables (arrays marked for moongate.json), for `moongate flags show` and /admin/flags.
function M.describe(set)
  local json = require "moongate.json"
  local out = json.array()
  for i, c in ipairs(set.compiled) do
    local r = c.rule
    local d = { name = c.name, kind = kind_of(c), rule = rule_text(c), description = r.description,
                enabled = r.enabled, rollout = r.rollout }
    if c.allow then d.tenants = json.array(sorted_keys(c.allow)) end
    if c.deny then d.deny = json.array(sorted_keys(c.deny)) end
    if c.variants then
      local vs = json.array()
      for j, n in ipairs(c.variants.names) do vs[j] = { name = n, weight = c.variants.weights[j] } end
      d.variants = vs
    end
    out[i] = d
  end
  local kill = {}
  for field, kind in pairs(KILL_FIELDS) do
    local list = json.array()
    for _, name in ipairs(sorted_keys(set.kill[kind])) do
      list[#list + 1] = { name = name, reason = set.kill[kind][name] }
    end
    kill[field] = list
  end
  return { version = set.version, flags = out, kill = kill }
end

return M
