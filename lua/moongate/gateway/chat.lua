-- moongate.gateway.chat: POST /v1/chat/completions. Parses just enough of the request to route it,
-- runs the plan (fallback, retries, breakers, deadline), and answers: the upstream's bytes as they
-- came for a completion, or a relayed event stream that ends with an error event if it breaks.
local json = require "moongate.json"
local moongate = require "moongate"
local router = require "moongate.router"
local errors = require "moongate.gateway.errors"
local usage = require "moongate.gateway.usage"
local request = require "moongate.gateway.request"
local trace = require "moongate.trace"
local metrics = require "moongate.metrics"
local cache = require "moongate.gateway.cache"

local M = {}

local now, sleep = moongate.now, moongate.sleep
local find, format, byte = string.find, string.format, string.byte
local concat = table.concat
local reload

-- Headers of the client's request that go upstream: x-* (minus keys) and openai-*, plus the
-- request id (so upstream logs can be joined with ours). Never Authorization, cookies or
-- hop-by-hop headers.
local SKIP = { ["x-api-key"] = true, ["x-forwarded-host"] = true }
local function forward_headers(h, request_id)
  local out
  for k, v in pairs(h) do
    local b = k:byte(1)
    if (b == 120 and k:byte(2) == 45 and not SKIP[k]) or (b == 111 and k:sub(1, 7) == "openai-") then
      out = out or {}
      out[k] = v
    end
  end
  if request_id then
    out = out or {}
    out["x-request-id"] = request_id
  end
  return out
end
M.forward_headers = forward_headers

local function validate_policy(m)
  if type(m) ~= "table" or type(m.plan) ~= "function" then
    return nil, "a routing policy must return a table with plan(req, ctx)"
  end
  return true
end
M.validate_policy = validate_policy

local function policy_for(gw)
  if reload == nil then
    local ok, r = pcall(require, "moongate.reload")
    reload = ok and r or false
  end
  if reload then return reload.require(gw.policy_path, validate_policy) end
  if not gw.policy_static then gw.policy_static = dofile(gw.policy_path) end
  return gw.policy_static, "static"
end
M.policy_for = policy_for

local count_tokens = request.prompt_tokens

local attempts_total = metrics.counter("moongate_upstream_attempts_total",
  "Calls to upstream providers, by provider, upstream model and outcome (ok, or why it failed).",
  { "provider", "model", "outcome" })
local fallbacks_total = metrics.counter("moongate_fallbacks_total",
  "Requests answered by a tier other than the plan's first (or by the degrade tier), by model alias.", { "model" })
local retries_total = metrics.counter("moongate_retries_total",
  "Upstream attempts beyond the first, by model alias.", { "model" })

-- A span per upstream attempt (OpenTelemetry's generative-AI client span), made the parent of the
-- upstream's own spans through the traceparent header it is sent with.
local function attempt_span(creq, tier, n, budget, op)
  local model = tier.model or creq.model
  local sp = trace.start(op .. " " .. model, nil, trace.CLIENT, "upstream")
  if sp.noop then return sp end
  -- made at the size it reaches when the attempt ends (usage and response model are set then)
  sp.attrs = { ["gen_ai.operation.name"] = op, ["gen_ai.provider.name"] = tier.provider,
               ["gen_ai.request.model"] = model, ["moongate.attempt"] = n,
               ["moongate.timeout_ms"] = math.floor(budget * 1000 + 0.5) }
  local fh = creq.forward_headers
  if not fh then fh = {}; creq.forward_headers = fh end
  fh.traceparent = trace.traceparent(sp)
  fh.tracestate = sp.tr.state
  return sp
end

-- An attempt's end: outcome on its span and in the attempt counter. A stream's span stays open
-- until the stream ends (keep = true).
local function attempt_done(sp, tier, model, r, fail, keep)
  local outcome = "ok"
  if fail then
    outcome = fail.status and ("status_" .. fail.status) or (fail.reason or "error"):gsub(" ", "_")
    if not sp.noop then
      sp:fail(fail.message or fail.reason)
      sp:set("error.type", outcome)
      if fail.status then sp:set("http.response.status_code", fail.status) end
    end
  elseif not sp.noop then
    local u = r.usage
    if type(u) == "table" then
      sp:set("gen_ai.usage.input_tokens", tonumber(u.prompt_tokens) or 0)
      sp:set("gen_ai.usage.output_tokens", tonumber(u.completion_tokens) or 0)
    end
    local d = r.doc
    if type(d) == "table" and type(d.model) == "string" then sp:set("gen_ai.response.model", d.model) end
  end
  attempts_total:inc(1, tier.provider, tier.model or model, outcome)
  if not keep then sp:finish() end
end

local function ms(seconds) return format("%.3f", seconds * 1000) end

-- The fields moongate sets on the upstream request (model is set per tier by the provider).
local function upstream_fields(doc, stream, plan)
  local set = {}
  if stream then
    local so = doc.stream_options
    if type(so) ~= "table" then
      set.stream_options = { include_usage = true }
    elseif so.include_usage ~= true then
      local copy = {}
      for k, v in pairs(so) do copy[k] = v end
      copy.include_usage = true
      set.stream_options = copy
    end
  end
  local cap = plan.max_output_tokens
  if cap then
    local mct, mt = doc.max_completion_tokens, doc.max_tokens
    if type(mct) == "number" then
      if mct > cap then set.max_completion_tokens = cap end
    elseif type(mt) == "number" then
      if mt > cap then set.max_tokens = cap end
    else
      set.max_tokens = cap
    end
  end
  return set
end

-- Check a streamed event before it is relayed: the decoded chunk, or nil, failure.
local function check_event(data)
  local chunk = json.decode(data)
  if type(chunk) ~= "table" then
    return nil, { status = 502, reason = "malformed", kind = "retry", message = "upstream sent malformed stream data" }
  end
  if chunk.error ~= nil then
    local e = chunk.error
    return nil, { status = 502, reason = "upstream error", kind = "retry",
                  message = type(e) == "table" and e.message or tostring(e) }
  end
  return chunk
end

-- usage_of_stream(list of event data, doc, client model, upstream model) -> usage: for a stream
-- whose upstream sent no usage, counted with the tokenizer (the prompt as count_chat does, the
-- completion as the text and tool-call arguments that were streamed).
local function usage_of_stream(events, doc, name, upstream_model)
  local parts = {}
  for i = 1, #events do
    local c = json.decode(events[i])
    local ch = type(c) == "table" and c.choices
    local d = type(ch) == "table" and type(ch[1]) == "table" and ch[1].delta
    if type(d) == "table" then
      if type(d.content) == "string" then parts[#parts + 1] = d.content end
      if type(d.tool_calls) == "table" then
        for _, tc in ipairs(d.tool_calls) do
          local fn = type(tc) == "table" and tc["function"]
          if type(fn) == "table" then
            if type(fn.name) == "string" then parts[#parts + 1] = fn.name end
            if type(fn.arguments) == "string" then parts[#parts + 1] = fn.arguments end
          end
        end
      end
    end
  end
  local text = table.concat(parts)
  local ct
  local ok, tok = pcall(require, "moongate.tokenizer")
  if ok and tok then
    local enc = tok.encoding_for_model(upstream_model or name) or tok.encoding_for_model(name) or "o200k_base"
    ct = tok.count(text, enc)
  end
  ct = ct or math.ceil(#text / 4)
  local pt = count_tokens(doc, upstream_model or name)
  return { prompt_tokens = pt, completion_tokens = ct, total_tokens = pt + ct, estimated = true }
end

-- Does a chunk carry the answer (a token, a tool call, a finish, usage), or only preliminaries
-- (the role, an empty content) that some servers send before they have generated anything?
local function has_token(chunk)
  local ch = chunk.choices
  if type(ch) ~= "table" then return true end
  local c = ch[1]
  if type(c) ~= "table" then return true end    -- usage chunk or something unusual: count it
  if c.finish_reason ~= nil and c.finish_reason ~= json.null then return true end
  local d = c.delta
  if type(d) ~= "table" then return true end
  local content = d.content
  if type(content) == "string" and content ~= "" then return true end
  if d.tool_calls ~= nil or d.function_call ~= nil or d.refusal ~= nil and d.refusal ~= json.null then return true end
  if type(d.reasoning_content) == "string" and d.reasoning_content ~= "" then return true end
  return false
end

-- The stream's first token, within the attempt's budget: the attempt counts as answered only
-- once it is here (time to first token), so a stall before it moves on to the next tier. Events
-- before it (the role chunk) are kept in src.pre and relayed with it.
local function first_event(src, budget)
  local t_end = now() + budget
  local pre
  while true do
    local left = t_end - now()
    if left <= 0 then return nil, { reason = "timeout", kind = "retry", message = "upstream timeout" } end
    local data, err = src.events:next(left)
    if not data then
      return nil, { reason = err or "closed", kind = "retry",
                    message = err and ("upstream " .. err) or "upstream stream ended before any event" }
    end
    if data == "[DONE]" then
      return nil, { reason = "empty", kind = "retry", message = "upstream stream ended before any event" }
    end
    local chunk, fail = check_event(data)
    if not chunk then return nil, fail end
    if has_token(chunk) or (pre and #pre >= 16) then
      src.pre = pre
      return data, chunk
    end
    pre = pre or {}
    pre[#pre + 1] = data
  end
end

local function error_response(gw, f, extra_headers)
  local h = extra_headers or {}
  if f.retry_after then h["retry-after"] = tostring(f.retry_after) end
  return errors.response(f.status, f.message, f.code, h)
end

-- asker(gw) -> ask(tier, messages[, budget]) -> answer text | nil, err: one non-streamed call to a
-- provider outside the request's plan (no retries, no breaker), for policies that consult a
-- small fast model (triage).
function M.asker(gw)
  gw.ask = function(tier, messages, budget)
    local p = gw.providers[tier.provider]
    if not p then return nil, "unknown provider " .. tostring(tier.provider) end
    local doc = { model = tier.model or "default", messages = messages, max_tokens = tier.max_tokens or 10,
                  temperature = 0 }
    local creq = { raw = assert(json.encode(doc)), doc = doc, model = doc.model, stream = false,
                   idle = gw.idle_timeout, set = {} }
    local r, fail = p:chat(creq, tier, budget or tier.timeout or 1)
    if not r then return nil, fail and fail.message or "failed" end
    local c = r.doc and r.doc.choices and r.doc.choices[1]
    local text = c and c.message and c.message.content
    if type(text) ~= "string" then return nil, "no answer" end
    return text
  end
  return gw.ask
end

-- A non-streamed call through the plan, each attempt provider:<call>(creq, tier, budget)
-- ("chat" or "embeddings"), with the gateway's retries and breakers:
-- result, info, seconds waited upstream | nil, failure, waited
function M.run_plan(gw, creq, plan, deadline, call)
  local waited = 0
  local attempt = function(tier, budget, n)
    local a0 = now()
    local p = gw.providers[tier.provider]
    local sp = attempt_span(creq, tier, n, budget, call)
    local r, fail = p[call](p, creq, tier, budget)
    attempt_done(sp, tier, creq.model, r, fail)
    waited = waited + (now() - a0)
    return r, fail
  end
  local rcfg = gw.retry
  local result, info = router.run(plan, attempt, {
    breaker = gw.breaker, max_attempts = rcfg.max_attempts, backoff = rcfg.backoff,
    backoff_max = rcfg.backoff_max, retry_after_max = rcfg.retry_after_max,
    deadline = deadline, now = now, sleep = sleep, attempt_cap = plan.attempt_cap,
  })
  return result, info, waited
end

-- A finished completion as the chunks a stream would have carried.
local function stream_completion(res, headers, out, client_usage)
  headers["content-type"] = "text/event-stream"
  headers["cache-control"] = "no-cache"
  res:start(200, headers)
  local c = out.choices[1]
  local base = { id = out.id, object = "chat.completion.chunk", created = out.created, model = out.model }
  local function send(delta, finish, usage_only)
    local chunk = { id = base.id, object = base.object, created = base.created, model = base.model }
    if usage_only then
      chunk.choices = json.array()
      chunk.usage = out.usage
    else
      chunk.choices = json.array{ { index = 0, delta = delta, finish_reason = finish or json.null } }
    end
    return res:write("data: " .. assert(json.encode(chunk)) .. "\n\n")
  end
  local m = c.message or {}
  if not send({ role = "assistant", content = "" }) then return nil end
  if type(m.content) == "string" and m.content ~= "" then send({ content = m.content }) end
  if type(m.tool_calls) == "table" then
    local calls = json.array()
    for i, tc in ipairs(m.tool_calls) do
      calls[i] = { index = i - 1, id = tc.id, type = tc.type or "function", ["function"] = tc["function"] }
    end
    send({ tool_calls = calls })
  end
  send(json.object(), c.finish_reason or "stop")
  if client_usage and out.usage then send(nil, nil, true) end
  res:write("data: [DONE]\n\n")
  res:finish()
  return nil
end

-- with_tools: a model whose config lists server-side tools (plugins/<name>.lua). moongate runs
-- the tool-call loop itself (non-streamed upstream calls) and answers with the final completion,
-- streamed as chunks when the client asked for a stream.
function M.with_tools(gw, req, res, doc, name, mcfg, plan, pversion, t0)
  local tools = require "moongate.tools"
  local list = {}
  local edge = moongate.context().edge
  for _, tname in ipairs(mcfg.tools) do
    if edge and not edge:allows_tool(tname) then goto next end
    local t, err = tools.load(tname, gw.plugin_dirs)
    if not t then
      return errors.response(500, "tool " .. tostring(tname) .. " is unavailable: " .. tostring(err), "tool_unavailable")
    end
    list[#list + 1] = t
    ::next::
  end
  local stream = doc.stream == true
  local client_usage = stream and type(doc.stream_options) == "table" and doc.stream_options.include_usage == true
  doc.stream, doc.stream_options = nil, nil
  local defs = tools.definitions(list)
  if type(doc.tools) == "table" then
    for _, d in ipairs(doc.tools) do defs[#defs + 1] = d end
  end
  doc.tools = defs[1] and defs or nil   -- every tool filtered out: a plain completion
  local fwd = forward_headers(req.headers, req.id)
  local deadline = plan.deadline and (t0 + plan.deadline) or moongate.deadline()
  local waited, attempts, last_info = 0, 0, nil
  local total = { prompt_tokens = 0, completion_tokens = 0, total_tokens = 0 }
  local failure
  local out, err = tools.loop{
    tools = list, messages = doc.messages, max_iterations = mcfg.max_tool_iterations or 4,
    key = req.headers["idempotency-key"] or req.id,
    ctx = { request_id = req.id, model = name },
    call_model = function(messages)
      doc.messages = messages
      local creq = { raw = assert(json.encode(doc)), doc = doc, model = name, stream = false,
                     forward_headers = fwd, idle = gw.idle_timeout, set = upstream_fields(doc, false, plan) }
      local r, info, w = M.run_plan(gw, creq, plan, deadline, "chat")
      waited = waited + w
      attempts = attempts + (info.attempts or 0)
      if not r then failure = info; return nil, "failed" end
      last_info = info
      local u = r.usage
      if type(u) == "table" then
        for k in pairs(total) do total[k] = total[k] + (tonumber(u[k]) or 0) end
      end
      usage.record(info.tier.provider, info.tier.model or name, u)
      return r.doc
    end,
  }
  if not out then
    if failure then
      if failure.fail and failure.fail.kind == "client" and failure.fail.body then
        return { status = failure.status, headers = { ["content-type"] = "application/json" }, body = failure.fail.body }
      end
      return error_response(gw, failure, { ["x-moongate-attempts"] = tostring(attempts) })
    end
    return errors.response(500, "the model kept calling tools past the limit of " ..
      tostring(mcfg.max_tool_iterations or 4) .. " iterations", "tool_loop_limit")
  end
  out.usage = total
  local tier = last_info.tier
  local headers = {
    ["x-moongate-provider"] = tier.provider,
    ["x-moongate-model"] = tier.model or name,
    ["x-moongate-attempts"] = tostring(attempts),
    ["x-moongate-route-version"] = pversion,
    ["x-moongate-overhead-ms"] = ms(now() - t0 - waited),
    ["x-moongate-cache"] = "bypass",   -- a tool may do something each time: never cached
  }
  if edge then edge.overhead = now() - t0 - waited end
  if stream then return stream_completion(res, headers, out, client_usage) end
  headers["content-type"] = "application/json"
  return { status = 200, headers = headers, body = assert(json.encode(out)) }
end

-- One attempt of a chat request (see moongate.router.run); st = { gw, creq, waited }. A stream
-- counts as answered only once its first event is here.
local function attempt_chat(tier, budget, n, st)
  local a0 = now()
  local sp = attempt_span(st.creq, tier, n, budget, "chat")
  local r, fail = st.gw.providers[tier.provider]:chat(st.creq, tier, budget)
  if r and r.events then
    local data, chunk = first_event(r, budget - (now() - a0))
    if not data then
      r.events:close()
      r, fail = nil, chunk
    else
      r.first, r.first_chunk = data, chunk
      sp:event("first token")
    end
  end
  attempt_done(sp, tier, st.creq.model, r, fail, r and r.events)
  if r then st.span = sp end
  st.waited = st.waited + (now() - a0)
  return r, fail
end

-- The ctx a routing policy gets: fields per request, functions shared (no closures per request).
local PCTX = {}
PCTX.__index = function(t, k)
  if k == "health" then
    local gw = rawget(t, "gw")
    return function(p) return gw.breaker:state(p) end
  elseif k == "count_tokens" then
    local doc, name = rawget(t, "doc"), rawget(t, "name")
    return function() return count_tokens(doc, name) end
  elseif k == "ask" then
    local gw = rawget(t, "gw")
    return gw.ask or M.asker(gw)
  end
end

-- The routing decision on the route span: the policy's version, the tiers in order, and why.
local function route_attrs(sp, pversion, pok, plan, perr)
  if not pok then sp:set("moongate.route.version", pversion):fail(plan); return end
  if type(plan) ~= "table" then
    sp:set("moongate.route.version", pversion):set("moongate.route.refused", tostring(perr))
    return
  end
  local tiers = {}
  for i, t in ipairs(type(plan.tiers) == "table" and plan.tiers or {}) do
    tiers[i] = tostring(t.provider) .. "/" .. tostring(t.model or "")
  end
  -- with what the policy's own code set on the span
  sp:set_all{ ["moongate.route.version"] = pversion, ["moongate.route.tiers"] = tiers,
              ["moongate.route.reason"] = plan.reason, ["moongate.route.triage"] = plan.triage }
end

--- call_with_policy(gw, doc, name, policy, tenant) -> result, info | nil, failure: one non-streamed
--- chat through the given routing policy, outside any client's request (shadow traffic: its answer
--- is recorded, never sent). result.doc is the decoded completion, result.usage its usage.
function M.call_with_policy(gw, doc, name, policy, tenant)
  local mcfg = gw.models[name] or gw.models["*"]
  if not mcfg then return nil, { message = "unknown model " .. tostring(name) } end
  local rq = { model = name, doc = doc, stream = false, tenant = tenant, headers = {} }
  local pctx = setmetatable({ model = mcfg, config = gw.config, doc = doc, name = name, gw = gw }, PCTX)
  local ok, plan, perr = pcall(policy.plan, rq, pctx)
  if not ok then return nil, { message = "the routing policy failed: " .. tostring(plan) } end
  if type(plan) ~= "table" or type(plan.tiers) ~= "table" then
    return nil, { message = perr or "the routing policy refused the request" }
  end
  local creq = { raw = assert(json.encode(doc)), doc = doc, model = name, stream = false, forward_headers = {},
                 idle = gw.idle_timeout, set = upstream_fields(doc, false, plan) }
  local deadline = now() + (plan.deadline or mcfg.deadline or 30)
  return M.run_plan(gw, creq, plan, deadline, "chat")
end

local function handle(gw, req, res, tenant)
  local t0 = req.start or now()
  local doc, name = request.decode(req)
  if not doc then return name end
  local msgs = doc.messages
  if type(msgs) ~= "table" or #msgs == 0 then
    return errors.response(400, "messages must be a non-empty array", "invalid_request")
  end
  local mcfg, missing = request.model(gw, name)
  if not mcfg then return missing end
  local stream = doc.stream == true

  -- a canary release may have picked its candidate policy for this request (moongate.edge.releases)
  local ectx = moongate.context().edge
  local rel = ectx and rawget(ectx, "release")
  local policy, pversion
  if rel and rel.policy then policy, pversion = rel.policy, rel.version else policy, pversion = policy_for(gw) end
  local rq = { model = name, doc = doc, stream = stream, tenant = tenant, headers = req.headers }
  local pctx = setmetatable({ model = mcfg, config = gw.config, doc = doc, name = name, gw = gw }, PCTX)
  if mcfg.budgets then trace.budgets(mcfg.budgets) end
  local rsp = trace.start("route")
  local pok, plan, perr, pstatus, pcode = pcall(policy.plan, rq, pctx)
  if not rsp.noop then route_attrs(rsp, pversion, pok, plan, perr) end
  rsp:finish()
  if not pok then
    local log = package.loaded["moongate.log"]
    if log then log.error("routing policy raised", { error = tostring(plan), version = pversion }) end
    return errors.response(500, "the routing policy failed (version " .. tostring(pversion) .. ")", "policy_error")
  end
  if not plan then
    return errors.response(pstatus or 400, perr or "the routing policy refused the request", pcode or "invalid_request")
  end
  if type(plan) ~= "table" or type(plan.tiers) ~= "table" then
    return errors.response(500, "the routing policy returned no tiers (version " .. tostring(pversion) .. ")", "policy_error")
  end

  local budgets = mcfg.budgets
  if budgets and budgets.enforce then plan.attempt_cap = plan.attempt_cap or budgets.upstream end

  if mcfg.tools then
    return M.with_tools(gw, req, res, doc, name, mcfg, plan, pversion, t0)
  end

  local edge = moongate.context().edge
  local cst = cache.decide(gw, req, doc, name, mcfg, plan, pversion, tenant, edge)
  if edge then edge.cache_result = cst.result end
  if cst.result == "hit" then
    local out, h = cache.hit(gw, cst, edge)
    if out then
      local overhead = now() - t0
      h["x-moongate-route-version"] = pversion
      h["x-moongate-overhead-ms"] = ms(overhead)
      if edge then
        edge.overhead, edge.response_text = overhead, cst.entry.body
        -- nothing was spent: the quota stage gives back the input tokens it reserved
        edge.usage.reported = true
      end
      if stream then
        local client_usage = type(doc.stream_options) == "table" and doc.stream_options.include_usage == true
        return stream_completion(res, h, out, client_usage)
      end
      h["content-type"] = "application/json"
      return { status = 200, headers = h, body = cst.entry.body }
    end
    cst.result = "miss"   -- an entry that no longer decodes: answer from upstream
    if edge then edge.cache_result = "miss" end
  end

  local creq = {
    raw = req.body, doc = doc, model = name, stream = stream,
    forward_headers = forward_headers(req.headers, req.id), idle = gw.idle_timeout,
    set = upstream_fields(doc, stream, plan),
  }
  local client_usage = stream and type(doc.stream_options) == "table" and doc.stream_options.include_usage == true

  local st = { gw = gw, creq = creq, waited = 0 }   -- waited: seconds on upstreams, not overhead
  local deadline = plan.deadline and (t0 + plan.deadline) or moongate.deadline()
  local rcfg = gw.retry
  local result, info = router.run(plan, attempt_chat, {
    breaker = gw.breaker, max_attempts = rcfg.max_attempts, backoff = rcfg.backoff,
    backoff_max = rcfg.backoff_max, retry_after_max = rcfg.retry_after_max,
    deadline = deadline, now = now, sleep = sleep, arg = st, attempt_cap = plan.attempt_cap,
  })
  local waited = st.waited

  local tier = result and info.tier
  if not result then
    local f = info
    if f.fail and f.fail.kind == "client" and f.fail.body then
      -- the upstream refused the request itself: its own answer, status and all
      local h = { ["content-type"] = "application/json", ["x-moongate-attempts"] = tostring(f.attempts) }
      return { status = f.status, headers = h, body = f.fail.body }
    end
    if plan.degrade and f.status ~= 400 and gw.degrade_provider then
      local d = gw.degrade_provider
      local a0 = now()
      local dtier = { provider = d.name, model = "extractive" }
      local sp = attempt_span(creq, dtier, f.attempts + 1, 30, "chat")
      sp:set("moongate.degraded", true)
      local r, dfail = d:chat(creq, { provider = d.name }, math.huge)
      if r and r.events then r.first, r.first_chunk = first_event(r, 30) end
      local ok = r and (r.body or r.first)
      attempt_done(sp, dtier, name, ok and r, not ok and (dfail or { reason = "no answer" }), ok and r.events)
      if ok and r.events then st.span = sp end
      waited = waited + (now() - a0)
      if ok then
        result, tier = r, { provider = d.name, model = "extractive" }
        info = { attempts = f.attempts, tier = tier, degraded = true }
      end
    end
    if not result then
      return error_response(gw, f, { ["x-moongate-attempts"] = tostring(f.attempts),
        ["x-moongate-overhead-ms"] = ms(now() - t0 - waited) })
    end
  end

  local headers = {
    ["x-moongate-provider"] = tier.provider,
    ["x-moongate-model"] = tier.model or name,
    ["x-moongate-attempts"] = tostring(info.attempts),
    ["x-moongate-route-version"] = pversion,
    ["x-moongate-cache"] = cst.result,
  }
  if info.degraded then headers["x-moongate-degraded"] = "true"; cst.store = false end
  if info.attempts > 1 then retries_total:inc(info.attempts - 1, name) end
  if info.degraded or tier ~= plan.tiers[1] then fallbacks_total:inc(1, name) end
  if not stream then
    usage.record(tier.provider, tier.model or name, result.usage)
    cache.store(cst, tier.provider, tier.model or name, result.body, result.doc)
    headers["content-type"] = "application/json"
    local overhead = now() - t0 - waited
    headers["x-moongate-overhead-ms"] = ms(overhead)
    if edge then edge.overhead, edge.response_text = overhead, result.body end
    return { status = 200, headers = headers, body = result.body }
  end

  -- Stream: commit. From here on nothing can move to another tier.
  headers["content-type"] = "text/event-stream"
  headers["cache-control"] = "no-cache"
  local overhead = now() - t0 - waited
  headers["x-moongate-overhead-ms"] = ms(overhead)
  res:start(200, headers)
  local events = result.events
  local idle = gw.idle_timeout
  local pending = events.pending
  local data, chunk = result.first, result.first_chunk
  local done = false
  local failure
  -- events that are already buffered go out in one write
  local parts, np, size = {}, 0, 0
  if result.pre then   -- the preliminaries that came before the first token
    for i = 1, #result.pre do
      np = np + 1
      parts[np] = "data: " .. result.pre[i] .. "\n\n"
    end
  end
  local seen, nseen, got_usage = {}, 0, false   -- the events, for counting usage if upstream sends none
  if edge then edge.overhead, edge.response_text = overhead, seen end
  local sp = st.span or trace.NOOP              -- the answering attempt's span, open until the end
  while true do
    local relay = true
    nseen = nseen + 1
    seen[nseen] = data
    if chunk then
      local u = chunk.usage
      if type(u) == "table" then
        got_usage = true
        usage.record(tier.provider, tier.model or name, u)
        if not client_usage then
          local ch = chunk.choices
          if ch == nil or (type(ch) == "table" and #ch == 0) then relay = false end
        end
      end
    end
    if relay then
      np = np + 1
      parts[np] = "data: " .. data .. "\n\n"
      size = size + #data + 8
    end
    if np > 0 and (size > 65536 or not pending or not pending(events)) then
      local ok = res:write(np == 1 and parts[1] or concat(parts, "", 1, np))
      np, size = 0, 0
      if not ok then
        events:close()      -- the client left: stop paying for tokens nobody reads
        return nil
      end
    end
    local err
    data, err = events:next(idle)
    if not data then
      failure = err and ("upstream " .. err) or "upstream stream ended without [DONE]"
      break
    end
    if data == "[DONE]" then done = true; break end
    -- decode only what needs reading: a usage chunk or an error; check the rest is an object
    if byte(data, 1) ~= 123 or byte(data, -1) ~= 125 then
      failure = "upstream sent malformed stream data"
      break
    end
    if find(data, '"usage":{', 1, true) or find(data, '"usage": {', 1, true) or find(data, '"error"', 1, true) then
      local f
      chunk, f = check_event(data)
      if not chunk then failure = f.message; break end
    else
      chunk = nil
    end
  end
  if np > 0 then res:write(concat(parts, "", 1, np)) end
  events:close()
  local counted
  if done and not got_usage then
    -- the upstream reported no usage: count it, and give it to a client that asked for it
    local u = usage_of_stream(seen, doc, name, tier.model)
    counted = u
    usage.record(tier.provider, tier.model or name, u)
    if client_usage then
      local c1 = json.decode(seen[1]) or {}
      res:write("data: " .. assert(json.encode({ id = c1.id, object = "chat.completion.chunk",
        created = c1.created, model = c1.model, choices = json.array(), usage = u })) .. "\n\n")
    end
  end
  if done then
    res:write("data: [DONE]\n\n")
    if cst.store then
      local out = cache.completion_of_stream(seen)
      if out then
        if counted then out.usage = counted end
        local body = json.encode(out)
        if body then cache.store(cst, tier.provider, tier.model or name, body, out) end
      end
    end
    local e = edge and edge.usage
    if e and e.calls > 0 then
      sp:set("gen_ai.usage.input_tokens", e.prompt_tokens):set("gen_ai.usage.output_tokens", e.completion_tokens)
    end
  else
    gw.breaker:failure(tier.provider, false)
    res:write("data: " .. errors.body(502, failure, "upstream_error") .. "\n\n")
    sp:fail(failure)
    if edge then edge.stream_failed = failure end   -- sent as 200, failed all the same (releases count it)
  end
  sp:finish()
  res:finish()
  return nil
end

-- handle(gw, req, res) -> response table, or nil after streaming the answer through res. Every
-- answer says what the cache did (bypass for one that never reached it).
function M.handle(gw, req, res, tenant)
  local r = handle(gw, req, res, tenant)
  if type(r) == "table" then
    local h = r.headers
    if not h then h = {}; r.headers = h end
    if h["x-moongate-cache"] == nil then
      local edge = moongate.context().edge
      h["x-moongate-cache"] = edge and edge.cache_result or "bypass"
    end
  end
  return r
end

return M
