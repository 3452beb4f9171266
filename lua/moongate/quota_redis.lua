-- moongate.quota_redis: moongate.quota's counters in Redis, shared by every moongate instance that
-- names the same server. A request's limits are checked and taken by one Lua script run in Redis
-- (atomic: nothing else runs between the check and the take), all or nothing; windows are
-- aligned on Redis's clock, so instances whose clocks differ still count in the same window.
local redis = require "moongate.redis"

local M = {}

local Redis = {}
Redis.__index = Redis
Redis.waits = true   -- calls yield: only from a task

local tostring, tonumber = tostring, tonumber

-- A slot's key expires if no instance touches it for this long (an instance that died holding
-- slots does not hold them forever).
local SLOT_TTL = 3600

-- KEYS: one counter per op. ARGV: per op kind, amount, limit, window (aligned, seconds) or 0,
-- ttl (fixed) or 0. Returns { 1, remaining1, reset1, ... } or { 0, i, remaining_i, reset_i }.
local RESERVE = [[
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local n = #KEYS
local keys, resets, cur = {}, {}, {}
for i = 1, n do
  local b = (i - 1) * 5
  local kind, amount, limit = ARGV[b + 1], tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])
  local window, ttl = tonumber(ARGV[b + 4]), tonumber(ARGV[b + 5])
  local k, reset = KEYS[i], ttl
  if window > 0 then
    local start = math.floor(now / window) * window
    k = k .. ':' .. start
    reset = start + window - now
  end
  keys[i], resets[i] = k, reset
  local v = tonumber(redis.call('GET', k) or '0')
  cur[i] = v
  if (kind == 'peek' and v >= limit) or (kind ~= 'peek' and v + amount > limit) then
    local out = { 0, i, tostring(limit - v), tostring(reset) }
    for j = 1, i - 1 do   -- what the limits before it have left (nothing was taken)
      out[#out + 1] = tostring(tonumber(ARGV[(j - 1) * 5 + 3]) - cur[j])
      out[#out + 1] = tostring(resets[j])
    end
    return out
  end
end
local out = { 1 }
for i = 1, n do
  local b = (i - 1) * 5
  local kind, amount, limit = ARGV[b + 1], tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])
  local v = cur[i]
  if kind ~= 'peek' then
    v = redis.call('INCRBY', keys[i], amount)
    redis.call('EXPIRE', keys[i], math.ceil(resets[i]) + 1)
  end
  out[#out + 1] = tostring(limit - v)
  out[#out + 1] = tostring(resets[i])
end
return out
]]

-- KEYS: counters; ARGV per op: kind (add | release), amount, window or 0, ttl or 0.
local SETTLE = [[
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
for i = 1, #KEYS do
  local b = (i - 1) * 4
  local kind, amount, window, ttl = ARGV[b + 1], tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3]), tonumber(ARGV[b + 4])
  local k, reset = KEYS[i], ttl
  if window > 0 then
    local start = math.floor(now / window) * window
    k = k .. ':' .. start
    reset = start + window - now
  end
  if kind == 'release' then
    if redis.call('DECR', k) < 0 then redis.call('SET', k, 0, 'EX', ttl) end
  else
    redis.call('INCRBY', k, amount)
    redis.call('EXPIRE', k, math.ceil(reset) + 1)
  end
end
return #KEYS
]]

--- new(url, prefix, opts) -> q | nil, err
function M.new(url, prefix, opts)
  local r, err = redis.connect(url, { timeout = opts.timeout or 1, connect_timeout = opts.connect_timeout })
  if not r then return nil, "quota backend: " .. err end
  return setmetatable({ r = r, prefix = prefix, url = url }, Redis)
end

local function fields(op)
  if op.ttl then return 0, op.ttl end
  return op.window, 0
end

--- q:reserve(ops) -> as moongate.quota's, all or nothing
function Redis:reserve(ops)
  local keys, args = {}, {}
  for i, op in ipairs(ops) do
    keys[i] = self.prefix .. op.key
    local window, ttl = fields(op)
    if op.kind == "slot" then window, ttl = 0, SLOT_TTL end
    local b = (i - 1) * 5
    args[b + 1], args[b + 2], args[b + 3] = op.kind, op.kind == "slot" and 1 or op.amount or 0, op.limit
    args[b + 4], args[b + 5] = window, ttl
  end
  local v, err = self.r:eval(RESERVE, keys, args)
  if type(v) ~= "table" then return nil, err or "quota backend: unexpected reply" end
  local res = {}
  if v[1] == 0 then
    local i = v[2]
    res[i] = { tonumber(v[3]), tonumber(v[4]) }
    for j = 1, i - 1 do res[j] = { tonumber(v[3 + 2 * j]), tonumber(v[4 + 2 * j]) } end
    return false, i, res
  end
  for i = 1, #ops do res[i] = { tonumber(v[2 * i]), tonumber(v[2 * i + 1]) } end
  return true, res
end

--- q:settle(ops) -> true | nil, err
function Redis:settle(ops)
  if #ops == 0 then return true end
  local keys, args = {}, {}
  for i, op in ipairs(ops) do
    keys[i] = self.prefix .. op.key
    local window, ttl = fields(op)
    if op.kind == "release" then window, ttl = 0, SLOT_TTL end
    local b = (i - 1) * 4
    args[b + 1], args[b + 2], args[b + 3], args[b + 4] = op.kind, op.amount or 0, window or 0, ttl or 0
  end
  local v, err = self.r:eval(SETTLE, keys, args)
  if v == nil then return nil, err end
  return true
end

-- The single-counter calls of moongate.quota, as one-op reserves and settles.
function Redis:take(key, amount, limit, window)
  local ok, i, res = self:reserve{ { kind = "take", key = key, amount = amount, limit = limit, window = window } }
  if ok == nil then return nil, i end
  local r = ok and i[1] or res[i]
  return ok, r[1], r[2]
end

function Redis:add(key, amount, window)
  return self:settle{ { kind = "add", key = key, amount = amount, window = window } }
end

function Redis:acquire(key, limit)
  local ok, i, res = self:reserve{ { kind = "slot", key = key, limit = limit } }
  if ok == nil then return nil, i end
  local r = ok and i[1] or res[i]
  return ok, limit - r[1]
end

function Redis:release(key) return self:settle{ { kind = "release", key = key } } end

return M
