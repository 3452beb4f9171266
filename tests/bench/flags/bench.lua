-- The flags bench body (see run): microseconds per flags.evaluate over a 20-flag file of every
-- kind, and per flags.load + evaluate + killed, which is what the edge does for each request.
local flags = require "moongate.flags"
local path = ...

local function clock() return os.clock() end

-- Runs f until 0.5 s of CPU have passed; returns microseconds per call.
local function time(f)
  local n, t0 = 0, clock()
  local t
  repeat
    for i = 1, 1000 do f(i) end
    n = n + 1000
    t = clock() - t0
  until t > 0.5
  return t / n * 1e6
end

local set = assert(flags.load(path))
local tenants, users = {}, {}
for i = 1, 1024 do tenants[i], users[i] = "tenant-" .. i, "user-" .. (i * 7919 % 100003) end
local overrides = { dark_mode = true, pipeline = "rag_qa_v2" }
local sink

local rows = {
  { "evaluate, tenant only", function(i)
      sink = flags.evaluate(set, { tenant = tenants[i % 1024 + 1] }) end },
  { "evaluate, tenant + user", function(i)
      local j = i % 1024 + 1
      sink = flags.evaluate(set, { tenant = tenants[j], user = users[j] }) end },
  { "evaluate, tenant + user + overrides", function(i)
      local j = i % 1024 + 1
      sink = flags.evaluate(set, { tenant = tenants[j], user = users[j], overrides = overrides }) end },
  { "per request: load + evaluate + killed", function(i)
      local j = i % 1024 + 1
      local s = flags.load(path)
      sink = flags.evaluate(s, { tenant = tenants[j], user = users[j] })
      sink = flags.killed(s, "model", "gpt-4o-mini") end },
}
print(string.format("flags bench: %d flags, version %s", set.n, set.version))
for _, r in ipairs(rows) do
  time(r[2])   -- warm up (JIT)
  print(string.format("  %-40s %6.3f us", r[1], time(r[2])))
end
