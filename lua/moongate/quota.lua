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
--
-- q:reserve(ops) checks and takes all of a request's limits in one step, q:settle(ops) adds what
-- the call really used: with `url = "redis://..."` the counters live in Redis (quota_redis.lua)
-- and every moongate instance using it shares them.
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

-- A fixed TTL instead of an aligned window (a calendar month) keeps the key as given.
local function counter_key(self, op)
  if op.ttl then return self.prefix .. op.key, op.ttl end
  local start, reset = window_of(op.window)
  return self.prefix .. op.key .. ":" .. start, reset
end

--- q:reserve(ops) -> true, results | false, i, results | nil, err. Each op is
--- { kind = "take" | "peek" | "slot", key, amount, limit, window | ttl }: take adds amount if it
--- fits under limit, peek refuses once the counter reached limit, slot takes a concurrency slot.
--- results[i] = { remaining, reset }; the op that refused is i. All or nothing, as with Redis:
--- here the ops are taken in order and, when one refuses, what the earlier ones took is given
--- back (until then a concurrent request may be refused by it, never let past a limit).
function Shared:reserve(ops)
  local res = {}
  local function refuse(i, err)
    for j = i - 1, 1, -1 do
      local op = ops[j]
      if op.kind == "slot" then
        self:release(op.key)
        res[j][1] = res[j][1] + 1
      elseif op.kind == "take" then
        local k, reset = counter_key(self, op)
        self.dict.incr(k, -op.amount, 0, reset + 1)
        res[j][1] = res[j][1] + op.amount
      end
    end
    if err then return nil, err end
    return false, i, res
  end
  for i, op in ipairs(ops) do
    local kind = op.kind
    if kind == "slot" then
      local ok, cur = self:acquire(op.key, op.limit)
      if ok == nil then return refuse(i, cur) end
      res[i] = { op.limit - cur, 0 }
      if not ok then return refuse(i) end
    else
      local k, reset = counter_key(self, op)
      if kind == "peek" then
        local used = self.dict.get(k) or 0
        res[i] = { op.limit - used, reset }
        if used >= op.limit then return refuse(i) end
      else
        local v, err, cur = self.dict.incr_capped(k, op.amount, op.limit, reset + 1)
        if not v and err ~= "limit" then return refuse(i, err) end
        res[i] = { op.limit - (v or cur), reset }
        if not v then return refuse(i) end
      end
    end
  end
  return true, res
end

--- q:settle(ops) -> true | nil, err: { kind = "add", key, amount, window | ttl } adds
--- unconditionally, { kind = "release", key } gives a slot back.
function Shared:settle(ops)
  for _, op in ipairs(ops) do
    if op.kind == "release" then
      self:release(op.key)
    else
      local k, reset = counter_key(self, op)
      self.dict.incr(k, op.amount, 0, reset + 1)
    end
  end
  return true
end

Shared.waits = false   -- settle() never yields: it can run where a task cannot wait

--- quota.new{ prefix = "q:", url = nil | "redis://...", timeout = 1 } -> q | nil, err
function M.new(opts)
  opts = opts or {}
  local prefix = opts.prefix or "q:"
  if opts.url ~= nil then return require("moongate.quota_redis").new(opts.url, prefix, opts) end
  return setmetatable({ dict = require("moongate.shared").dict("quota"), prefix = prefix }, Shared)
end

return M
