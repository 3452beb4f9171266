-- moongate.cache.paraphrase_eval: the semantic cache's precision and recall on a labelled set of
-- question pairs (tests/data/paraphrases.tsv): each pair in an empty cache, the first question
-- stored, the second looked up. Used by the spec and by tests/bench/caches.
local semantic = require "moongate.cache.semantic"

local M = {}

--- eval.load(path) -> array of {label, kind, a, b}
function M.load(path)
  local pairs_ = {}
  for line in io.lines(path) do
    if line ~= "" and line:sub(1, 1) ~= "#" then
      local label, kind, a, b = line:match("^([^\t]+)\t([^\t]+)\t([^\t]+)\t([^\t]+)$")
      if not label then error("bad line in " .. path .. ": " .. line, 2) end
      pairs_[#pairs_ + 1] = { label = label, kind = kind, a = a, b = b }
    end
  end
  return pairs_
end

local ST = { ns = "eval", context = {} }

--- eval.run(pairs, {threshold =, guards = true}) -> {correct, wrong, missed, rejected,
--- wrong_by_kind = {...}, missed_pairs = {...}, wrong_pairs = {...}}
function M.run(list, opts)
  opts = opts or {}
  local r = { correct = 0, wrong = 0, missed = 0, rejected = 0, wrong_by_kind = {}, missed_pairs = {},
              wrong_pairs = {} }
  local ok, err = pcall(function()
    for _, p in ipairs(list) do
      local c = semantic.new { threshold = opts.threshold, embedder = opts.embedder, guards = opts.guards }
      if opts.embedder_object then c._embedder = opts.embedder_object end
      local gw = { providers = {} }
      local doc_a = { model = "m", messages = { { role = "user", content = p.a } } }
      local doc_b = { model = "m", messages = { { role = "user", content = p.b } } }
      local probe = c:lookup(doc_a, ST, gw, 0)
      if probe then c:store(probe, "answer", {}) end
      local hit = c:lookup(doc_b, ST, gw, 0)
      hit = hit and hit.entry ~= nil
      if p.label == "same" then
        if hit then r.correct = r.correct + 1 else r.missed = r.missed + 1; r.missed_pairs[#r.missed_pairs + 1] = p end
      else
        if hit then
          r.wrong = r.wrong + 1
          r.wrong_by_kind[p.kind] = (r.wrong_by_kind[p.kind] or 0) + 1
          r.wrong_pairs[#r.wrong_pairs + 1] = p
        else
          r.rejected = r.rejected + 1
        end
      end
      opts.embedder_object = c._embedder
    end
  end)
  if not ok then error(err, 0) end
  return r
end

return M
