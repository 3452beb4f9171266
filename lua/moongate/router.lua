-- moongate.router: turns a model's tiers into an ordered plan (weighted groups drawn per request)
-- and runs a plan: attempts under per-attempt timeouts and the request deadline, backoff, Retry-After,
-- circuit breakers, and the one error that says why nothing answered.
local retry = require "moongate.retry"

local M = {}

local random, min, max, huge = math.random, math.min, math.max, math.huge

-- weighted_order(tiers[, rand]) -> a new array: consecutive tiers that all carry `weight` are a
-- balanced group, ordered by weighted sampling without replacement; other tiers keep their place.
function M.weighted_order(tiers, rand)
  rand = rand or random
  local out, n, i = {}, 0, 1
  local count = #tiers
  while i <= count do
    local t = tiers[i]
    if t.weight == nil then
      n = n + 1; out[n] = t; i = i + 1
    else
      local group, total = {}, 0
      while i <= count and tiers[i].weight ~= nil do
        local w = tiers[i].weight
        if w > 0 then group[#group + 1] = tiers[i]; total = total + w end
        i = i + 1
      end
      while #group > 0 do
        local r, pick = rand() * total, #group
        for j = 1, #group do
          r = r - group[j].weight
          if r < 0 then pick = j; break end
        end
        n = n + 1; out[n] = group[pick]
        total = total - group[pick].weight
        table.remove(group, pick)
      end
    end
  end
  return out
end

-- default_plan(model_cfg) -> plan: the model's route as configured (weighted groups drawn).
function M.default_plan(model_cfg)
  return {
    tiers = M.weighted_order(model_cfg.route or {}),
    deadline = model_cfg.deadline,
    degrade = model_cfg.degrade,
    max_output_tokens = model_cfg.max_output_tokens,
  }
end

-- run(plan, attempt, opts) -> result, info | nil, failure
-- attempt(tier, budget, n, opts.arg) -> result | nil, fail where fail = { status = upstream status or nil,
--   reason = "timeout" | "connect failed" | "status" | "malformed" | ..., message =,
--   retry_after = seconds or nil, kind = "retry" | "client" | "committed" }
-- opts: breaker (moongate.breaker object or nil), max_attempts, backoff, backoff_max,
--   retry_after_max, deadline (absolute), now(), sleep(s), on_attempt(tier, n, fail|nil),
--   attempt_cap (seconds: no attempt runs longer, whatever its tier's timeout)
-- info: { tier =, attempts = n, probe = bool }
-- failure: { status = HTTP status for the client, code =, message =, retry_after =, attempts = n,
--   fail = the last attempt's failure (for kind == "client": pass the upstream answer on) }
function M.run(plan, attempt, opts)
  local now, sleep = opts.now, opts.sleep
  local brk = opts.breaker
  local cap = opts.max_attempts or 4
  local deadline = opts.deadline or huge
  local ra_max = opts.retry_after_max or 10
  local attempts = 0
  local last, open_wait
  local n429, ntimeout, nfail, nkilled = 0, 0, 0, 0
  local min_ra
  local deadline_hit = false
  local tiers = plan.tiers
  for ti = 1, #tiers do
    local tier = tiers[ti]
    local tries = tier.attempts or 1
    local wait = 0
    for try = 1, tries do
      if attempts >= cap then break end
      local t = now()
      if wait > 0 then
        if t + wait >= deadline then break end
        sleep(wait)
        t = now()
      end
      if t >= deadline then deadline_hit = true; break end
      local probe = false
      if brk then
        local ok, is_probe, retry_in = brk:allow(tier.provider)
        if not ok then
          if is_probe == "killed" then nkilled = nkilled + 1
          else open_wait = min(open_wait or huge, retry_in or 0) end
          break
        end
        probe = is_probe
      end
      attempts = attempts + 1
      local tier_timeout = tier.timeout or 30
      -- an enforced step budget for upstream calls cuts an attempt short, so the next tier runs
      if opts.attempt_cap and opts.attempt_cap < tier_timeout then tier_timeout = opts.attempt_cap end
      local cut = deadline - t <= tier_timeout   -- the deadline, not the tier, bounds this attempt
      local budget = cut and deadline - t or tier_timeout
      local res, fail = attempt(tier, budget, attempts, opts.arg)
      if res then
        if brk then brk:success(tier.provider, probe) end
        if opts.on_attempt then opts.on_attempt(tier, attempts, nil) end
        return res, { tier = tier, attempts = attempts, probe = probe }
      end
      fail = fail or { reason = "error" }
      if opts.on_attempt then opts.on_attempt(tier, attempts, fail) end
      last = fail
      if fail.kind == "client" then
        -- the provider works; the request was refused: hand the upstream's answer back
        if brk then brk:success(tier.provider, probe) end
        return nil, { status = fail.status or 400, attempts = attempts, fail = fail,
                      message = fail.message, code = fail.code }
      end
      if brk then brk:failure(tier.provider, probe) end
      if fail.kind == "committed" then
        return nil, { status = 502, code = "upstream_error", attempts = attempts, fail = fail,
                      message = fail.message or "upstream failed mid-stream" }
      end
      nfail = nfail + 1
      if fail.reason == "timeout" then
        ntimeout = ntimeout + 1
        -- a timer may fire a hair before the deadline it was set for: a timeout of an attempt
        -- the deadline cut short is the deadline's
        if cut or now() >= deadline then deadline_hit = true end
      end
      if fail.status == 429 then
        n429 = n429 + 1
        if fail.retry_after then min_ra = min(min_ra or huge, fail.retry_after) end
      end
      if deadline_hit then break end
      -- the next try on this tier waits: Retry-After when given (and short enough), else backoff
      if fail.retry_after then
        if fail.retry_after > ra_max then break end
        wait = fail.retry_after
      else
        wait = retry.backoff(try, opts.backoff, opts.backoff_max, opts.rand)
      end
    end
    if deadline_hit or attempts >= cap then break end
  end

  local f = { attempts = attempts, fail = last }
  if deadline_hit or (now() >= deadline and attempts > 0) then
    f.status, f.code = 504, "deadline_exceeded"
    f.message = "no answer within the request deadline"
  elseif attempts == 0 and nkilled > 0 and not open_wait then
    f.status, f.code = 503, "provider_disabled"
    f.message = "every provider for this model is switched off (kill switch)"
  elseif attempts == 0 and open_wait then
    f.status, f.code = 503, "circuit_open"
    f.message = "every provider for this model is unavailable (circuit open)"
    f.retry_after = max(1, math.ceil(open_wait))
  elseif nfail > 0 and n429 == nfail then
    f.status, f.code = 429, "rate_limited"
    f.message = "every provider for this model is rate limited"
    f.retry_after = min_ra and max(1, math.ceil(min_ra)) or 1
  elseif nfail > 0 and ntimeout == nfail then
    f.status, f.code = 504, "upstream_timeout"
    f.message = "every provider timed out"
  elseif attempts == 0 then
    f.status, f.code = 503, "no_route"
    f.message = "no provider is available for this model"
  else
    f.status, f.code = 502, "upstream_error"
    f.message = "every provider failed; last: " .. tostring(last and last.message or "error")
  end
  return nil, f
end

return M
