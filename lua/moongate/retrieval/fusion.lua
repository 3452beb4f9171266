-- Hybrid fusion of ranked lists (BM25, dense, ...): Reciprocal Rank Fusion and weighted
-- (min-max normalized) score fusion. Lists hold {key = k, score = s}, best first.
local M = {}

-- Adds each list's contribution, contribution(list, rank, hit) -> number, to one entry per
-- key, and returns the entries best first (ties by key, for stable output).
local function fuse(lists, weights, prepare)
  local by, out = {}, {}
  for name, list in pairs(lists) do
    local w = weights[name] or 1
    local contribution = prepare(list)
    for rank, hit in ipairs(list) do
      local e = by[hit.key]
      if not e then
        e = { key = hit.key, score = 0, ranks = {}, scores = {} }
        by[hit.key] = e
        out[#out + 1] = e
      end
      e.score = e.score + w * contribution(rank, hit)
      e.ranks[name] = rank
      e.scores[name] = hit.score
    end
  end
  table.sort(out, function(a, b)
    if a.score ~= b.score then return a.score > b.score end
    return tostring(a.key) < tostring(b.key)
  end)
  return out
end

--- Reciprocal Rank Fusion: score(d) = sum over lists of w_i / (k + rank_i(d)), rank from 1.
-- lists: {name = list, ...}; opts.k (60), opts.weights {name = w} (default 1 each).
-- Returns an array of {key =, score =, ranks = {name = rank}, scores = {name = score}}.
function M.rrf(lists, opts)
  opts = opts or {}
  local k = opts.k or 60
  return fuse(lists, opts.weights or {}, function()
    return function(rank) return 1 / (k + rank) end
  end)
end

--- Weighted fusion: each list's scores are min-max normalized to [0, 1] over the list,
-- then summed with weights (a document missing from a list gets 0 from it).
-- opts.weights {name = w} (default 1 each).
function M.weighted(lists, opts)
  opts = opts or {}
  return fuse(lists, opts.weights or {}, function(list)
    local lo, hi = math.huge, -math.huge
    for _, hit in ipairs(list) do
      if hit.score < lo then lo = hit.score end
      if hit.score > hi then hi = hit.score end
    end
    local span = hi - lo
    return function(_, hit) return span > 0 and (hit.score - lo) / span or 1 end
  end)
end

return M
