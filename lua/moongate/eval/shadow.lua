-- moongate.eval.shadow: what shadow traffic says about a candidate — its answers to copies of
-- served requests against the answers that were served: errors, agreement, latency, tokens.
local stats = require "moongate.eval.stats"
local analyzer = require "moongate.analyzer"

local M = {}

local format = string.format

local function term_set(s)
  local out, n = {}, 0
  for _, t in ipairs(analyzer.terms(s, { stem = "english", stopwords = true })) do
    if not out[t] then out[t] = true; n = n + 1 end
  end
  return out, n
end

--- similarity(a, b) -> Jaccard overlap of the two texts' content terms, 0..1
function M.similarity(a, b)
  local sa, na = term_set(a)
  local sb, nb = term_set(b)
  if na + nb == 0 then return 1 end
  local both = 0
  for t in pairs(sa) do if sb[t] then both = both + 1 end end
  return both / (na + nb - both)
end

--- shadow.rows(db, o) -> rows of the shadow table (o.release, o.since)
function M.rows(db, o)
  local where, args = { "created >= ?" }, { o.since or 0 }
  if o.release then where[#where + 1] = "release = ?"; args[#args + 1] = o.release end
  return db:query("SELECT * FROM shadow WHERE " .. table.concat(where, " AND ") .. " ORDER BY created, request_id",
    unpack(args))
end

--- shadow.compare(rows, thresholds) -> summary with .regressed and .reasons
--- thresholds: max_regression (the candidate's error rate may be at most this; default 0.02),
--- latency_p95 (its p95 at most this many times the served p95)
function M.compare(rows, th)
  th = th or {}
  local s = { pairs = #rows, errors = 0, same = 0, similarity = nil, reasons = {}, regressed = false,
              served = { tokens_in = 0, tokens_out = 0 }, shadow = { tokens_in = 0, tokens_out = 0 }, versions = {} }
  local sims, lat_a, lat_b, seen = {}, {}, {}, {}
  for _, r in ipairs(rows) do
    if not seen[r.release .. "@" .. r.candidate_version] then
      seen[r.release .. "@" .. r.candidate_version] = true
      s.versions[#s.versions + 1] = r.release .. "@" .. r.candidate_version
    end
    if r.shadow_status ~= 200 then s.errors = s.errors + 1 end
    if r.shadow_hash and r.shadow_hash == r.served_hash then s.same = s.same + 1 end
    if r.served and r.shadow then sims[#sims + 1] = M.similarity(r.served, r.shadow) end
    lat_a[#lat_a + 1] = r.served_ms
    if r.shadow_ms then lat_b[#lat_b + 1] = r.shadow_ms end
    s.served.tokens_in = s.served.tokens_in + (r.served_tokens_in or 0)
    s.served.tokens_out = s.served.tokens_out + (r.served_tokens_out or 0)
    s.shadow.tokens_in = s.shadow.tokens_in + (r.shadow_tokens_in or 0)
    s.shadow.tokens_out = s.shadow.tokens_out + (r.shadow_tokens_out or 0)
  end
  local n = math.max(1, #rows)
  s.error_rate = s.errors / n
  s.agreement = s.same / n
  s.similarity = stats.mean(sims)
  s.compared_text = #sims
  s.served.p50, s.served.p95 = stats.percentile(lat_a, 50), stats.percentile(lat_a, 95)
  s.shadow.p50, s.shadow.p95 = stats.percentile(lat_b, 50), stats.percentile(lat_b, 95)
  local max_err = th.max_regression or 0.02
  if #rows > 0 and s.error_rate > max_err + 1e-12 then
    s.regressed = true
    s.reasons[#s.reasons + 1] = format("the candidate failed %.1f%% of the copies (%d of %d), more than the allowed %.1f%%",
      100 * s.error_rate, s.errors, #rows, 100 * max_err)
  end
  if th.latency_p95 and s.served.p95 and s.shadow.p95 and s.shadow.p95 > th.latency_p95 * s.served.p95 then
    s.regressed = true
    s.reasons[#s.reasons + 1] = format("the candidate's p95 is %.1f ms against %.1f ms served, more than %.2fx",
      s.shadow.p95, s.served.p95, th.latency_p95)
  end
  return s
end

return M
