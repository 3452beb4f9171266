-- moongate run tests/bench/pii/bench.lua: precision and recall per type on the labelled set, and
-- microseconds per message (2 KB chat messages with and without personal data).
local home = require("moongate.base").home
local score = dofile(home .. "/tests/bench/pii/score.lua")
local pii = require "moongate.pii"
local records = score.load(home .. "/tests/data/pii/labelled.jsonl")
local by = score.score(records)
print(string.format("%d records, span-level exact match (type and text)", #records))
print(string.format("%-8s %6s %6s %6s %10s %8s", "type", "tp", "fp", "fn", "precision", "recall"))
local types = {}
for t in pairs(by) do if t ~= "all" then types[#types + 1] = t end end
table.sort(types)
types[#types + 1] = "all"
for _, t in ipairs(types) do
  local c = by[t]
  local p, r = score.ratios(c)
  print(string.format("%-8s %6d %6d %6d %10.3f %8.3f", t, c.tp, c.fp, c.fn, p, r))
end

local clean = ("The customer asks whether the replacement part ships this week and what the " ..
  "tracking page will show once it leaves the warehouse in Leeds. "):rep(14):sub(1, 2048)
local dirty = (clean:sub(1, 1900) .. " card 4111 1111 1111 1111, mail jane@example.com, call +44 20 7946 0958"):sub(1, 2048)
for _, case in ipairs({ { "2 KB clean", clean }, { "2 KB with PII", dirty } }) do
  local N = 2000
  local t0 = os.clock()
  for _ = 1, N do pii.redact(case[2], { mode = "mask" }) end
  print(string.format("%-16s %7.1f us per message (pii.redact, mask)", case[1], (os.clock() - t0) / N * 1e6))
end
