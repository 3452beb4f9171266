-- moongate.edge.releases: which variant of each canary release a chat request gets (after the
-- flags stage: the release's flag decides, the kill switches override), and its figures counted
-- for the watcher when the request ends. Off (no cost) without `releases` in the config.
local releases = require "moongate.releases"
local reload = require "moongate.reload"
local observe = require "moongate.observe"

local M = {}
local Stage = {}
Stage.__index = Stage

local now = require("moongate").now

function M.new(config, gw)
  local set, err = releases.compile(config)
  if not set then return nil, err end
  if config.flags == nil then return nil, "releases need a flags file (flags =) whose flags pick the variant" end
  local chat = require "moongate.gateway.chat"
  local path = require("moongate.trace.export").settings.store or nil
  for _, rel in ipairs(set.list) do
    rel.candidate = require("moongate.gateway").resolve(rel.candidate_spec, config)
    local mod, version = reload.require(rel.candidate, chat.validate_policy)
    if not mod then return nil, "release " .. rel.name .. ": " .. tostring(version) end
    rel.version = version
    releases.go_live(rel, path)
    releases.watch(rel, path, function() return reload.version(rel.candidate) end)
    if rel.shadow then require("moongate.shadow").start(gw, path) end
  end
  gw.releases = set
  return setmetatable({ set = set }, Stage)
end

-- The candidate for this request? Its flag must be on (true or a variant other than "control"),
-- and neither the flags file's kill list (kill.pipelines, by release name) nor the watcher
-- may have switched it off.
function Stage:before(ctx)
  if ctx.route ~= "chat" then return nil end
  local values = ctx.flags and ctx.flags.values
  if not values then return nil end
  local sp = ctx.span
  local traced = sp and not sp.noop
  local picked, controls = nil, {}
  for _, rel in ipairs(self.set.list) do
    local v = values[rel.flag]
    local wants = v ~= nil and v ~= false and v ~= "control"
    if wants and not picked then
      local killed = releases.killed(rel)
      local fset = ctx.flag_set
      local manual = fset and require("moongate.flags").killed(fset, "pipeline", rel.name)
      if killed or manual then
        -- what would have gone to the candidate is served by control, and the trace says why
        if traced then
          sp:event("moongate.release.rolled_back", { ["moongate.release"] = rel.name,
            ["moongate.release.reason"] = killed or "switched off by the kill switch" })
        end
        controls[#controls + 1] = rel
      else
        picked = rel
      end
    else
      controls[#controls + 1] = rel
    end
  end
  local list = {}
  if picked then
    -- a request in one release's canary is nobody's control
    local mod, version = reload.require(picked.candidate, require("moongate.gateway.chat").validate_policy)
    list[1] = { rel = picked, variant = "candidate" }
    ctx.release = { rel = picked, variant = "candidate", policy = mod, version = version }
    ctx:header("x-moongate-release", picked.name .. "=candidate")
    if traced then
      sp:set("moongate.release", picked.name):set("moongate.release.variant", "candidate")
        :set("moongate.release.version", version)
    end
  else
    for i, rel in ipairs(controls) do list[i] = { rel = rel, variant = "control" } end
    local names = {}
    for i, rel in ipairs(controls) do names[i] = rel.name .. "=control" end
    ctx:header("x-moongate-release", table.concat(names, ", "))
    if traced and controls[1] then sp:set("moongate.release", controls[1].name):set("moongate.release.variant", "control") end
  end
  ctx.releases = list
  return nil
end

-- A finished control answer: a sampled copy goes to the candidate in the background (shadow).
function Stage:response(ctx, r)
  local list = rawget(ctx, "releases")
  if not list then return r end
  for _, e in ipairs(list) do
    if e.variant == "control" and e.rel.shadow then require("moongate.shadow").offer(e.rel, ctx, r) end
  end
  return r
end

function Stage:finally(ctx)
  local list = rawget(ctx, "releases")
  if not list then return end
  local status = observe.status_of(ctx)
  if rawget(ctx, "stream_failed") then status = 502 end   -- a stream cut after its 200
  local u = ctx.usage
  local spent = observe.cost_of(ctx)
  local seconds = now() - ctx.t0
  for _, r in ipairs(list) do
    releases.record(r.rel, r.variant, status, seconds, u.prompt_tokens, u.completion_tokens, spent)
  end
end

return M
