-- moongate.eval.report: an eval run as JSON (for CI and scripts) and as one self-contained HTML
-- page whose plots are inline SVG — score distributions, per-tag breakdown, latency, cost, and
-- the candidate-minus-baseline differences with their confidence intervals.
local json = require "moongate.json"
local stats = require "moongate.eval.stats"

local M = {}

local format, concat = string.format, table.concat

local function r6(x) return x and math.floor(x * 1e6 + 0.5) / 1e6 or nil end

local function run_json(run, results, s)
  local cases = json.array()
  for i, r in ipairs(results) do
    local sc = json.object()
    for k, v in pairs(r.scores) do sc[k] = r6(v) end
    cases[i] = { id = r.id, tags = json.array(r.tags or {}), answer = r.answer, citations = json.array(r.citations or {}),
                 prompt_version = r.prompt_version,
                 error = r.error, scores = sc, why = json.object(r.why or {}), latency_ms = r6(r.latency_ms),
                 tokens_in = r.tokens_in, tokens_out = r.tokens_out, cost = r6(r.cost) }
  end
  local scores = json.object()
  for k, v in pairs(s.scores) do scores[k] = r6(v) end
  local tags = json.object()
  for t, v in pairs(s.tags) do
    local ts = json.object()
    for k, x in pairs(v.scores) do ts[k] = r6(x) end
    tags[t] = { cases = v.cases, scores = ts }
  end
  return {
    id = run.id, pipeline = run.pipeline, version = run.version, path = run.path, stored = run.stored,
    summary = { cases = s.cases, errors = s.errors, scores = scores, tags = tags,
                latency_ms = { p50 = r6(s.latency_ms.p50), p95 = r6(s.latency_ms.p95), mean = r6(s.latency_ms.mean) },
                tokens_in = s.tokens_in, tokens_out = s.tokens_out, cost = r6(s.cost),
                prompt_versions = json.array(s.prompt_versions or {}) },
    cases = cases,
  }
end

--- report.json(r) -> the report as a table ready for json.encode_sorted
--- r: { golden =, golden_version =, candidate = { run, results, summary }, baseline = ...?, comparison = ...? }
function M.data(r)
  local out = {
    golden = r.golden, golden_version = r.golden_version, created = os.date("!%Y-%m-%dT%H:%M:%SZ", math.floor(r.created)),
    candidate = run_json(r.candidate.run, r.candidate.results, r.candidate.summary),
    verdict = r.comparison and (r.comparison.regressed and "regressed" or "ok") or "ok",
  }
  if r.baseline then out.baseline = run_json(r.baseline.run, r.baseline.results, r.baseline.summary) end
  if r.comparison then
    local c = r.comparison
    local metrics = json.array()
    for i, m in ipairs(c.metrics) do
      metrics[i] = { name = m.name, n = m.n, baseline = r6(m.baseline), candidate = r6(m.candidate), diff = r6(m.diff),
                     ci_low = r6(m.low), ci_high = r6(m.high), max_drop = m.max_drop, regressed = m.regressed == true }
    end
    out.comparison = { metrics = metrics, reasons = json.array(c.reasons), regressed = c.regressed,
      latency_p95 = { baseline = r6(c.latency.baseline), candidate = r6(c.latency.candidate), ratio = r6(c.latency.ratio),
                      max_ratio = c.latency.max_ratio },
      cost = { baseline = r6(c.cost.baseline), candidate = r6(c.cost.candidate), ratio = r6(c.cost.ratio),
               max_ratio = c.cost.max_ratio } }
  end
  return out
end

-- ---- HTML ----------------------------------------------------------------------------------------

local function esc(s)
  return (tostring(s):gsub("[&<>\"']", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;" }))
end

local function num(x, f) return x == nil and "–" or format(f or "%.3f", x) end

local COLORS = { baseline = "#8a94a6", candidate = "#2f6fdf" }
local W, H, PAD = 560, 220, 36

-- A grouped bar chart: groups = { { label =, values = { baseline =, candidate = } } }, values in [0, max].
local function bars(id, title, groups, series, max, fmt)
  local out = { format('<figure><figcaption>%s</figcaption><svg class="plot" data-plot="%s" viewBox="0 0 %d %d" ' ..
    'width="%d" height="%d" role="img" aria-label="%s">', esc(title), id, W, H, W, H, esc(title)) }
  local n = math.max(1, #groups)
  local gw = (W - 2 * PAD) / n
  local bw = math.min(40, (gw - 10) / #series)
  out[#out + 1] = format('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#333"/>', PAD, H - PAD, W - PAD, H - PAD)
  out[#out + 1] = format('<text x="4" y="%d" font-size="10">%s</text><text x="4" y="%d" font-size="10">0</text>',
    PAD, esc(format(fmt or "%.2f", max)), H - PAD)
  for gi, g in ipairs(groups) do
    local x0 = PAD + (gi - 1) * gw + 5
    for si, s in ipairs(series) do
      local v = g.values[s] or 0
      local h = max > 0 and (v / max) * (H - 2 * PAD) or 0
      local x = x0 + (si - 1) * bw
      out[#out + 1] = format('<rect class="bar" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s: %s</title></rect>',
        x, H - PAD - h, bw - 2, h, COLORS[s] or "#555", esc(g.label), s, esc(format(fmt or "%.3f", v)))
    end
    out[#out + 1] = format('<text x="%.1f" y="%d" font-size="10">%s</text>', x0, H - PAD + 14, esc(g.label))
  end
  out[#out + 1] = "</svg></figure>"
  return concat(out)
end

-- Candidate minus baseline per scorer, with the 95% interval as a whisker around zero.
local function forest(metrics)
  local h = PAD + 26 * #metrics + 10
  local out = { format('<figure><figcaption>Candidate − baseline (95%% paired bootstrap interval)</figcaption>' ..
    '<svg class="plot" data-plot="diff" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="score differences">', W, h, W, h) }
  local lo, hi = -1, 1
  local x0, x1 = 170, W - 20
  local function X(v) return x0 + (v - lo) / (hi - lo) * (x1 - x0) end
  out[#out + 1] = format('<line x1="%.1f" y1="10" x2="%.1f" y2="%d" stroke="#999" stroke-dasharray="3,3"/>', X(0), X(0), h - 10)
  for i, m in ipairs(metrics) do
    local y = 20 + (i - 1) * 26
    local color = m.regressed and "#c0392b" or "#2f6fdf"
    out[#out + 1] = format('<text x="4" y="%d" font-size="12">%s</text>', y + 4, esc(m.name))
    if m.n > 0 then
      out[#out + 1] = format('<line class="ci" x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-width="2"/>',
        X(m.low), y, X(m.high), y, color)
      out[#out + 1] = format('<circle cx="%.1f" cy="%d" r="4" fill="%s"><title>%s: %+.3f (%+.3f..%+.3f)</title></circle>',
        X(m.diff), y, color, esc(m.name), m.diff, m.low, m.high)
    end
  end
  out[#out + 1] = format('<text x="%.1f" y="%d" font-size="10">−1</text><text x="%.1f" y="%d" font-size="10">0</text>' ..
    '<text x="%.1f" y="%d" font-size="10">+1</text>', X(-1), h - 2, X(0) - 3, h - 2, X(1) - 14, h - 2)
  out[#out + 1] = "</svg></figure>"
  return concat(out)
end

local CSS = [[
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1180px;color:#1d2330}
h1{font-size:22px}h2{font-size:17px;margin-top:28px}table{border-collapse:collapse;margin:8px 0}
td,th{border:1px solid #d8dce4;padding:3px 8px;text-align:left;vertical-align:top}th{background:#f3f5f8}
.bad{color:#c0392b;font-weight:600}.ok{color:#1e8449;font-weight:600}figure{display:inline-block;margin:8px 16px 8px 0}
figcaption{font-weight:600;margin-bottom:4px}.legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px}
td.answer{max-width:420px;font-size:12px}code{background:#f3f5f8;padding:0 3px}
]]

--- report.html(r) -> the page (r as for report.data)
function M.html(r)
  local d = M.data(r)
  local cand, base, cmp = r.candidate, r.baseline, r.comparison
  local series = base and { "baseline", "candidate" } or { "candidate" }
  local o = {}
  local function w(...) for _, s in ipairs({ ... }) do o[#o + 1] = s end end
  w("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>moongate eval: ", esc(cand.run.pipeline),
    "</title><style>", CSS, "</style></head><body>")
  w("<h1>Eval of ", esc(cand.run.pipeline), " <code>", esc(cand.run.version), "</code>")
  if base then w(" against ", esc(base.run.pipeline), " <code>", esc(base.run.version), "</code>") end
  w("</h1><p>Golden set <code>", esc(r.golden), "</code> (version <code>", esc(r.golden_version), "</code>), ",
    tostring(cand.summary.cases), " cases, ", esc(d.created), ".</p>")
  if cmp then
    if cmp.regressed then
      w('<p id="verdict" class="bad">REGRESSED</p><ul id="reasons">')
      for _, why in ipairs(cmp.reasons) do w("<li>", esc(why), "</li>") end
      w("</ul>")
    else
      w('<p id="verdict" class="ok">OK: no regression beyond the thresholds</p>')
    end
  end
  w('<p class="legend">')
  for _, s in ipairs(series) do w('<span style="background:', COLORS[s], '"></span>', s) end
  w("</p>")

  -- the scores table
  w("<h2>Scores</h2><table id=\"scores\"><tr><th>scorer</th>")
  if base then w("<th>baseline</th>") end
  w("<th>candidate</th>")
  if cmp then w("<th>difference</th><th>95% CI</th><th>allowed drop</th><th></th>") end
  w("</tr>")
  for _, n in ipairs(cand.summary.scorers) do
    w("<tr><td>", esc(n), "</td>")
    if base then w("<td>", num(base.summary.scores[n]), "</td>") end
    w("<td>", num(cand.summary.scores[n]), "</td>")
    if cmp then
      for _, m in ipairs(cmp.metrics) do
        if m.name == n then
          w("<td>", num(m.diff, "%+.3f"), "</td><td>", num(m.low, "%+.3f"), " .. ", num(m.high, "%+.3f"), "</td><td>",
            num(m.max_drop), "</td><td class=\"", m.regressed and "bad" or "ok", "\">", m.regressed and "regressed" or "ok", "</td>")
        end
      end
    end
    w("</tr>")
  end
  w("</table>")

  -- plots
  w("<h2>Plots</h2>")
  local groups = {}
  for i, n in ipairs(cand.summary.scorers) do
    groups[i] = { label = n, values = { candidate = cand.summary.scores[n], baseline = base and base.summary.scores[n] } }
  end
  w(bars("means", "Mean score per scorer", groups, series, 1))
  -- distributions: how many cases scored in each fifth, per scorer
  for _, n in ipairs(cand.summary.scorers) do
    local function dist(results)
      local xs = {}
      for _, x in ipairs(results) do if x.scores[n] ~= nil then xs[#xs + 1] = x.scores[n] end end
      return stats.histogram(xs, 5, 0, 1)
    end
    local dc, db = dist(cand.results), base and dist(base.results)
    local g, maxc = {}, 1
    for i = 1, 5 do
      g[i] = { label = format("%.1f–%.1f", (i - 1) / 5, i / 5), values = { candidate = dc[i], baseline = db and db[i] } }
      maxc = math.max(maxc, dc[i], db and db[i] or 0)
    end
    w(bars("dist-" .. n, "Distribution of " .. n .. " (cases)", g, series, maxc, "%d"))
  end
  -- per tag
  local tg = {}
  for _, t in ipairs(cand.summary.tag_names) do
    local function mean_of(s)
      local tot, k = 0, 0
      for _, v in pairs(s.tags[t] and s.tags[t].scores or {}) do tot, k = tot + v, k + 1 end
      return k > 0 and tot / k or nil
    end
    tg[#tg + 1] = { label = t, values = { candidate = mean_of(cand.summary), baseline = base and mean_of(base.summary) } }
  end
  if #tg > 0 then w(bars("tags", "Mean of all scores per tag", tg, series, 1)) end
  -- latency and cost
  local lmax = math.max(cand.summary.latency_ms.p95 or 0, base and base.summary.latency_ms.p95 or 0, 0.001)
  w(bars("latency", "Latency (ms)", {
    { label = "p50", values = { candidate = cand.summary.latency_ms.p50, baseline = base and base.summary.latency_ms.p50 } },
    { label = "p95", values = { candidate = cand.summary.latency_ms.p95, baseline = base and base.summary.latency_ms.p95 } },
  }, series, lmax, "%.1f"))
  local cmax = math.max(cand.summary.cost, base and base.summary.cost or 0)
  local tmax = math.max(cand.summary.tokens_in + cand.summary.tokens_out,
    base and (base.summary.tokens_in + base.summary.tokens_out) or 0, 1)
  w(bars("tokens", "Tokens (whole run)", {
    { label = "input", values = { candidate = cand.summary.tokens_in, baseline = base and base.summary.tokens_in } },
    { label = "output", values = { candidate = cand.summary.tokens_out, baseline = base and base.summary.tokens_out } },
  }, series, tmax, "%d"))
  w(bars("cost", "Cost (whole run)", {
    { label = "cost", values = { candidate = cand.summary.cost, baseline = base and base.summary.cost } },
  }, series, cmax > 0 and cmax or 1, "%.6f"))
  if cmp then w(forest(cmp.metrics)) end

  -- the cases
  w("<h2>Cases</h2><table id=\"cases\"><tr><th>case</th><th>tags</th>")
  for _, n in ipairs(cand.summary.scorers) do w("<th>", esc(n), "</th>") end
  w("<th>ms</th><th>answer</th><th>why</th></tr>")
  local base_by = {}
  for _, x in ipairs(base and base.results or {}) do base_by[x.id] = x end
  for _, x in ipairs(cand.results) do
    w("<tr><td>", esc(x.id), "</td><td>", esc(concat(x.tags or {}, ", ")), "</td>")
    for _, n in ipairs(cand.summary.scorers) do
      local v, b = x.scores[n], base_by[x.id] and base_by[x.id].scores[n]
      local cls = (v and b and v < b) and ' class="bad"' or ""
      w("<td", cls, ">", num(v, "%.2f"), b and (" <small>(" .. num(b, "%.2f") .. ")</small>") or "", "</td>")
    end
    local whys = {}
    for k, v in pairs(x.why or {}) do whys[#whys + 1] = k .. ": " .. tostring(v) end
    table.sort(whys)
    w("<td>", num(x.latency_ms, "%.1f"), "</td><td class=\"answer\">", esc((x.answer or ""):sub(1, 300)), "</td><td>",
      esc(concat(whys, "; ")), "</td></tr>")
  end
  w("</table></body></html>\n")
  return concat(o)
end

return M
