-- tests/bench/caches/precision.lua (run with `moongate run`): the semantic cache's correct hits,
-- wrong hits and misses on tests/data/paraphrases.tsv by threshold, with and without the guards,
-- next to GPTCache's published figures (999 pairs at threshold 0.8).
local ev = require "moongate.cache.paraphrase_eval"
local semantic = require "moongate.cache.semantic"
local list = ev.load(require("moongate.base").home .. "/tests/data/paraphrases.tsv")
io.write(string.format("%-30s %9s %8s %7s %8s %10s  %s\n", "", "threshold", "correct", "wrong", "missed",
  "precision", "wrong hits by kind"))
for _, t in ipairs({ 0.7, 0.8, 0.85, 0.9, 0.95 }) do
  for _, g in ipairs({ true, false }) do
    local r = ev.run(list, { threshold = t, guards = g })
    local kinds = {}
    for k, v in pairs(r.wrong_by_kind) do kinds[#kinds + 1] = k .. " " .. v end
    table.sort(kinds)
    local name = "moongate" .. (g and "" or ", no guards") .. (t == semantic.THRESHOLD and g and " (default)" or "")
    io.write(string.format("%-30s %9.2f %8d %7d %8d %9.1f%%  %s\n", name, t, r.correct, r.wrong, r.missed,
      100 * r.correct / math.max(1, r.correct + r.wrong), table.concat(kinds, ", ")))
  end
end
io.write(string.format("%-30s %9.2f %8d %7d %8d %9.1f%%  %s\n", "GPTCache (published, 999 pairs)", 0.8, 904, 92, 3,
  100 * 904 / (904 + 92), "(its own set)"))
for _, t in ipairs({ 0.8, semantic.THRESHOLD }) do
  local r = ev.run(list, { threshold = t })
  local g = ev.run(list, { threshold = t, guards = false })
  io.write(string.format("the guards' cost in recall at %.2f: %d paraphrase(s) of 153 missed because of them\n",
    t, r.missed - g.missed))
  for _, p in ipairs(r.missed_pairs) do
    local found = false
    for _, q in ipairs(g.missed_pairs) do if q == p then found = true end end
    if not found then io.write("  ", p.a, "  /  ", p.b, "\n") end
  end
end
