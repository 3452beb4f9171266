-- moongate.gateway.releases: GET /admin/releases — each canary release as this gateway serves it
-- now: the candidate's version, its flag's share, whether it is switched off and why, and both
-- variants' figures over the watcher's window.
local json = require "moongate.json"
local errors = require "moongate.gateway.errors"
local releases = require "moongate.releases"

local M = {}

local function side(w)
  return { requests = w.requests, errors = w.errors, error_rate = w.error_rate, p95_ms = w.p95 and w.p95 * 1000 or json.null }
end

function M.show(gw)
  local set = gw.releases
  if not set then return errors.response(404, "no releases in the config", "releases_not_configured") end
  local out = json.array()
  for i, rel in ipairs(set.list) do
    local killed = releases.killed(rel)
    out[i] = { name = rel.name, flag = rel.flag, candidate = rel.candidate, version = rel.version,
               state = killed and "rolled back" or "live", reason = killed or json.null, window = rel.window,
               min_requests = rel.min_requests, max_error_rate = rel.max_error_rate,
               max_p95_ratio = rel.max_p95_ratio or json.null, shadow = rel.shadow or json.null,
               control = side(releases.window(rel, "control")), candidate_window = side(releases.window(rel, "candidate")) }
  end
  return { status = 200, headers = { ["content-type"] = "application/json" },
           body = assert(json.encode({ object = "list", data = out })) }
end

return M
