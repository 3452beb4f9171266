-- Scores moongate.pii on tests/data/pii/labelled.jsonl: span-level exact matches (type and text)
-- per type and overall, and the time per message. Used by tests/bench/pii/run and pii_spec.
local json = require "moongate.json"
local pii = require "moongate.pii"

local M = {}

function M.load(path)
  local records = {}
  for line in io.lines(path) do records[#records + 1] = json.decode(line) end
  return records
end

--- score(records) -> { [type] = { tp, fp, fn }, all = { tp, fp, fn } }
function M.score(records)
  local by = { all = { tp = 0, fp = 0, fn = 0 } }
  local function bump(t, k)
    by[t] = by[t] or { tp = 0, fp = 0, fn = 0 }
    by[t][k] = by[t][k] + 1
    by.all[k] = by.all[k] + 1
  end
  for _, r in ipairs(records) do
    local want = {}
    for _, s in ipairs(r.spans) do want[s.type .. "\0" .. s.text] = (want[s.type .. "\0" .. s.text] or 0) + 1 end
    for _, f in ipairs(pii.scan(r.text)) do
      local k = f.type .. "\0" .. f.text
      if (want[k] or 0) > 0 then want[k] = want[k] - 1; bump(f.type, "tp") else bump(f.type, "fp") end
    end
    for k, n in pairs(want) do for _ = 1, n do bump(k:match("^[^%z]+"), "fn") end end
  end
  return by
end

function M.ratios(c)
  local p = c.tp + c.fp > 0 and c.tp / (c.tp + c.fp) or 1
  local r = c.tp + c.fn > 0 and c.tp / (c.tp + c.fn) or 1
  return p, r
end

return M
