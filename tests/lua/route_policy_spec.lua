-- The default routing policy (pipelines/route.lua): triage, easy tiers first, token caps.
local policy = dofile(require("moongate.base").home .. "/pipelines/route.lua")

local function user(text, extra)
  local d = { model = "m", messages = { { role = "user", content = text } } }
  for k, v in pairs(extra or {}) do d[k] = v end
  return d
end

local function ctx(model, tokens)
  return { model = model, count_tokens = function() return tokens or 10 end, health = function() return { state = "closed" } end }
end

local MODEL = {
  route = { { provider = "big", model = "gpt-4o", timeout = 5 } },
  easy_route = { { provider = "small", model = "gpt-4o-mini", timeout = 2 } },
  deadline = 10, max_output_tokens = 256,
}

local function providers(plan)
  local out = {}
  for i, t in ipairs(plan.tiers) do out[i] = t.provider end
  return out
end

describe("pipelines/route.lua", function()
  it("triages short plain questions as easy", function()
    assert.are.equal("easy", policy.triage(user("What is the capital of France?")))
    assert.are.equal("easy", policy.triage(user("Translate 'good morning' to Spanish")))
  end)

  it("triages long, technical, multi-turn or tool-using requests as hard", function()
    assert.are.equal("hard", policy.triage(user(string.rep("word ", 300))))
    assert.are.equal("hard", policy.triage(user("Explain why the sky is blue, step by step")))
    assert.are.equal("hard", policy.triage(user("Fix this:\n```lua\nprint(1\n```")))
    assert.are.equal("hard", policy.triage(user("hi", { tools = { {} } })))
    assert.are.equal("hard", policy.triage(user("hi", { response_format = { type = "json_object" } })))
    local d = user("hi")
    for i = 1, 7 do d.messages[#d.messages + 1] = { role = "user", content = "more " .. i } end
    assert.are.equal("hard", policy.triage(d))
  end)

  it("reads text parts as text; an image part is hard", function()
    local parts = { { type = "text", text = "What is the capital" }, { type = "text", text = "of France?" } }
    assert.are.equal("easy", policy.triage(user(parts)))
    assert.are.equal("hard", policy.triage(user({ { type = "text", text = "Explain why" }, { type = "text", text = "step by step" } })))
    assert.are.equal("hard", policy.triage(user({ { type = "text", text = "What is this?" },
                                                  { type = "image_url", image_url = { url = "https://x/y.png" } } })))
  end)

  it("sends easy requests to the cheap tiers first, the configured route behind them", function()
    local plan = policy.plan({ model = "m", doc = user("What is 2+2?") }, ctx(MODEL))
    assert.are.same({ "small", "big" }, providers(plan))
    assert.are.equal("easy", plan.triage)
    assert.are.equal(10, plan.deadline)
    assert.are.equal(256, plan.max_output_tokens)
  end)

  it("sends hard requests straight to the configured route", function()
    local plan = policy.plan({ model = "m", doc = user("Design a sharded database architecture") }, ctx(MODEL))
    assert.are.same({ "big" }, providers(plan))
    assert.are.equal("hard", plan.triage)
  end)

  it("without easy tiers, no triage: the route as configured", function()
    local plan = policy.plan({ model = "m", doc = user("hi") }, ctx({ route = MODEL.route }))
    assert.are.same({ "big" }, providers(plan))
    assert.is_nil(plan.triage)
  end)

  it("asks the triage model when one is configured, the heuristic when it has no usable answer", function()
    local m = { route = MODEL.route, easy_route = MODEL.easy_route,
                triage_model = { provider = "tiny", model = "tiny-1", timeout = 0.5 } }
    local asked
    local c = ctx(m)
    c.ask = function(tier, messages, budget)
      asked = { tier.provider, messages[2].content, budget }
      return "Hard."
    end
    local plan = policy.plan({ model = "m", doc = user("What is 2+2?") }, c)
    assert.are.same({ "tiny", "What is 2+2?", 0.5 }, asked)
    assert.are.equal("hard", plan.triage)
    assert.are.same({ "big" }, providers(plan))
    c.ask = function() return nil, "timeout" end
    assert.are.equal("easy", policy.plan({ model = "m", doc = user("What is 2+2?") }, c).triage)
    c.ask = function() return "I cannot say" end
    assert.are.equal("hard", policy.plan({ model = "m", doc = user("Explain why, step by step") }, c).triage)
  end)

  it("a cost cap drops the tiers whose worst case costs too much, and refuses when none is left", function()
    local m = { max_cost = 0.01, max_output_tokens = 1000, route = {
      { provider = "big", price = { input = 5, output = 15 } },      -- 1000*5/1e6 + 1000*15/1e6 = 0.02
      { provider = "small", price = { input = 0.15, output = 0.6 } },
      { provider = "free" } } }
    local plan = policy.plan({ model = "m", doc = user("x", { max_tokens = 5000 }) }, ctx(m, 1000))
    assert.are.same({ "small", "free" }, providers(plan))
    -- a small max_tokens brings the big tier under the cap: 1000*5/1e6 + 100*15/1e6 = 0.0065
    plan = policy.plan({ model = "m", doc = user("x", { max_tokens = 100 }) }, ctx(m, 1000))
    assert.are.same({ "big", "small", "free" }, providers(plan))
    local only_big = { max_cost = 0.01, max_output_tokens = 1000, route = { m.route[1] } }
    local p2, msg, status, code = policy.plan({ model = "m", doc = user("x") }, ctx(only_big, 1000))
    assert.is_nil(p2)
    assert.are.equal("this request may cost up to $0.0200, over this model's limit of $0.0100 " ..
      "(lower max_tokens or shorten the prompt)", msg)
    assert.are.same({ 400, "cost_limit_exceeded" }, { status, code })
  end)

  it("refuses prompts over max_input_tokens with 400 context_length_exceeded", function()
    local m = { route = MODEL.route, max_input_tokens = 100 }
    local plan, msg, status, code = policy.plan({ model = "m", doc = user("x") }, ctx(m, 101))
    assert.is_nil(plan)
    assert.are.equal("the prompt has 101 tokens, more than this model's limit of 100", msg)
    assert.are.equal(400, status)
    assert.are.equal("context_length_exceeded", code)
    assert.truthy(policy.plan({ model = "m", doc = user("x") }, ctx(m, 100)))
  end)
end)
