-- moongate.edge.quota: a tenant's limits, enforced before the call costs anything — requests per
-- minute, concurrent requests, tokens in/out per minute and day, spend per day and month, and the
-- per-request caps on tokens in and out — then reconciled with what the call really used.
-- Counters are exact across workers (shared memory) or, with `quota.backend = "redis://..."`,
-- across every instance sharing that Redis: moongate.quota.
local errors = require "moongate.gateway.errors"
local request = require "moongate.gateway.request"
local metrics = require "moongate.metrics"
local prices = require "moongate.prices"
local log = require "moongate.log"
local moongate = require "moongate"

local M = {}
local Stage = {}
Stage.__index = Stage

local floor, ceil, format = math.floor, math.ceil, string.format
local MIN, DAY = 60, 86400
local MICRO = 1e6   -- spend is counted in millionths of the price table's currency unit

local POLICY_KEYS = { rpm = true, concurrent = true, tokens_in_per_min = true, tokens_out_per_min = true,
  tokens_in_per_day = true, tokens_out_per_day = true, spend_per_day = true, spend_per_month = true }

-- How the counters are kept, not a limit: backend (shared | redis://...), on_error (deny | allow),
-- timeout (seconds per call to the store).
local STORE_KEYS = { backend = true, on_error = true, timeout = true }

local function has_quota(p) return type(p) == "table" and (p.quota ~= nil or p.caps ~= nil) end

--- new(config, gw) -> stage | nil: on when a default or any tenant's policy sets a quota or caps,
--- or tenants come from the store (whose policies may).
function M.new(config, gw)
  local any = config.quota ~= nil or config.caps ~= nil or (config.auth and config.auth.db) ~= nil
  for _, p in pairs(config.tenants or {}) do any = any or has_quota(p) end
  if not any then return nil end
  if config.quota ~= nil and type(config.quota) ~= "table" then return nil, "quota must be a table of limits" end
  -- the store's settings sit next to the default limits; the limits alone are the default policy
  local default, store = nil, {}
  for k, v in pairs(config.quota or {}) do
    if STORE_KEYS[k] then store[k] = v
    elseif POLICY_KEYS[k] then default = default or {}; default[k] = v
    else return nil, "quota: unknown limit '" .. tostring(k) .. "'" end
  end
  local url = store.backend or config.quota_store
  if url ~= nil and url ~= "shared" and (type(url) ~= "string" or not url:match("^redis://") and not url:match("^unix://")) then
    return nil, "quota.backend must be \"shared\" or a redis:// or unix:// url, got " .. tostring(url)
  end
  if url == "shared" then url = nil end
  local on_error = store.on_error or "deny"
  if on_error ~= "deny" and on_error ~= "allow" then
    return nil, "quota.on_error must be \"deny\" or \"allow\", got " .. tostring(on_error)
  end
  if store.timeout ~= nil and (type(store.timeout) ~= "number" or store.timeout <= 0) then
    return nil, "quota.timeout must be a positive number of seconds"
  end
  local q, err = require("moongate.quota").new{ url = url, prefix = "mgq:", timeout = store.timeout or 0.5,
                                                connect_timeout = store.timeout or 0.5 }
  if not q then return nil, err end
  return setmetatable({ q = q, default = default, default_caps = config.caps, on_error = on_error,
                        backend_name = url and url:gsub("//[^@/]*@", "//") or "shared",
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

local store_errors = metrics.counter("moongate_quota_store_errors_total",
  "Times the quota store could not be reached, by what was done: deny (503), allow (served unmetered), settle " ..
  "(usage after a call not counted).", { "policy" })

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

-- What refuses a request when op i of its reserve does not fit.
local function refusal(ctx, op, rem, reset)
  local lim, name = op.limit, op.name
  if op.header then ratelimit_headers(ctx, op.header, lim, rem, reset) end
  if name == "rpm" then
    return too_many(ctx, "rpm", format("rate limit reached for requests: %d per minute", lim), "rate_limit_exceeded", reset)
  elseif name == "concurrent" then
    return too_many(ctx, "concurrent", format("too many concurrent requests: the limit is %d", lim),
      "concurrency_limit_exceeded", 1)
  elseif op.kind == "peek" then
    ratelimit_headers(ctx, "tokens", lim, 0, reset)
    return too_many(ctx, name, format("rate limit reached for output tokens: %d per %s", lim,
      op.window == MIN and "minute" or "day"), "rate_limit_exceeded", reset)
  elseif name == "tokens_in_per_min" or name == "tokens_in_per_day" then
    return too_many(ctx, name, format("rate limit reached for tokens: %d per %s, this request needs %d", lim,
      op.window == MIN and "minute" or "day", op.amount), "rate_limit_exceeded", reset)
  end
  return too_many(ctx, name, format("this tenant's %s budget of %s is spent", name == "spend_per_day" and "daily" or "monthly",
    tostring(op.budget)), "insufficient_quota", reset)
end

-- The store could not be reached: refused (503) or let through uncounted, as on_error says.
function Stage:store_failed(ctx, err)
  store_errors:inc(1, self.on_error)
  log.warn("quota store unavailable", { backend = self.backend_name, error = tostring(err), policy = self.on_error,
    tenant = ctx.tenant })
  if self.on_error == "allow" then
    ctx.quota = nil
    ctx:header("x-moongate-quota", "unmetered")
    return nil
  end
  return unavailable()
end

-- the token windows: limit name, counter key prefix, window length
local OUT_WINDOWS = { { "tokens_out_per_min", "om:", MIN }, { "tokens_out_per_day", "od:", DAY } }
local IN_WINDOWS = { { "tokens_in_per_min", "im:", MIN }, { "tokens_in_per_day", "id:", DAY } }

function Stage:before(ctx)
  local policy = ctx.policy
  local limits = policy.quota or self.default
  local caps = policy.caps or self.default_caps
  if not limits and not caps then return nil end
  local q, t = self.q, ctx.tenant or "-"
  local st = { tenant = t }
  ctx.quota = st
  limits = limits or {}
  local ops = {}

  if limits.rpm then
    ops[#ops + 1] = { kind = "take", key = "r:" .. t, amount = 1, limit = limits.rpm, window = MIN, name = "rpm",
                      header = "requests" }
  end
  if limits.concurrent then
    ops[#ops + 1] = { kind = "slot", key = "c:" .. t, limit = limits.concurrent, name = "concurrent" }
  end

  local route = ctx.route
  local doc = (route == "chat" or route == "embeddings") and ctx:doc() or nil
  if doc then   -- (no doc: the handler answers 400)
    local n = input_tokens(ctx, doc)
    if caps then
      local capped, refused = apply_caps(ctx, doc, caps, n)
      if not capped then return refused end
      n = capped
    end
    st.tokens_in = n
    -- tokens out: refused once the window's output is spent (what a call will write is not known yet)
    for _, w in ipairs(OUT_WINDOWS) do
      local lim = limits[w[1]]
      if lim then ops[#ops + 1] = { kind = "peek", key = w[2] .. t, limit = lim, window = w[3], name = w[1] } end
    end
    -- tokens in: taken now, so a prompt over the limit costs nothing
    for _, w in ipairs(IN_WINDOWS) do
      local lim = limits[w[1]]
      if lim then
        ops[#ops + 1] = { kind = "take", key = w[2] .. t, amount = n, limit = lim, window = w[3], name = w[1],
                          header = w[3] == MIN and "tokens" or nil }
        st[w[2]] = true
      end
    end
    -- spend: the prompt's cost is taken now, the answer's added after
    if limits.spend_per_day or limits.spend_per_month then
      local price = prices.of(self.prices, nil, doc.model)
      local cost = price and floor((price.input or 0) * n + 0.5) or 0   -- prices per 1M tokens, in micro-units
      st.price, st.cost_in, st.alias = price, cost, doc.model
      local mkey, mreset = month()
      if limits.spend_per_day then
        ops[#ops + 1] = { kind = "take", key = "sd:" .. t, amount = cost, window = DAY,
                          limit = floor(limits.spend_per_day * MICRO + 0.5), name = "spend_per_day",
                          budget = limits.spend_per_day }
        st.spend_per_day = { key = "sd:" .. t, window = DAY }
      end
      if limits.spend_per_month then
        ops[#ops + 1] = { kind = "take", key = "sm:" .. t .. ":" .. mkey, amount = cost, ttl = mreset,
                          limit = floor(limits.spend_per_month * MICRO + 0.5), name = "spend_per_month",
                          budget = limits.spend_per_month }
        st.spend_per_month = { key = "sm:" .. t .. ":" .. mkey, ttl = mreset }
      end
    end
    st.limits = limits
  end
  if #ops == 0 then return nil end

  local ok, i, res = q:reserve(ops)
  if ok == nil then return self:store_failed(ctx, i) end
  if not ok then
    -- all or nothing: none of the limits was taken; the headers say what the ones before it have left
    for j = 1, i - 1 do
      local o = ops[j]
      if o.header then ratelimit_headers(ctx, o.header, o.limit, res[j][1], res[j][2]) end
    end
    st.limits = nil   -- nothing to reconcile
    local r = res[i]
    return refusal(ctx, ops[i], r[1], r[2])
  end
  for j, o in ipairs(ops) do
    if o.kind == "slot" then st.slot = o.key
    elseif o.header then ratelimit_headers(ctx, o.header, o.limit, i[j][1], i[j][2]) end
  end
  return nil
end

-- After the call: the counters take what it really used (the provider's usage, or moongate's own
-- count of a stream), and the concurrency slot is given back.
local function add(ops, key, amount, window, ttl)
  ops[#ops + 1] = { kind = "add", key = key, amount = amount, window = window, ttl = ttl }
end

local function settle_ops(st, usage, price_table)
  local ops = {}
  if st.slot then ops[#ops + 1] = { kind = "release", key = st.slot } end
  local limits = st.limits
  if not limits then return ops end
  local t = st.tenant
  local out = usage.completion_tokens or 0
  local din = usage.reported and (usage.prompt_tokens - st.tokens_in) or 0
  if out > 0 then
    if limits.tokens_out_per_min then add(ops, "om:" .. t, out, MIN) end
    if limits.tokens_out_per_day then add(ops, "od:" .. t, out, DAY) end
  end
  if din ~= 0 then
    if st["im:"] then add(ops, "im:" .. t, din, MIN) end
    if st["id:"] then add(ops, "id:" .. t, din, DAY) end
  end
  local price = st.price
  if price and (st.spend_per_day or st.spend_per_month) then
    local actual = prices.of(price_table, usage.model, st.alias)
    local cost = floor((actual.input or 0) * (usage.reported and usage.prompt_tokens or st.tokens_in)
      + (actual.output or 0) * out + 0.5) - st.cost_in
    if cost ~= 0 then
      local d, m = st.spend_per_day, st.spend_per_month
      if d then add(ops, d.key, cost, d.window) end
      if m then add(ops, m.key, cost, nil, m.ttl) end
    end
  end
  return ops
end

-- A store that waits (Redis) is settled by a task of its own: a finally cannot wait. Apart from
-- finally, so that finally makes no closure (its locals captured would keep it from compiling).
local function settle_later(stage, q, ops, tenant)
  moongate.spawn(function()
    local ok, err = q:settle(ops)
    if not ok then
      store_errors:inc(1, "settle")
      log.warn("quota store unavailable: usage not reconciled", { backend = stage.backend_name, error = tostring(err),
        tenant = tenant })
    end
  end)
end

function Stage:finally(ctx)
  local st = ctx.quota
  if not st then return end
  local u = ctx.usage
  u.model = ctx.model
  local ops = settle_ops(st, u, self.prices)
  if #ops == 0 then return end
  local q = self.q
  if not q.waits then return q:settle(ops) end   -- shared memory: no waiting, fit for a finally
  settle_later(self, q, ops, st.tenant)
end

return M
