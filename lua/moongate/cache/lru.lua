-- moongate.cache.lru: an in-process least-recently-used map for one worker, bounded by entry
-- count and by bytes (the sum of the stored strings' sizes), with a TTL per entry.
local M = {}

local Lru = {}
Lru.__index = Lru

-- A monotonic clock through the FFI: a lookup stays one compiled trace (moongate.now is a
-- C function, which would stitch it).
local ffi = require "ffi"
pcall(ffi.cdef, [[
struct timespec { long tv_sec; long tv_nsec; };
int clock_gettime(int clk_id, struct timespec *tp);
]])
local C = ffi.C
local CLOCK_MONOTONIC = 1
local ts = ffi.new("struct timespec[1]")
local function now()
  C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts[0].tv_sec) + tonumber(ts[0].tv_nsec) * 1e-9
end
M.now = now

--- lru.new{max_entries = 1000, max_bytes = 16 MiB} -> lru. Values are strings (their size is
--- what max_bytes bounds) or tables with a .bytes field.
function M.new(opts)
  opts = opts or {}
  local head = {}           -- sentinel: head.next is the most recent, head.prev the least
  head.next, head.prev = head, head
  return setmetatable({ map = {}, head = head, count = 0, bytes = 0,
    max_entries = opts.max_entries or 1000, max_bytes = opts.max_bytes or 16 * 1024 * 1024,
    evictions = 0 }, Lru)
end

local function unlink(n)
  n.prev.next, n.next.prev = n.next, n.prev
end

local function push_front(head, n)
  n.next, n.prev = head.next, head
  head.next.prev = n
  head.next = n
end

local function size_of(v)
  if type(v) == "string" then return #v end
  return (type(v) == "table" and tonumber(v.bytes)) or 64
end

function Lru:_remove(n)
  unlink(n)
  self.map[n.key] = nil
  self.count = self.count - 1
  self.bytes = self.bytes - n.size
end

--- lru:get(key) -> value | nil (an expired entry is dropped and reads as absent)
function Lru:get(key)
  local n = self.map[key]
  if not n then return nil end
  if n.expires and n.expires <= now() then
    self:_remove(n)
    return nil
  end
  unlink(n)
  push_front(self.head, n)
  return n.value
end

--- lru:set(key, value, ttl?) -> true | nil, "too large" (a value over max_bytes is not kept)
function Lru:set(key, value, ttl)
  local size = size_of(value) + #key
  if size > self.max_bytes then return nil, "too large" end
  local n = self.map[key]
  if n then self:_remove(n) end
  n = { key = key, value = value, size = size, expires = (ttl and ttl > 0) and (now() + ttl) or nil }
  self.map[key] = n
  push_front(self.head, n)
  self.count = self.count + 1
  self.bytes = self.bytes + size
  local head = self.head
  while self.count > self.max_entries or self.bytes > self.max_bytes do
    self:_remove(head.prev)
    self.evictions = self.evictions + 1
  end
  return true
end

--- lru:delete(key)
function Lru:delete(key)
  local n = self.map[key]
  if n then self:_remove(n) end
end

--- lru:delete_where(fn) -> how many: drops every entry for which fn(key, value) is true
function Lru:delete_where(fn)
  local gone = {}
  for k, n in pairs(self.map) do if fn(k, n.value) then gone[#gone + 1] = n end end
  for _, n in ipairs(gone) do self:_remove(n) end
  return #gone
end

--- lru:flush(): drops everything
function Lru:flush()
  self.map, self.count, self.bytes = {}, 0, 0
  self.head.next, self.head.prev = self.head, self.head
end

M.Lru = Lru
return M
