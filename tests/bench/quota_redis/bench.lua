-- tests/bench/quota_redis/bench.lua: run by ./run (REDIS_URL, CALLS)
local mg = require "moongate"
local quota = require "moongate.quota"
local redis = require "moongate.redis"

local url, calls = os.getenv("REDIS_URL"), tonumber(os.getenv("CALLS") or 20000)
local now = mg.now

-- The ops the edge reserves for a chat request with rpm and tokens_in_per_min.
local function ops(i)
  return { { kind = "take", key = "r:bench" .. i % 100, amount = 1, limit = 1e12, window = 60 },
           { kind = "take", key = "im:bench" .. i % 100, amount = 250, limit = 1e15, window = 60 } }
end

local function pct(t, p)
  table.sort(t)
  return t[math.max(1, math.floor(#t * p + 0.5))]
end

local function sequential(fn)
  local lat = {}
  for i = 1, calls do
    local t0 = now()
    fn(i)
    lat[i] = (now() - t0) * 1e6
  end
  return pct(lat, 0.5), pct(lat, 0.99)
end

local function concurrent(fn, tasks)
  local per = math.floor(calls / tasks)
  local t0 = now()
  local hs = {}
  for k = 1, tasks do
    hs[k] = mg.spawn(function() for i = 1, per do fn(k * per + i) end end)
  end
  for k = 1, tasks do hs[k]:wait() end
  return per * tasks / (now() - t0)
end

local shm = quota.new{ prefix = "bench:" }
local rq = assert(quota.new{ url = url, prefix = "bench:" })
local r = assert(redis.connect(url))
assert(r:call("PING") == "PONG")
assert(rq:reserve(ops(0)))

local rows = {
  { "shared memory reserve", function(i) assert(shm:reserve(ops(i))) end },
  { "redis PING (floor)", function() assert(r:call("PING")) end },
  { "redis reserve (1 script)", function(i) assert(rq:reserve(ops(i))) end },
}
print(("quota check: %d calls, one worker, redis-server on loopback"):format(calls))
print(("%-26s %10s %10s %10s %14s %10s"):format("", "p50 us", "p99 us", "vs shm", "64 tasks /s", "vs shm"))
local base50, base_rate
for _, row in ipairs(rows) do
  local p50, p99 = sequential(row[2])
  local rate = concurrent(row[2], 64)
  base50, base_rate = base50 or p50, base_rate or rate
  print(("%-26s %10.1f %10.1f %9.1fx %14.0f %9.2fx"):format(row[1], p50, p99, p50 / base50, rate, rate / base_rate))
end
