-- moongate.gateway.versions: GET /admin/versions — the hot-reloaded units this worker serves (the
-- routing policy, the flags file, pipelines, plugins), each with its version hash and last reload.
local json = require "moongate.json"
local reload = require "moongate.reload"

local M = {}

local function kind_of(gw, path, flags_path)
  if path == gw.policy_path then return "routing policy" end
  if path == flags_path then return "flags" end
  if path:find("/pipelines/[^/]+$") then return "pipeline" end
  if path:find("/plugins/[^/]+$") then return "plugin" end
  return "unit"
end

local ORDER = { ["routing policy"] = 1, flags = 2, pipeline = 3, plugin = 4, unit = 5 }

-- A path as a reader knows it: relative to moongate's home or the config's folder when inside one.
local function short(path)
  local config = package.loaded["moongate.config"]
  local roots = { require("moongate.base").home }
  if type(config) == "table" and config.get then
    local c = config.get()
    if type(c) == "table" and c.dir then table.insert(roots, 1, c.dir) end
  end
  for _, root in ipairs(roots) do
    if path:sub(1, #root + 1) == root .. "/" then return path:sub(#root + 2) end
  end
  return path
end

--- show(gw) -> 200 { pid (the worker answering), stats = { loads, reloads, failures }, units = [{ kind, name, path, version,
--- loaded_at, last = { result, at, version, error | previous } }] }; a configured unit not loaded
--- yet (the policy before the first chat request) is listed with version null.
function M.show(gw)
  local flags_path = require("moongate.gateway.flags").path_of(gw)
  local loaded = reload.units()
  local expected = { gw.policy_path }
  if flags_path then expected[#expected + 1] = flags_path end
  for _, p in ipairs(expected) do
    if not loaded[p] then loaded[p] = { version = json.null } end
  end
  local out = json.array()
  for path, u in pairs(loaded) do
    out[#out + 1] = { kind = kind_of(gw, path, flags_path), name = short(path), path = path,
                      version = u.version, loaded_at = u.loaded_at or json.null, last = u.last or json.null }
  end
  table.sort(out, function(a, b)
    if a.kind ~= b.kind then return ORDER[a.kind] < ORDER[b.kind] end
    return a.name < b.name
  end)
  local st = reload.stats
  local body = { pid = require("moongate._process").pid(),
                 stats = { loads = st.loads, reloads = st.reloads, failures = st.failures }, units = out }
  return { status = 200, headers = { ["content-type"] = "application/json" }, body = assert(json.encode(body)) }
end

return M
