-- moongate.quota: windowed counters and concurrency gauges for limits that must be exact across
-- a machine's workers, in the shared memory they all map.
--
--   local q = quota.new{ prefix = "q:" }
--   local ok, remaining, reset = q:take("r:acme", 1, 600, 60)   -- 600 per minute
--   q:add("om:acme", 250, 60)                                 -- what a call really used
--   if q:acquire("c:acme", 10) then ... q:release("c:acme") end
--
-- Windows are fixed and aligned to their length (a minute window resets on the minute); the
-- window's number is part of the stored key, so a window's counter dies with its TTL.
local moongate = require "moongate"

local M = {}

local floor = math.floor

-- ---- the shared-memory backend ----------------------------------------------------------------

local Shared = {}
Shared.__index = Shared

local function window_of(window)
  local t = moongate.now()
  local start = floor(t / window) * window
  return start, start + window - t
end

--- q:take(key, amount, limit, window) -> true, remaining, reset | false, remaining, reset
--- (nil, err when the store cannot be reached). Adds amount only when it fits under limit.
function Shared:take(key, amount, limit, window)
  local start, reset = window_of(window)
  local v, err, cur = self.dict.incr_capped(self.prefix .. key .. ":" .. start, amount, limit, reset + 1)
  if v then return true, limit - v, reset end
  if err == "limit" then return false, limit - cur, reset end
  return nil, err
end

--- q:add(key, amount, window) -> new value: unconditional (usage reconciled after a call; it
--- may pass the limit, which then refuses the next take).
function Shared:add(key, amount, window)
  local start, reset = window_of(window)
  return self.dict.incr(self.prefix .. key .. ":" .. start, amount, 0, reset + 1)
end

--- q:get(key, window) -> value, reset
function Shared:get(key, window)
  local start, reset = window_of(window)
  return self.dict.get(self.prefix .. key .. ":" .. start) or 0, reset
end

--- q:acquire(key, limit) -> true, current | false, current: one of limit concurrent slots.
function Shared:acquire(key, limit)
  local v, err, cur = self.dict.incr_capped(self.prefix .. key, 1, limit)
  if v then return true, v end
  if err == "limit" then return false, cur end
  return nil, err
end

--- q:release(key): gives a slot back.
function Shared:release(key)
  local v = self.dict.incr(self.prefix .. key, -1, 0)
  if v and v < 0 then self.dict.set(self.prefix .. key, 0) end
end

--- quota.new{ prefix = "q:" } -> q | nil, err
--- (opts.url names a shared store across machines; none is supported yet, so it is refused
--- rather than silently counting per machine)
function M.new(opts)
  opts = opts or {}
  local prefix = opts.prefix or "q:"
  if opts.url ~= nil then
    return nil, "quota_store: counters shared across machines (" .. tostring(opts.url) ..
      ") are not supported yet; remove quota_store to count per machine"
  end
  return setmetatable({ dict = require("moongate.shared").dict("quota"), prefix = prefix }, Shared)
end

return M
