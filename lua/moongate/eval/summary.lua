-- moongate.eval.summary: a run's figures (mean scores, per tag, latency, tokens, cost) and the
-- comparison of a candidate run with its baseline that decides whether the candidate regressed.
local stats = require "moongate.eval.stats"
local scorers = require "moongate.eval.scorers"

local M = {}

local format = string.format

-- The scorers a set of results has values for, in report order.
function M.scorer_names(results)
  local seen, names = {}, {}
  for _, r in ipairs(results) do for k in pairs(r.scores) do seen[k] = true end end
  for _, n in ipairs(scorers.NAMES) do if seen[n] then names[#names + 1] = n end end
  if seen.judge then names[#names + 1] = "judge" end
  return names
end

local function means(results, names)
  local out = {}
  for _, n in ipairs(names) do
    local xs = {}
    for _, r in ipairs(results) do if r.scores[n] ~= nil then xs[#xs + 1] = r.scores[n] end end
    out[n] = stats.mean(xs)
  end
  return out
end

--- summary.of(results) -> { cases, errors, scores = { [scorer] = mean }, tags = { [tag] = { cases, scores } },
---   latency_ms = { p50, p95, mean }, tokens_in, tokens_out, cost }
function M.of(results)
  local names = M.scorer_names(results)
  local lat, tin, tout, cost, errors = {}, 0, 0, 0, 0
  local by_tag, tag_names = {}, {}
  local prompts, pseen = {}, {}
  for i, r in ipairs(results) do
    if r.prompt_version and not pseen[r.prompt_version] then
      pseen[r.prompt_version] = true
      prompts[#prompts + 1] = r.prompt_version
    end
    lat[i] = r.latency_ms
    tin, tout, cost = tin + (r.tokens_in or 0), tout + (r.tokens_out or 0), cost + (r.cost or 0)
    if r.error then errors = errors + 1 end
    for _, t in ipairs(r.tags or {}) do
      if not by_tag[t] then by_tag[t] = {}; tag_names[#tag_names + 1] = t end
      table.insert(by_tag[t], r)
    end
  end
  table.sort(tag_names)
  local tags = {}
  for _, t in ipairs(tag_names) do tags[t] = { cases = #by_tag[t], scores = means(by_tag[t], names) } end
  return {
    cases = #results, errors = errors, scorers = names, scores = means(results, names), tags = tags,
    tag_names = tag_names, prompt_versions = prompts,
    latency_ms = { p50 = stats.percentile(lat, 50), p95 = stats.percentile(lat, 95), mean = stats.mean(lat) },
    tokens_in = tin, tokens_out = tout, cost = cost,
  }
end

--- summary.compare(base, cand, thresholds) -> { metrics = {...}, regressed = bool, reasons = {...} }
--- base, cand: result lists over the same golden set (paired by case id). thresholds:
--- { max_regression = 0.02, [scorer] = largest allowed drop of its mean,
---   latency_p95 = largest allowed ratio cand/base, cost = the same for total cost }
function M.compare(base, cand, th)
  th = th or {}
  local by_id = {}
  for _, r in ipairs(base) do by_id[r.id] = r end
  local names = M.scorer_names(cand)
  local out = { metrics = {}, reasons = {}, regressed = false, paired = 0 }
  for _, n in ipairs(names) do
    local a, b = {}, {}
    for _, r in ipairs(cand) do
      local o = by_id[r.id]
      if o and o.scores[n] ~= nil and r.scores[n] ~= nil then
        a[#a + 1], b[#b + 1] = o.scores[n], r.scores[n]
      end
    end
    local bs = stats.paired_bootstrap(a, b)
    local limit = th[n] or th.max_regression or 0.02
    local m = { name = n, n = bs.n, baseline = stats.mean(a), candidate = stats.mean(b), diff = bs.diff,
                low = bs.low, high = bs.high, max_drop = limit }
    if bs.n > 0 and bs.diff < -limit - 1e-12 then
      m.regressed = true
      out.regressed = true
      out.reasons[#out.reasons + 1] = format("%s fell from %.3f to %.3f (%+.3f, 95%% CI %+.3f..%+.3f over %d cases), " ..
        "more than the allowed %.3f", n, m.baseline, m.candidate, m.diff, m.low, m.high, m.n, limit)
    end
    out.metrics[#out.metrics + 1] = m
    out.paired = math.max(out.paired, bs.n)
  end
  local sa, sb = M.of(base), M.of(cand)
  out.latency = { baseline = sa.latency_ms.p95, candidate = sb.latency_ms.p95, max_ratio = th.latency_p95 }
  if th.latency_p95 and sa.latency_ms.p95 and sa.latency_ms.p95 > 0 then
    local ratio = sb.latency_ms.p95 / sa.latency_ms.p95
    out.latency.ratio = ratio
    if ratio > th.latency_p95 then
      out.regressed = true
      out.reasons[#out.reasons + 1] = format("p95 latency rose from %.1f ms to %.1f ms (%.2fx), more than the allowed %.2fx",
        sa.latency_ms.p95, sb.latency_ms.p95, ratio, th.latency_p95)
    end
  end
  out.cost = { baseline = sa.cost, candidate = sb.cost, max_ratio = th.cost }
  if th.cost and sa.cost > 0 then
    local ratio = sb.cost / sa.cost
    out.cost.ratio = ratio
    if ratio > th.cost then
      out.regressed = true
      out.reasons[#out.reasons + 1] = format("cost rose from %.6f to %.6f (%.2fx), more than the allowed %.2fx",
        sa.cost, sb.cost, ratio, th.cost)
    end
  end
  return out
end

return M
