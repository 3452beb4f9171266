-- moongate.eval.stats: the figures an eval report gives — means, percentiles, and the paired
-- bootstrap confidence interval of a score difference between two runs over the same cases.
local M = {}

function M.mean(xs)
  if #xs == 0 then return nil end
  local s = 0
  for _, x in ipairs(xs) do s = s + x end
  return s / #xs
end

--- percentile(xs, p) -> the p-th percentile (0..100) by nearest rank, or nil for no values
function M.percentile(xs, p)
  if #xs == 0 then return nil end
  local s = {}
  for i, x in ipairs(xs) do s[i] = x end
  table.sort(s)
  local rank = math.max(1, math.ceil(p / 100 * #s))
  return s[rank]
end

-- Park–Miller: a fixed seed makes a report's intervals the same on every run of the same data.
local function prng(seed)
  local x = seed % 2147483647
  if x <= 0 then x = x + 2147483646 end
  return function(n)
    x = 16807 * x % 2147483647
    return x % n + 1
  end
end

M.RESAMPLES = 2000

--- paired_bootstrap(a, b[, resamples][, seed]) -> { n =, diff = mean(b - a), low =, high = }
--- a[i] and b[i] are the same case's scores in the two runs; the interval is the 2.5th..97.5th
--- percentile of the mean difference over resamples of the cases.
function M.paired_bootstrap(a, b, resamples, seed)
  local d = {}
  for i = 1, #a do d[i] = b[i] - a[i] end
  local n = #d
  if n == 0 then return { n = 0 } end
  resamples = resamples or M.RESAMPLES
  local rand = prng(seed or 20260101)
  local means = {}
  for r = 1, resamples do
    local s = 0
    for _ = 1, n do s = s + d[rand(n)] end
    means[r] = s / n
  end
  table.sort(means)
  local lo = means[math.max(1, math.floor(0.025 * resamples + 0.5))]
  local hi = means[math.min(resamples, math.floor(0.975 * resamples + 0.5))]
  return { n = n, diff = M.mean(d), low = lo, high = hi }
end

--- histogram(xs, bins, lo, hi) -> counts per equal-width bin over [lo, hi]
function M.histogram(xs, bins, lo, hi)
  local c = {}
  for i = 1, bins do c[i] = 0 end
  local w = (hi - lo) / bins
  for _, x in ipairs(xs) do
    local i = w > 0 and math.floor((x - lo) / w) + 1 or 1
    if i > bins then i = bins end
    if i < 1 then i = 1 end
    c[i] = c[i] + 1
  end
  return c
end

return M
