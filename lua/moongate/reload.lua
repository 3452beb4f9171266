-- moongate.reload: hot-reloaded units (pipelines, plugins, the routing policy). A unit is a
-- Lua file returning a module; an edit is compiled, run and validated in a fresh environment
-- and swapped in only if all of that succeeds. Requests keep the module they were given.
local watch = require "moongate._watch"
local sched = require "moongate._sched"
local metrics = require "moongate.metrics"

local M = {}

local units = {}        -- absolute path -> { mod =, version =, validate =, loaded_at =, last = }
local dirs = {}         -- wd -> folder
local watched = {}      -- folder -> true
local watcher, watcher_task
M.stats = { loads = 0, reloads = 0, failures = 0 }
local reloads = metrics.counter("moongate_reloads_total",
  "Hot reloads by unit (a pipeline, plugin, routing policy or flags file; \"config\" for SIGHUP) and result.",
  { "unit", "result" })
M.counter = reloads

local function log(level, msg, fields)
  local ok, l = pcall(require, "moongate.log")
  if ok and l[level] then return l[level](msg, fields) end
  local parts = {}
  for k, v in pairs(fields or {}) do parts[#parts + 1] = k .. "=" .. tostring(v) end
  io.stderr:write(level, ": ", msg, " ", table.concat(parts, " "), "\n")
end

local function read_file(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local s = f:read("*a")
  f:close()
  return s
end

-- Compile and run src in a fresh environment (globals it sets stay its own), then validate.
-- A text unit (a prompt template) is not compiled: its module is { text = src }.
local function build(path, src, validate, text)
  local mod
  if text then
    mod = { text = src }
  else
    local fn, err = loadstring(src, "@" .. path)
    if not fn then return nil, err end
    setfenv(fn, setmetatable({}, { __index = _G }))
    local ok
    ok, mod = pcall(fn)
    if not ok then return nil, tostring(mod) end
    if mod == nil then return nil, path .. ": the unit returned nothing" end
  end
  if validate then
    local vok, verr = validate(mod)
    if not vok then return nil, path .. ": " .. tostring(verr or "invalid") end
  end
  return mod
end

local function dirname(path) return path:match("^(.*)/[^/]*$") or "." end

local function absolute(path)
  if path:sub(1, 1) == "/" then return path end
  local ok, config = pcall(require, "moongate.config")
  if ok and type(config) == "table" and config.resolve then return config.resolve(path) end
  local pwd = os.getenv("PWD") or "."
  return pwd .. "/" .. path
end

-- Rebuild one unit after its file changed; keep the old version when anything fails.
local function refresh(path)
  local u = units[path]
  local src, err = read_file(path)
  if not src then return end            -- removed or mid-rename: keep serving the old one
  local version = watch.hash(src)
  if version == u.version or version == u.failed_version then return end
  local mod, berr = build(path, src, u.validate, u.text)
  if not mod then
    M.stats.failures = M.stats.failures + 1
    reloads:inc(1, path, "failed")
    u.last_error, u.failed_version = berr, version
    u.last = { result = "failed", at = os.time(), version = version, error = berr }
    log("error", "reload failed, old version kept", { unit = path, version = u.version, error = berr })
    return
  end
  local old = u.version
  u.mod, u.version, u.last_error, u.failed_version = mod, version, nil, nil
  u.last = { result = "ok", at = os.time(), version = version, previous = old }
  M.stats.reloads = M.stats.reloads + 1
  reloads:inc(1, path, "ok")
  log("info", "reloaded", { unit = path, version = version, previous = old })
end

local function watch_loop()
  while true do
    local events, err = watcher:next()
    if not events then
      if err ~= "timeout" then return end
    else
      for _, ev in ipairs(events) do
        local dir = dirs[ev.wd]
        local path = dir and (dir .. "/" .. ev.name)
        if path and units[path] and not ev.gone then refresh(path) end
      end
    end
  end
end

local function watch_dir(dir)
  if watched[dir] then return true end
  if not watcher then
    local err
    watcher, err = watch.new()
    if not watcher then return nil, err end
  end
  local wd, err = watcher:add(dir)
  if not wd then return nil, err end
  dirs[wd], watched[dir] = dir, true
  if not watcher_task or watcher_task:status() == "done" then
    watcher_task = sched.spawn(watch_loop)
  end
  return true
end

--- reload.require(path[, validate][, opts]) -> module, version | nil, err
-- The newest version of the unit at path that loaded and validated. The first call loads it
-- and starts watching its folder; later calls are a table lookup. opts.text: the file is text
-- (a prompt template), its module { text = the file's bytes }.
function M.require(path, validate, opts)
  if type(path) ~= "string" then error("reload.require: path must be a string", 2) end
  local u = units[path]
  if u then return u.mod, u.version end
  local abs = absolute(path)
  u = units[abs]
  if not u then
    local src, err = read_file(abs)
    if not src then return nil, err end
    local text = opts ~= nil and opts.text == true
    local mod, berr = build(abs, src, validate, text)
    if not mod then return nil, berr end
    u = { mod = mod, version = watch.hash(src), validate = validate, text = text, loaded_at = os.time() }
    units[abs] = u
    M.stats.loads = M.stats.loads + 1
    if sched.current() then
      local ok, werr = watch_dir(dirname(abs))
      if not ok then log("warn", "cannot watch for edits", { unit = abs, error = werr }) end
    end
  end
  units[path] = u    -- the caller's spelling resolves to the same unit next time
  return u.mod, u.version
end

--- reload.version(path) -> version id (content hash) of the loaded unit, or nil
function M.version(path)
  local u = units[path] or units[absolute(path)]
  return u and u.version
end

--- reload.units() -> { [path] = { version =, last_error =, loaded_at =, last = } } for admin views:
--- last is this worker's last reload of the unit, { result = "ok"|"failed", at =, version =,
--- error = (failed), previous = (ok) }, nil while the first load is still serving
function M.units()
  local out = {}
  for path, u in pairs(units) do
    if path:sub(1, 1) == "/" then
      out[path] = { version = u.version, last_error = u.last_error, loaded_at = u.loaded_at, last = u.last }
    end
  end
  return out
end

M.hash = watch.hash
return M
