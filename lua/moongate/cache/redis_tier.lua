-- moongate.cache.redis_tier: the exact cache's shared tier in Redis, read and written by every
-- moongate instance that names the same server. As in shared memory, a namespace (tenant) has a
-- generation number that is part of every key; a lookup reads the generation and the entry in
-- one script, so a flush on one instance (one INCR) is seen by the next lookup on all of them.
local redis = require "moongate.redis"

local M = {}
local Tier = {}
Tier.__index = Tier

local floor, tonumber, type = math.floor, tonumber, type

-- KEYS[1] the namespace's generation; ARGV: entry prefix, hash -> { gen, value, ms left } | { gen }
local LOOKUP = [[
local g = redis.call('GET', KEYS[1]) or '0'
local k = ARGV[1] .. g .. ':' .. ARGV[2]
local v = redis.call('GET', k)
if not v then return { g } end
return { g, v, redis.call('PTTL', k) }
]]

-- KEYS[1] the generation; ARGV: entry prefix, hash, value, ttl in ms -> gen
local STORE = [[
local g = redis.call('GET', KEYS[1]) or '0'
redis.call('SET', ARGV[1] .. g .. ':' .. ARGV[2], ARGV[3], 'PX', ARGV[4])
return g
]]

--- new(url, opts) -> tier | nil, err. opts: prefix ("mgc:"), timeout (seconds per call, 0.5)
function M.new(url, opts)
  opts = opts or {}
  local r, err = redis.connect(url, { timeout = opts.timeout or 0.5, connect_timeout = opts.timeout or 0.5 })
  if not r then return nil, "cache.exact.shared: " .. err end
  return setmetatable({ r = r, prefix = opts.prefix or "mgc:" }, Tier)
end

local function warn(what, err)
  local log = require "moongate.log"
  log.warn("cache shared tier unavailable", { op = what, error = tostring(err) })
end

--- tier:generation(ns) -> gen (a string) | nil, err
function Tier:generation(ns)
  local g, err = self.r:call("GET", self.prefix .. "gen:" .. ns)
  if g == nil then warn("generation", err); return nil, err end
  return g or "0"
end

--- tier:lookup(ns, hash) -> gen, value | nil, seconds left  (nil, err when Redis cannot answer)
function Tier:lookup(ns, hash)
  local p = self.prefix
  local v, err = self.r:eval(LOOKUP, { p .. "gen:" .. ns }, { p .. "x:" .. ns .. ":", hash })
  if type(v) ~= "table" then warn("get", err); return nil, err end
  if v[2] == nil then return v[1] end
  return v[1], v[2], tonumber(v[3]) / 1000
end

--- tier:store(ns, hash, value, ttl) -> gen | nil, err
function Tier:store(ns, hash, value, ttl)
  local p = self.prefix
  local g, err = self.r:eval(STORE, { p .. "gen:" .. ns }, { p .. "x:" .. ns .. ":", hash, value, floor(ttl * 1000 + 0.5) })
  if g == nil then warn("set", err); return nil, err end
  return g
end

--- tier:flush(ns) -> entries deleted | nil, err: the generation moves on (no instance reads the
--- old entries again), then the old entries are deleted.
function Tier:flush(ns)
  local p = self.prefix
  local g, err = self.r:call("INCR", p .. "gen:" .. ns)
  if not g then return nil, err end
  local n, cursor = 0, "0"
  repeat
    local res, serr = self.r:call("SCAN", cursor, "MATCH", p .. "x:" .. ns .. ":*", "COUNT", 500)
    if not res then return nil, serr end
    cursor = res[1]
    local keys = res[2]
    if #keys > 0 then
      local d, derr = self.r:call("UNLINK", unpack(keys))
      if not d then return nil, derr end
      n = n + d
    end
  until cursor == "0"
  return n
end

return M
