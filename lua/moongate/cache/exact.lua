-- moongate.cache.exact: answers by exact request hash in two tiers — an LRU in this worker, then
-- moongate.shared (every worker of the machine) — each tenant in its own namespace.
--
-- A namespace has a generation number in the shared dict; it is part of every key, so flushing
-- a tenant (one increment) makes every worker's entries of it unreachable at once, and its
-- shared entries are deleted as well.
--
-- With `shared = "redis://..."` the shared tier is Redis (moongate.cache.redis_tier), shared by
-- every instance using it; the generation is read from Redis with each lookup, so a flush on
-- one instance holds on all of them at once.
local lru = require "moongate.cache.lru"

local M = {}

local Exact = {}
Exact.__index = Exact

local function open_shared()
  if not package.searchpath("moongate.shared", package.path) then return nil end
  local ok, shared = pcall(require, "moongate.shared")
  if not ok then return nil end
  local dok, d = pcall(shared.dict, "cache")
  return dok and d or nil
end

--- exact.new(cfg) -> cache. cfg: ttl (seconds, 300), max_entries (per worker, 10000),
--- max_bytes (per worker, 32 MiB), max_entry_bytes (an answer larger is not kept, 1 MiB),
--- shared (false: this worker's LRU only; "redis://...": Redis, across instances).
function M.new(cfg)
  cfg = cfg or {}
  local remote
  if type(cfg.shared) == "string" then
    remote = assert(require("moongate.cache.redis_tier").new(cfg.shared, { prefix = cfg.prefix, timeout = cfg.timeout }))
  end
  return setmetatable({
    remote = remote,
    ttl = cfg.ttl or 300,
    max_entry_bytes = cfg.max_entry_bytes or 1024 * 1024,
    lru = lru.new { max_entries = cfg.max_entries or 10000, max_bytes = cfg.max_bytes or 32 * 1024 * 1024 },
    shared = cfg.shared ~= false and not remote and open_shared() or nil,
  }, Exact)
end

--- cache:generation(ns) -> the namespace's current generation (0 until it is first flushed)
function Exact:generation(ns)
  if self.remote then return self.remote:generation(ns) or "down" end   -- down: keys no entry has
  local s = self.shared
  return s and s.get("gen:" .. ns) or 0
end

local function full_key(self, ns, hash)
  return ns .. ":" .. self:generation(ns) .. ":" .. hash
end

--- cache:get(ns, hash) -> value, "local" | "shared" | nil
-- The Redis tier: one round trip reads the generation and the entry; the LRU is keyed by both.
local function remote_get(self, ns, hash)
  local gen, v, left = self.remote:lookup(ns, hash)
  if not gen then return nil end   -- Redis cannot answer: a miss
  local k = ns .. ":" .. gen .. ":" .. hash
  local lv = self.lru:get(k)
  if lv then return lv, "local" end
  if type(v) ~= "string" then return nil end
  self.lru:set(k, v, (left and left > 0) and left or self.ttl)
  return v, "shared"
end

function Exact:get(ns, hash)
  if self.remote then return remote_get(self, ns, hash) end
  local k = full_key(self, ns, hash)
  local v = self.lru:get(k)
  if v then return v, "local" end
  local s = self.shared
  if not s then return nil end
  v = s.get("x:" .. k)
  if type(v) ~= "string" then return nil end
  local left = s.ttl("x:" .. k)
  self.lru:set(k, v, (left and left > 0) and left or self.ttl)
  return v, "shared"
end

--- cache:set(ns, hash, value, ttl?) -> true | nil, err
function Exact:set(ns, hash, value, ttl)
  if #value > self.max_entry_bytes then return nil, "too large" end
  ttl = ttl or self.ttl
  if self.remote then
    local gen, err = self.remote:store(ns, hash, value, ttl)
    if not gen then return nil, err end
    self.lru:set(ns .. ":" .. gen .. ":" .. hash, value, ttl)
    return true
  end
  local k = full_key(self, ns, hash)
  self.lru:set(k, value, ttl)
  local s = self.shared
  if s then
    local ok, err = s.set("x:" .. k, value, ttl)
    if not ok then return nil, err end
  end
  return true
end

--- cache:flush(ns) -> entries deleted from the shared tier (nil, err: Redis cannot answer): every entry of the namespace is
--- gone for every worker (their LRU entries carry the old generation and are never read again).
function Exact:flush(ns)
  local s = self.shared
  local prefix = ns .. ":"
  self.lru:delete_where(function(k) return k:sub(1, #prefix) == prefix end)
  if self.remote then return self.remote:flush(ns) end
  if not s then return 0 end
  s.incr("gen:" .. ns, 1, 0)
  local n = 0
  for _, k in ipairs(s.keys("x:" .. prefix)) do s.delete(k); n = n + 1 end
  return n
end

return M
