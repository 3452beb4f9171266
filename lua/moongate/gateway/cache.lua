-- moongate.gateway.cache: the cache step of POST /v1/chat/completions — after routing resolved
-- the policy and flags versions, before any upstream call: decide hit, miss or bypass, answer a
-- hit, and keep a successful answer. Spans, metrics and the x-moongate-cache header say which.
local json = require "moongate.json"
local trace = require "moongate.trace"
local metrics = require "moongate.metrics"
local prices = require "moongate.prices"
local key = require "moongate.cache.key"
local exact = require "moongate.cache.exact"

local M = {}

local now = require("moongate").now

local requests_total = metrics.counter("moongate_cache_requests_total",
  "Chat requests by cache (exact, semantic) and result (hit, miss, bypass).", { "cache", "result" })
local tokens_saved = metrics.counter("moongate_cache_saved_tokens_total",
  "Tokens a cache hit did not spend upstream, by cache and direction (input, output).", { "cache", "direction" })
local cost_saved = metrics.counter("moongate_cache_saved_cost_total",
  "Spend a cache hit saved, from the config's price table, by cache.", { "cache" })

--- cache.check_config(cfg.cache) -> true | nil, err
function M.check_config(c)
  if c == nil or c == false then return true end
  if type(c) ~= "table" then return nil, "config: cache must be a table or false" end
  for _, part in ipairs({ "exact", "semantic", "snippet" }) do
    local p = c[part]
    if p ~= nil and p ~= false and type(p) ~= "table" then
      return nil, "config: cache." .. part .. " must be a table or false"
    end
    if type(p) == "table" then
      for _, f in ipairs({ "ttl", "max_entries", "max_bytes", "max_entry_bytes" }) do
        local v = p[f]
        if v ~= nil and (type(v) ~= "number" or v <= 0) then
          return nil, "config: cache." .. part .. "." .. f .. " must be a number > 0"
        end
      end
    end
  end
  local e = c.exact
  if type(e) == "table" and e.shared ~= nil and type(e.shared) ~= "boolean" then
    local ok = type(e.shared) == "string" and (e.shared:match("^redis://") or e.shared:match("^unix://"))
    if not ok then return nil, "config: cache.exact.shared must be true, false or a redis:// url" end
    local _, err = require("moongate.redis").parse(e.shared)
    if err then return nil, "config: cache.exact.shared: " .. err end
  end
  if type(e) == "table" and e.prefix ~= nil and (type(e.prefix) ~= "string" or e.prefix == "") then
    return nil, "config: cache.exact.prefix must be a non-empty string"
  end
  if type(e) == "table" and e.timeout ~= nil and (type(e.timeout) ~= "number" or e.timeout <= 0) then
    return nil, "config: cache.exact.timeout must be a number of seconds > 0"
  end
  local s = c.semantic
  if type(s) == "table" and s.threshold ~= nil and
     (type(s.threshold) ~= "number" or s.threshold <= 0 or s.threshold > 1) then
    return nil, "config: cache.semantic.threshold must be a number in (0, 1]"
  end
  if type(s) == "table" and s.guards ~= nil and type(s.guards) ~= "boolean" then
    return nil, "config: cache.semantic.guards must be true or false"
  end
  return true
end

--- cache.check_model(name, m.cache) -> true | nil, err
function M.check_model(name, c)
  if c == nil or c == false then return true end
  if type(c) ~= "table" then return nil, "config: model " .. name .. ": cache must be a table or false" end
  for _, f in ipairs({ "idempotent", "semantic" }) do
    if c[f] ~= nil and type(c[f]) ~= "boolean" then
      return nil, "config: model " .. name .. ": cache." .. f .. " must be true or false"
    end
  end
  if c.ttl ~= nil and (type(c.ttl) ~= "number" or c.ttl <= 0) then
    return nil, "config: model " .. name .. ": cache.ttl must be a number of seconds > 0"
  end
  return true
end

-- The worker's caches, built on first use from the gateway's config (nil: caching is off).
function M.state(gw)
  local s = gw.cache_state
  if s == nil then
    local c = gw.config.cache
    if type(c) ~= "table" then
      s = false
    else
      s = { config = c, exact = c.exact ~= false and exact.new(c.exact) or nil }
      if type(c.semantic) == "table" then
        s.semantic = require("moongate.cache.semantic").new(c.semantic)
      end
      if type(c.snippet) == "table" then s.snippet = require("moongate.cache.snippet").configure(c.snippet) end
    end
    gw.cache_state = s
  end
  return s or nil
end

-- The context that resolved a request, part of its key: a new routing policy, flags file or
-- plan gives new keys, so an answer is only reused by the pipeline version that produced it.
local function resolved(tenant, pversion, plan, edge)
  local tiers = {}
  for i, t in ipairs(plan.tiers) do tiers[i] = tostring(t.provider) .. "/" .. tostring(t.model or "") end
  local flags = {}
  local f = edge and rawget(edge, "flags")
  if type(f) == "table" then
    for n, v in pairs(f) do if v then flags[#flags + 1] = n .. "=" .. tostring(v) end end   -- variants too
    table.sort(flags)
  end
  local set = edge and rawget(edge, "flag_set")
  return { tenant = tenant or "", policy = tostring(pversion), tiers = tiers, flags = flags,
           flags_version = set and tostring(set.version) or "", max_output = plan.max_output_tokens or json.null }
end

local function span_result(sp, st)
  if sp.noop then return end
  sp:set("moongate.cache.result", st.result)
  if st.kind then sp:set("moongate.cache.kind", st.kind) end
  if st.why then sp:set("moongate.cache.reason", st.why) end
  if st.tier then sp:set("moongate.cache.tier", st.tier) end
  if st.similarity then sp:set("moongate.cache.similarity", st.similarity) end
end

--- cache.decide(gw, req, doc, name, mcfg, plan, pversion, tenant, edge) -> st:
--- { result = "hit" | "miss" | "bypass", why =, entry = (on a hit) {body, provider, model, age} }
function M.decide(gw, req, doc, name, mcfg, plan, pversion, tenant, edge)
  local s = M.state(gw)
  local mc = mcfg.cache
  local st = { result = "bypass" }
  if not s or mc == false or not s.exact then st.why = "off"; return st end
  if mcfg.tools then st.why = "server-side tools"; return st end
  local no_cache, no_store = key.cache_control(req.headers["cache-control"])
  local semantic_on = s.semantic and type(mc) == "table" and mc.semantic == true
  local ok, why = key.reproducible(doc, (type(mc) == "table" and mc.idempotent) or semantic_on)
  if not ok then st.why = why; requests_total:inc(1, "exact", "bypass"); return st end
  if no_store then st.why = "no-store"; requests_total:inc(1, "exact", "bypass"); return st end
  local sp = trace.start("cache")
  local ns = key.namespace(tenant)
  st.ns, st.exact = ns, s.exact
  st.context = resolved(tenant, pversion, plan, edge)
  st.hash = key.hash(doc, st.context)
  st.ttl = type(mc) == "table" and mc.ttl or nil
  st.kind, st.alias = "exact", name
  if no_cache then
    st.why = "no-cache"
    requests_total:inc(1, "exact", "bypass")
    st.result, st.store = "bypass", true
    span_result(sp, st)
    sp:finish()
    return st
  end
  st.store = true
  local v, tier = s.exact:get(ns, st.hash)
  local entry = v and M.decode_entry(v)
  if entry then
    st.result, st.tier, st.entry = "hit", tier, entry
  else
    st.result = "miss"
    if semantic_on then
      st.semantic, st.tiers = s.semantic, plan.tiers
      local sst = s.semantic:lookup(doc, st, gw, s.exact:generation(ns))
      local entry = sst and sst.entry and M.decode_entry(sst.entry)
      if entry then
        st.result, st.kind, st.entry, st.similarity = "hit", "semantic", entry, sst.similarity
      end
      st.semantic_key = sst
      requests_total:inc(1, "semantic", st.result == "hit" and "hit" or (sst and "miss" or "bypass"))
    end
  end
  requests_total:inc(1, "exact", st.kind == "exact" and st.result or "miss")
  span_result(sp, st)
  sp:finish()
  return st
end

-- An entry: "provider\nmodel\nstored at\n" then the completion's JSON.
local function encode_entry(provider, model, body)
  return provider .. "\n" .. model .. "\n" .. string.format("%.3f", now()) .. "\n" .. body
end

--- cache.decode_entry(value) -> {provider, model, stored, body} | nil
function M.decode_entry(v)
  local provider, model, stored, pos = v:match("^([^\n]*)\n([^\n]*)\n([%d%.]+)\n()")
  if not provider then return nil end
  return { provider = provider, model = model, stored = tonumber(stored), body = v:sub(pos) }
end

--- cache.hit(gw, st, edge) -> the cached completion (decoded), headers for the answer: records
--- the hit's savings (tokens, cost) in metrics and on the request's root span.
function M.hit(gw, st, edge)
  local e = st.entry
  local out = json.decode(e.body)
  if type(out) ~= "table" then return nil end
  local u = type(out.usage) == "table" and out.usage or {}
  local tin, tout = tonumber(u.prompt_tokens) or 0, tonumber(u.completion_tokens) or 0
  tokens_saved:inc(tin, st.kind, "input")
  tokens_saved:inc(tout, st.kind, "output")
  local p = prices.of(gw.config.prices, e.model, st.alias)
  local spent = p and prices.cost(p, tin, tout)
  if spent then cost_saved:inc(spent, st.kind) end
  local root = edge and edge.span
  if root and not root.noop then
    root:set("moongate.cache.result", "hit"):set("moongate.cache.kind", st.kind)
      :set("moongate.cache.saved_input_tokens", tin):set("moongate.cache.saved_output_tokens", tout)
    if spent then root:set("moongate.cache.saved_cost", spent) end
    if st.similarity then root:set("moongate.cache.similarity", st.similarity) end
  end
  local age = math.max(0, now() - (e.stored or now()))
  return out, { ["x-moongate-cache"] = "hit", ["x-moongate-cache-kind"] = st.kind,
                ["x-moongate-cache-age"] = tostring(math.floor(age)) }
end

-- A completion is kept only when it is a whole, successful answer.
local function answer_ok(out)
  if type(out) ~= "table" or type(out.choices) ~= "table" or #out.choices == 0 then return false end
  for _, c in ipairs(out.choices) do
    local f = type(c) == "table" and c.finish_reason
    if f ~= "stop" and f ~= "tool_calls" and f ~= "length" and f ~= "function_call" then return false end
  end
  return true
end

--- cache.store(st, provider, model, body[, out]): keep a successful completion under the
--- request's key (and in the semantic cache when the request went through it).
function M.store(st, provider, model, body, out)
  if not st.store then return end
  out = out or json.decode(body)
  if not answer_ok(out) then return end
  local v = encode_entry(provider, model, body)
  st.exact:set(st.ns, st.hash, v, st.ttl)
  if st.semantic and st.semantic_key then st.semantic:store(st.semantic_key, v, out, st.ttl) end
end

--- cache.completion_of_stream(events) -> the chat.completion a stream's chunks add up to, or
--- nil when they do not make one answer (several choices, no finish).
function M.completion_of_stream(events)
  local id, created, model, usage, finish, fp
  local content, tools, role = {}, {}, "assistant"
  for i = 1, #events do
    local c = json.decode(events[i])
    if type(c) ~= "table" then return nil end
    id, created, model = id or c.id, created or c.created, model or c.model
    fp = fp or c.system_fingerprint
    if type(c.usage) == "table" then usage = c.usage end
    local ch = c.choices
    if type(ch) == "table" then
      for _, x in ipairs(ch) do
        if type(x) ~= "table" or (x.index or 0) ~= 0 then return nil end
        if type(x.finish_reason) == "string" then finish = x.finish_reason end
        local d = x.delta
        if type(d) == "table" then
          if type(d.role) == "string" then role = d.role end
          if type(d.content) == "string" then content[#content + 1] = d.content end
          for _, tc in ipairs(type(d.tool_calls) == "table" and d.tool_calls or {}) do
            local n = (tonumber(tc.index) or 0) + 1
            local t = tools[n]
            if not t then
              t = { id = tc.id, type = tc.type or "function", ["function"] = { name = "", arguments = "" } }
              tools[n] = t
            end
            if tc.id then t.id = tc.id end
            local fn = tc["function"]
            if type(fn) == "table" then
              if type(fn.name) == "string" then t["function"].name = t["function"].name .. fn.name end
              if type(fn.arguments) == "string" then t["function"].arguments = t["function"].arguments .. fn.arguments end
            end
          end
        end
      end
    end
  end
  if not finish then return nil end
  local msg = { role = role, content = (#content > 0 or #tools == 0) and table.concat(content) or json.null }
  if #tools > 0 then msg.tool_calls = json.array(tools) end
  return { id = id, object = "chat.completion", created = created, model = model,
           system_fingerprint = fp,
           choices = json.array{ { index = 0, message = msg, finish_reason = finish, logprobs = json.null } },
           usage = usage }
end

--- cache.flush(gw, tenant) -> entries removed from the shared tier (every tier of every worker
--- stops answering for the tenant)
function M.flush(gw, tenant)
  local s = M.state(gw)
  if not s or not s.exact then return 0 end
  local ns = key.namespace(tenant)
  local n, err = s.exact:flush(ns)
  if not n then return nil, err end
  if s.semantic then n = n + s.semantic:flush(ns) end
  return n
end

--- cache.flush_route(ctx) -> response: POST /admin/cache/flush {"tenant": "..."} (admin key):
--- {"tenant", "flushed": entries removed from the shared tier}
function M.flush_route(ctx)
  local errors = require "moongate.gateway.errors"
  local doc = ctx:doc()
  if not doc or type(doc.tenant) ~= "string" or doc.tenant == "" then
    return errors.response(400, 'the body must be a JSON object with a "tenant" string', "invalid_request")
  end
  if not M.state(ctx.gw) then
    return errors.response(404, "caching is off in this config (no cache table)", "cache_off")
  end
  local n, err = M.flush(ctx.gw, doc.tenant)
  if not n then
    return errors.response(503, "the cache's shared tier is unavailable: " .. tostring(err), "cache_store_unavailable")
  end
  return { status = 200, headers = { ["content-type"] = "application/json" },
           body = json.encode_sorted({ tenant = doc.tenant, flushed = n }) }
end

return M
