-- moongate.breaker: one circuit breaker per provider (closed -> open -> half-open probe -> closed),
-- its state kept in moongate.shared so every worker sees the same circuit.
local M = {}

-- A per-process store with moongate.shared's API, for when the shared store is not built in.
local function local_store(clock)
  local data, expiry = {}, {}
  local function live(k)
    local e = expiry[k]
    if e and e <= clock() then data[k], expiry[k] = nil, nil end
    return data[k]
  end
  local s = {}
  function s.get(k) return live(k) end
  function s.set(k, v, ttl)
    data[k] = v
    expiry[k] = (ttl and ttl > 0) and clock() + ttl or nil
    return true
  end
  function s.add(k, v, ttl)
    if live(k) ~= nil then return nil, "exists" end
    return s.set(k, v, ttl)
  end
  function s.incr(k, by, init, ttl)
    local v = live(k)
    if v == nil then
      s.set(k, (init or 0) + by, ttl)
      return data[k]
    end
    data[k] = v + by
    return data[k]
  end
  function s.delete(k) data[k], expiry[k] = nil, nil end
  return s
end
M.local_store = local_store

local default_store
local function shared_store()
  if default_store then return default_store end
  if package.searchpath("moongate.shared", package.path) then
    local ok, shared = pcall(require, "moongate.shared")
    if ok and shared then
      default_store = shared.dict and shared.dict("breaker") or shared
      return default_store
    end
  end
  default_store = local_store(require("moongate").now)
  return default_store
end

local Breaker = {}
Breaker.__index = Breaker

-- opts: failures (5), failure_rate (nil), min_requests (10), window (30 s), cooldown (10 s),
-- probe_timeout (how long a half-open probe may take before another is let through; 30 s).
function M.new(opts, store, clock)
  opts = opts or {}
  local b = setmetatable({
    failures = opts.failures or 5,
    failure_rate = opts.failure_rate,
    min_requests = opts.min_requests or 10,
    window = opts.window or 30,
    cooldown = opts.cooldown or 10,
    probe_timeout = opts.probe_timeout or 30,
    prefix = opts.prefix or "br:",
    clock = clock or require("moongate").now,
    keys = {},
  }, Breaker)
  b.store = store or (clock and local_store(clock)) or shared_store()
  return b
end

-- Keys are built once per provider name, not per request.
function Breaker:_keys(name)
  local k = self.keys[name]
  if not k then
    local p = self.prefix .. name
    k = { open = p .. ":open", fails = p .. ":f", reqs = p .. ":n", probe = p .. ":probe" }
    self.keys[name] = k
  end
  return k
end

-- allow(name) -> true, is_probe | false, "circuit open", retry_in | false, "killed" (the kill
-- switch, breaker.killed(name) set by the flags stage, turned the provider off)
function Breaker:allow(name)
  local killed = self.killed
  if killed and killed(name) then return false, "killed" end
  local k = self:_keys(name)
  local s = self.store
  local open_until = s.get(k.open)
  if open_until == nil then return true, false end
  local now = self.clock()
  if now < open_until then return false, "circuit open", open_until - now end
  if s.add(k.probe, 1, self.probe_timeout) then return true, true end
  return false, "circuit open", 0
end

function Breaker:_open(k)
  local s = self.store
  s.set(k.open, self.clock() + self.cooldown)
  s.delete(k.fails)
  s.delete(k.reqs)
  s.delete(k.probe)
end

function Breaker:success(name, probe)
  local k = self:_keys(name)
  local s = self.store
  if probe then
    s.delete(k.open)
    s.delete(k.fails)
    s.delete(k.reqs)
    s.delete(k.probe)
    return
  end
  s.incr(k.reqs, 1, 0, self.window)
end

function Breaker:failure(name, probe)
  local k = self:_keys(name)
  local s = self.store
  if probe then return self:_open(k) end
  if s.get(k.open) ~= nil then return end   -- already open: a straggler's failure changes nothing
  local f = s.incr(k.fails, 1, 0, self.window) or 0
  local n = s.incr(k.reqs, 1, 0, self.window) or 0
  if f >= self.failures
    or (self.failure_rate and n >= self.min_requests and f / n >= self.failure_rate) then
    self:_open(k)
  end
end

-- state(name) -> { state = "closed"|"open"|"half_open", failures = n, requests = n, retry_in = s }
function Breaker:state(name)
  local k = self:_keys(name)
  local s = self.store
  local open_until = s.get(k.open)
  if open_until == nil then
    return { state = "closed", failures = s.get(k.fails) or 0, requests = s.get(k.reqs) or 0 }
  end
  local left = open_until - self.clock()
  if left > 0 then return { state = "open", failures = self.failures, retry_in = left } end
  return { state = "half_open", failures = self.failures, retry_in = 0 }
end

-- reset(name): close the circuit by hand (admin).
function Breaker:reset(name)
  local k = self:_keys(name)
  local s = self.store
  s.delete(k.open); s.delete(k.fails); s.delete(k.reqs); s.delete(k.probe)
end

return M
