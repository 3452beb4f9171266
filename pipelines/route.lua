-- pipelines/route.lua: the default routing policy (hot-reloaded: edit it while serving).
-- plan(req, ctx) sees the request, the tenant and the providers' health and returns the ordered
-- tiers to try, each with its own timeout; or nil, message, status, code to refuse the request.
local router = require "moongate.router"
local text_of = require("moongate.gateway.content").text

local M = {}

-- Words that mark a question as needing a stronger model.
local HARD = { "explain why", "step by step", "prove", "analy", "compare", "design", "debug",
               "refactor", "derive", "trade%-off", "architecture", "optimi", "write a", "implement" }

-- triage(doc) -> "easy" | "hard": a local heuristic on length, question type and tool use.
function M.triage(doc)
  if doc.tools or doc.functions or doc.response_format then return "hard" end
  local msgs = doc.messages
  if type(msgs) ~= "table" or #msgs > 6 then return "hard" end
  local chars, last = 0, nil
  for i = 1, #msgs do
    local c = msgs[i].content
    if c ~= nil then
      local t = text_of(c)   -- a string, or text parts
      if not t then return "hard" end   -- images, files, audio
      chars = chars + #t
      if msgs[i].role == "user" then last = t end
    end
  end
  if chars > 1200 or not last then return "hard" end
  local q = last:lower()
  if q:find("```", 1, true) then return "hard" end
  for _, w in ipairs(HARD) do
    if q:find(w) then return "hard" end
  end
  return "easy"
end

local TRIAGE_PROMPT = "Classify the user's request. Answer with exactly one word: easy (a short " ..
  "factual or conversational request a small model answers well) or hard (reasoning, code, " ..
  "analysis, long or multi-step work)."

-- triage_with_model(doc, tier, ctx) -> "easy" | "hard" | nil (no usable answer: use the heuristic)
function M.triage_with_model(doc, tier, ctx)
  local last
  for i = #doc.messages, 1, -1 do
    local m = doc.messages[i]
    if m.role == "user" then last = text_of(m.content); break end
  end
  if not last then return nil end
  local text = ctx.ask(tier, { { role = "system", content = TRIAGE_PROMPT },
                               { role = "user", content = last:sub(1, 4000) } }, tier.timeout or 1)
  if not text then return nil end
  text = text:lower()
  if text:find("hard", 1, true) then return "hard" end
  if text:find("easy", 1, true) then return "easy" end
  return nil
end

-- plan(req, ctx) -> plan | nil, message, status, code
-- req: model (the client's name), doc (decoded body), stream, tenant, headers
-- ctx: model (its config entry), health(provider) -> breaker state, count_tokens() -> n
function M.plan(req, ctx)
  local m = ctx.model
  if m.max_input_tokens then
    local n = ctx.count_tokens()
    if n and n > m.max_input_tokens then
      return nil, string.format("the prompt has %d tokens, more than this model's limit of %d",
        n, m.max_input_tokens), 400, "context_length_exceeded"
    end
  end
  local tiers = router.weighted_order(m.route)
  local level
  if m.easy_route then
    -- a small fast model decides when one is configured; the local heuristic otherwise
    if m.triage_model and ctx.ask then level = M.triage_with_model(req.doc, m.triage_model, ctx) end
    level = level or M.triage(req.doc)
    if level == "easy" then
      -- the cheap tiers first; the configured route stays behind them as the escalation
      local easy = router.weighted_order(m.easy_route)
      for i = 1, #tiers do easy[#easy + 1] = tiers[i] end
      tiers = easy
    end
  end
  if m.max_cost then
    -- cost cap: drop the tiers whose worst case (the prompt plus every output token the request
    -- may ask for) would cost more than the cap; prices are USD per million tokens
    local n_in = ctx.count_tokens() or 0
    local doc = req.doc
    local n_out = tonumber(doc.max_completion_tokens) or tonumber(doc.max_tokens) or m.max_output_tokens or 4096
    if m.max_output_tokens and n_out > m.max_output_tokens then n_out = m.max_output_tokens end
    local kept, cheapest = {}, nil
    for i = 1, #tiers do
      local t = tiers[i]
      local price = t.price
      local cost = price and ((n_in * (price.input or 0) + n_out * (price.output or 0)) / 1e6) or 0
      if cost <= m.max_cost then kept[#kept + 1] = t end
      if not cheapest or cost < cheapest then cheapest = cost end
    end
    if #kept == 0 then
      return nil, string.format("this request may cost up to $%.4f, over this model's limit of $%.4f " ..
        "(lower max_tokens or shorten the prompt)", cheapest or 0, m.max_cost), 400, "cost_limit_exceeded"
    end
    tiers = kept
  end
  return {
    tiers = tiers,
    deadline = m.deadline,
    degrade = m.degrade,
    max_output_tokens = m.max_output_tokens,
    triage = level,
  }
end

return M
