-- moongate.gateway.flags: GET /admin/flags — the flags file the gateway serves (every flag, its
-- rule, the kill list, the version hash) and how its last reload went.
local flags = require "moongate.flags"
local json = require "moongate.json"
local errors = require "moongate.gateway.errors"

local M = {}

local JSON = { ["content-type"] = "application/json" }

--- flags.path_of(gw) -> the flags file's absolute path: the edge stage's when it runs, else the
--- config's `flags`; nil without one
local function path_of(gw)
  local chain = gw.edge
  local st = chain and chain.stages and chain.stages.flags
  if st and st.path then return st.path end
  local cfg = gw.config
  local f = cfg and cfg.flags
  if type(f) ~= "string" then return nil end
  return require("moongate.gateway").resolve(f, cfg)
end

--- show(gw) -> response: 200 { path, version, reload = { ok, file_version, error, failures },
--- flags, kill } (flags.describe); 404 flags_not_configured without a `flags` file in the config; 503
--- flags_unavailable when the file never loaded.
M.path_of = path_of

function M.show(gw)
  local path = path_of(gw)
  if not path then
    return errors.response(404, "no flags file is configured (set flags = \"flags.lua\")", "flags_not_configured")
  end
  local set, err = flags.load(path)
  if not set then
    return errors.response(503, "the flags file does not load: " .. tostring(err), "flags_unavailable")
  end
  local d = flags.describe(set)
  local st = flags.status(path)
  d.path = path
  -- the last reload: ok when the file on disk is the version serving; else the error of the
  -- edit that was refused (the old version keeps serving), or none yet when it is being read
  local f = io.open(path, "rb")
  local src = f and f:read("*a")
  if f then f:close() end
  local on_disk = src and require("moongate.reload").hash(src) or nil
  local ok = on_disk == set.version
  d.reload = { ok = ok, file_version = on_disk, error = (not ok and st and st.error) or nil,
               failures = st and st.failures or 0 }
  return { status = 200, headers = JSON, body = assert(json.encode(d)) }
end

return M
