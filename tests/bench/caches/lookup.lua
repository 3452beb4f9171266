-- tests/bench/caches/lookup.lua (run with `moongate run`): the time of one cache lookup with N
-- entries in the cache, N = 1k, 10k, 100k: the semantic cache's nearest-neighbour scan (C
-- vector primitive, with the guards) next to the same scan written in plain Lua, and the exact
-- cache's two tiers (this worker's LRU; the shared dict).
local ffi = require "ffi"
local semantic = require "moongate.cache.semantic"
local exact = require "moongate.cache.exact"
local guards = require "moongate.cache.guards"
-- CPU time of this process: the machine may be shared, and a wall clock would count the others
local clock = os.clock

local DIM = 100   -- the default embedder's (GloVe 100d)
local function random_unit(v)
  local s = 0
  for i = 0, DIM - 1 do local x = math.random() - 0.5; v[i] = x; s = s + x * x end
  s = 1 / math.sqrt(s)
  for i = 0, DIM - 1 do v[i] = v[i] * s end
  return v
end

local function time_per_call(fn, n)
  fn()
  local t0 = clock()
  for _ = 1, n do fn() end
  return (clock() - t0) / n
end

local features = guards.features("how do i reset my password")
io.write(string.format("%-8s %16s %16s %8s %14s %14s\n", "entries", "semantic C (us)", "plain Lua (us)", "ratio",
  "exact LRU (us)", "exact shm (us)"))
for _, n in ipairs({ 1000, 10000, 100000 }) do
  math.randomseed(n)
  local c = semantic.new { max_entries = n + 1 }
  local probe = { scope = "bench", dim = DIM, features = features, ns = "b", vec = ffi.new("float[?]", DIM) }
  local flat = ffi.new("float[?]", n * DIM)
  for i = 0, n - 1 do
    random_unit(probe.vec)
    ffi.copy(flat + i * DIM, probe.vec, DIM * 4)
    c:store(probe, "answer " .. i, {})
  end
  -- probes near a stored entry: a hit at the end of the scan
  random_unit(probe.vec)
  local q = ffi.new("float[?]", DIM)
  ffi.copy(q, flat + math.floor(n / 2) * DIM, DIM * 4)
  ffi.copy(probe.vec, q, DIM * 4)
  local hit
  local sem = time_per_call(function() hit = c:nearest(probe) end, 2000)
  assert(hit and hit.entry == "answer " .. math.floor(n / 2), "the probe must find its entry")
  local lua = time_per_call(function()
    local best, bi = -2, -1
    for i = 0, n - 1 do
      local s, base = 0, i * DIM
      for j = 0, DIM - 1 do s = s + flat[base + j] * q[j] end
      if s > best then best, bi = s, i end
    end
    return bi
  end, n >= 100000 and 20 or 200)
  local e = exact.new { max_entries = n + 1, max_bytes = 1024 * 1024 * 1024 }
  local ns = "bench" .. n
  for i = 1, n do e:set(ns, string.format("%064d", i), "answer " .. i, 3600) end
  local k = string.format("%064d", math.floor(n / 2))
  local lru_t = time_per_call(function() return e:get(ns, k) end, 20000)
  e.lru:flush()
  local shm_t = time_per_call(function() e.lru:delete(ns .. ":" .. e:generation(ns) .. ":" .. k); return e:get(ns, k) end, 20000)
  e:flush(ns)
  io.write(string.format("%-8d %16.1f %16.1f %7.0fx %14.2f %14.2f\n", n, sem * 1e6, lua * 1e6, lua / sem,
    lru_t * 1e6, shm_t * 1e6))
end
