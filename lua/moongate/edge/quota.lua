-- moongate.edge.quota: a tenant's limits, enforced before the call costs anything — requests per
-- minute, concurrent requests, tokens in/out per minute and day, spend per day and month, and the
-- per-request caps on tokens in and out — then reconciled with what the call really used.
-- Counters are exact across workers (shared memory): moongate.quota.
local errors = require "moongate.gateway.errors"
local request = require "moongate.gateway.request"
local metrics = require "moongate.metrics"

local M = {}
local Stage = {}
Stage.__index = Stage

local floor, ceil, format = math.floor, math.ceil, string.format
local MIN, DAY = 60, 86400
local MICRO = 1e6   -- spend is counted in millionths of the price table's currency unit

local POLICY_KEYS = { rpm = true, concurrent = true, tokens_in_per_min = true, tokens_out_per_min = true,
  tokens_in_per_day = true, tokens_out_per_day = true, spend_per_day = true, spend_per_month = true }

local function has_quota(p) return type(p) == "table" and (p.quota ~= nil or p.caps ~= nil) end

--- new(config, gw) -> stage | nil: on when a default or any tenant's policy sets a quota or caps,
--- or tenants come from the store (whose policies may).
function M.new(config, gw)
  local any = config.quota ~= nil or (config.auth and config.auth.db) ~= nil
  for _, p in pairs(config.tenants or {}) do any = any or has_quota(p) end
  if not any then return nil end
  local q, err = require("moongate.quota").new{ url = config.quota_store, prefix = "mgq:" }
  if not q then return nil, err end
  if config.quota ~= nil and type(config.quota) ~= "table" then return nil, "quota must be a table of limits" end
  for k in pairs(config.quota or {}) do
    if not POLICY_KEYS[k] then return nil, "quota: unknown limit '" .. tostring(k) .. "'" end
  end
  return setmetatable({ q = q, default = config.quota, default_caps = config.caps,
                        prices = config.prices or {} }, Stage)
end

-- "6m0s", "1s", "250ms": how OpenAI writes a reset time
local function duration(s)
  if s < 1 then return format("%dms", ceil(s * 1000)) end
  s = ceil(s)
  if s < 60 then return format("%ds", s) end
  if s < 3600 then return format("%dm%ds", floor(s / 60), s % 60) end
  return format("%dh%dm%ds", floor(s / 3600), floor(s % 3600 / 60), s % 60)
end
M.duration = duration

local function ratelimit_headers(ctx, kind, limit, remaining, reset)
  ctx:header("x-ratelimit-limit-" .. kind, tostring(limit))
  ctx:header("x-ratelimit-remaining-" .. kind, tostring(remaining > 0 and floor(remaining) or 0))
  ctx:header("x-ratelimit-reset-" .. kind, duration(reset))
end

local rejections = metrics.counter("moongate_quota_rejections_total",
  "Requests refused with 429 by a tenant's quota, by the limit that refused them.", { "tenant", "limit" })

local function too_many(ctx, limit, msg, code, reset)
  rejections:inc(1, ctx.tenant or "-", limit)
  return errors.response(429, msg, code, { ["retry-after"] = tostring(math.max(1, ceil(reset))) })
end

local function unavailable()
  return errors.response(503, "the quota store is unavailable", "quota_store_unavailable", { ["retry-after"] = "1" })
end

-- The current calendar month (UTC) as a key, and the seconds until the next one starts.
local function month()
  local t = os.time()
  local d = os.date("!*t", t)
  local offset = t - os.time(d)   -- os.time reads a table as local time; the table is UTC
  local y, m = d.year, d.month + 1
  if m == 13 then y, m = y + 1, 1 end
  local next_start = os.time{ year = y, month = m, day = 1, hour = 0, isdst = false } + offset
  return format("%04d-%02d", d.year, d.month), next_start - t
end

local function price_of(prices, ...)
  for i = 1, select("#", ...) do
    local name = select(i, ...)
    local p = name and prices[name]
    if p then return p end
  end
  return prices["*"]
end

-- The prompt's tokens as the upstream will count them (chat), or the inputs' (embeddings).
local function input_tokens(ctx, doc)
  if ctx.route == "chat" then
    if type(doc.messages) ~= "table" then return 0 end
    return request.prompt_tokens(doc, doc.model)
  end
  local input = doc.input
  local tok = require "moongate.tokenizer"
  local n = 0
  if type(input) == "string" then return tok.count(input, "cl100k_base") end
  if type(input) == "table" then
    for _, s in ipairs(input) do
      if type(s) == "string" then n = n + tok.count(s, "cl100k_base")
      elseif type(s) == "number" then n = n + 1 end   -- a token id
    end
  end
  return n
end

-- The caps on one request: too long a prompt is refused or its oldest turns dropped; max_tokens
-- is capped (set when the client gave none), so a request never exceeds them silently.
local function apply_caps(ctx, doc, caps, n)
  local max_in, max_out = caps.max_input_tokens, caps.max_output_tokens
  local truncate = caps.on_exceed == "truncate"
  local changed = false
  if max_in and n > max_in then
    if not truncate or ctx.route ~= "chat" then
      return nil, errors.response(400, format("the prompt has %d tokens; this tenant's limit is %d", n, max_in),
        "input_tokens_exceeded")
    end
    -- drop the oldest turns after the system messages until the prompt fits; the last turn stays
    local msgs = doc.messages
    local first = 1
    while msgs[first] and msgs[first].role == "system" do first = first + 1 end
    while n > max_in and #msgs - first >= 1 do
      table.remove(msgs, first)
      n = request.prompt_tokens(doc, doc.model)
    end
    if n > max_in then
      return nil, errors.response(400, format("the prompt has %d tokens even without earlier turns; this tenant's limit is %d",
        n, max_in), "input_tokens_exceeded")
    end
    changed = true
    ctx:header("x-moongate-truncated", "input")
  end
  if max_out and ctx.route == "chat" then
    local field = doc.max_completion_tokens ~= nil and "max_completion_tokens" or "max_tokens"
    local asked = doc[field]
    if type(asked) == "number" and asked > max_out then
      if not truncate then
        return nil, errors.response(400, format("%s is %d; this tenant's limit is %d", field, asked, max_out),
          "output_tokens_exceeded")
      end
      doc[field] = max_out
      changed = true
    elseif asked == nil then
      doc.max_tokens = max_out
      changed = true
    end
  end
  if changed then ctx:set_doc(doc) end
  return n
end

function Stage:before(ctx)
  local policy = ctx.policy
  local limits = policy.quota or self.default
  local caps = policy.caps or self.default_caps
  if not limits and not caps then return nil end
  local q, t = self.q, ctx.tenant or "-"
  local st = { tenant = t }
  ctx.quota = st
  limits = limits or {}

  if limits.rpm then
    local ok, rem, reset = q:take("r:" .. t, 1, limits.rpm, MIN)
    if ok == nil then return unavailable() end
    ratelimit_headers(ctx, "requests", limits.rpm, rem, reset)
    if not ok then
      return too_many(ctx, "rpm", format("rate limit reached for requests: %d per minute", limits.rpm), "rate_limit_exceeded", reset)
    end
  end
  if limits.concurrent then
    local ok = q:acquire("c:" .. t, limits.concurrent)
    if ok == nil then return unavailable() end
    if not ok then
      return too_many(ctx, "concurrent", format("too many concurrent requests: the limit is %d", limits.concurrent),
        "concurrency_limit_exceeded", 1)
    end
    st.slot = "c:" .. t
  end

  local route = ctx.route
  if route ~= "chat" and route ~= "embeddings" then return nil end
  local doc = ctx:doc()
  if not doc then return nil end   -- the handler answers 400

  local n = input_tokens(ctx, doc)
  if caps then
    local capped, refusal = apply_caps(ctx, doc, caps, n)
    if not capped then return refusal end
    n = capped
  end
  st.tokens_in = n

  -- tokens out: refused once the window's output is spent (what a call will write is not known yet)
  for _, w in ipairs{ { "tokens_out_per_min", "om:", MIN }, { "tokens_out_per_day", "od:", DAY } } do
    local lim = limits[w[1]]
    if lim then
      local used, reset = q:get(w[2] .. t, w[3])
      if used == nil then return unavailable() end
      if used >= lim then
        ratelimit_headers(ctx, "tokens", lim, 0, reset)
        return too_many(ctx, w[1], format("rate limit reached for output tokens: %d per %s", lim,
          w[3] == MIN and "minute" or "day"), "rate_limit_exceeded", reset)
      end
    end
  end
  -- tokens in: taken now, so a prompt over the limit costs nothing
  for _, w in ipairs{ { "tokens_in_per_min", "im:", MIN }, { "tokens_in_per_day", "id:", DAY } } do
    local lim = limits[w[1]]
    if lim then
      local ok, rem, reset = q:take(w[2] .. t, n, lim, w[3])
      if ok == nil then return unavailable() end
      if w[3] == MIN then ratelimit_headers(ctx, "tokens", lim, rem, reset) end
      if not ok then
        return too_many(ctx, w[1], format("rate limit reached for tokens: %d per %s, this request needs %d", lim,
          w[3] == MIN and "minute" or "day", n), "rate_limit_exceeded", reset)
      end
      st[w[2]] = true
    end
  end
  -- spend: the prompt's cost is taken now, the answer's added after
  if limits.spend_per_day or limits.spend_per_month then
    local price = price_of(self.prices, doc.model)
    local cost = price and floor((price.input or 0) * n + 0.5) or 0   -- prices per 1M tokens, in micro-units
    st.price, st.cost_in = price, cost
    local mkey, mreset = month()
    for _, w in ipairs{ { "spend_per_day", "sd:" .. t, DAY }, { "spend_per_month", "sm:" .. t .. ":" .. mkey, 32 * DAY, mreset } } do
      local lim = limits[w[1]]
      if lim then
        local ok, _, reset = q:take(w[2], cost, floor(lim * MICRO + 0.5), w[3])
        if ok == nil then return unavailable() end
        if not ok then
          return too_many(ctx, w[1], format("this tenant's %s budget of %s is spent", w[1] == "spend_per_day" and "daily" or "monthly",
            tostring(lim)), "insufficient_quota", w[4] or reset)
        end
        st[w[1]] = w[2]
      end
    end
  end
  st.limits = limits
  return nil
end

-- After the call: the counters take what it really used (the provider's usage, or moongate's own
-- count of a stream), and the concurrency slot is given back.
local function reconcile(q, st, usage, prices)
  if st.slot then q:release(st.slot) end
  local limits = st.limits
  if not limits then return end
  local t = st.tenant
  local out = usage.completion_tokens or 0
  local din = usage.reported and (usage.prompt_tokens - st.tokens_in) or 0
  if out > 0 then
    if limits.tokens_out_per_min then q:add("om:" .. t, out, MIN) end
    if limits.tokens_out_per_day then q:add("od:" .. t, out, DAY) end
  end
  if din ~= 0 then
    if st["im:"] then q:add("im:" .. t, din, MIN) end
    if st["id:"] then q:add("id:" .. t, din, DAY) end
  end
  local price = st.price
  if price and (st.spend_per_day or st.spend_per_month) then
    local actual = price_of(prices, usage.model) or price
    local cost = floor((actual.input or 0) * (usage.reported and usage.prompt_tokens or st.tokens_in)
      + (actual.output or 0) * out + 0.5) - st.cost_in
    if cost ~= 0 then
      if st.spend_per_day then q:add(st.spend_per_day, cost, DAY) end
      if st.spend_per_month then q:add(st.spend_per_month, cost, 32 * DAY) end
    end
  end
end

function Stage:finally(ctx)
  local st = ctx.quota
  if not st then return end
  local u = ctx.usage
  u.model = ctx.model
  reconcile(self.q, st, u, self.prices)   -- shared-memory counters: no waiting, fit for a finally
end

return M
