-- Tools: declaration checks, per-call timeouts, idempotency keys, and the tool-call loop's cap.
local tools = require "moongate.tools"
local json = require "moongate.json"
local mg = require "moongate"

local function counter_tool(idempotent, delay)
  local t = { name = "bump", parameters = { type = "object" }, timeout = 0.2, idempotent = idempotent, runs = 0 }
  t.run = function(args)
    if delay then mg.sleep(delay) end
    t.runs = t.runs + 1
    return { n = t.runs, by = args.by }
  end
  return t
end

local function completion(msg, finish)
  return { object = "chat.completion", choices = { { index = 0, message = msg, finish_reason = finish or "stop" } } }
end

describe("tools", function()
  it("checks what a plugin declares", function()
    assert.is_true(tools.validate(counter_tool(true)))
    assert.are.same({ nil, "a tool needs a name of letters, digits, _ or -" }, { tools.validate({ name = "a b" }) })
    assert.are.same({ nil, "tool x: run(args, ctx) is missing" }, { tools.validate({ name = "x", parameters = {} }) })
    assert.are.same({ nil, "tool x: timeout must be a positive number of seconds" },
      { tools.validate({ name = "x", parameters = {}, run = print, timeout = 0 }) })
  end)

  it("loads the shipped plugins and describes them in OpenAI's shape", function()
    local calc = assert(tools.load("calc"))
    local clock = assert(tools.load("clock"))
    local defs = tools.definitions({ calc, clock })
    assert.are.equal("function", defs[1].type)
    assert.are.equal("calc", defs[1]["function"].name)
    assert.are.same({ "expression" }, defs[1]["function"].parameters.required)
    assert.are.equal('{"result":14}', (tools.call(calc, '{"expression":"2 + 3 * 4"}')))
    assert.are.equal('{"result":20}', (tools.call(calc, '{"expression":"(2+3)*4"}')))
    assert.are.same({ nil, "division by zero" }, { tools.call(calc, '{"expression":"1/0"}') })
    assert.truthy(tools.call(clock, "{}"):match('^{"utc":"%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ"}$'))
    assert.are.same({ nil, "no tool nope" }, { tools.load("nope") })
  end)

  it("a call past its timeout fails with timeout", function()
    local t = counter_tool(true, 1)
    local t0 = mg.now()
    assert.are.same({ nil, "timeout" }, { tools.call(t, "{}") })
    assert.is_true(mg.now() - t0 < 0.5)
    assert.are.equal(0, t.runs)
  end)

  it("rejects arguments that are not a JSON object", function()
    assert.are.same({ nil, "invalid arguments: not a JSON object" }, { tools.call(counter_tool(true), "[1]") })
  end)

  it("a repeated call with the same idempotency key does not run again", function()
    local t = counter_tool(false)
    local key = "req-" .. tostring(mg.now())
    local function call(k)
      local r, cached = tools.call(t, '{"by":2}', k)
      return { json.decode(r), cached }
    end
    assert.are.same({ { by = 2, n = 1 }, false }, call(key))
    assert.are.same({ { by = 2, n = 1 }, true }, call(key))
    assert.are.equal(1, t.runs)
    assert.are.same({ { by = 2, n = 2 }, false }, call(key .. "-other"))
  end)

  it("a concurrent duplicate of a non-idempotent call waits for the first one's result", function()
    local t = counter_tool(false, 0.05)
    local key = "conc-" .. tostring(mg.now())
    local h1 = mg.spawn(function() return tools.call(t, "{}", key) end)
    local h2 = mg.spawn(function() return tools.call(t, "{}", key) end)
    local r1 = h1:wait()
    local r2 = h2:wait()
    assert.are.equal(r1, r2)
    assert.are.equal(1, t.runs)
  end)

  it("the loop runs tool calls and feeds the results back until the model answers", function()
    local calc = assert(tools.load("calc"))
    local seen = {}
    local turn = 0
    local doc, n = tools.loop{
      tools = { calc }, messages = { { role = "user", content = "what is 6*7?" } },
      call_model = function(messages)
        turn = turn + 1
        seen[turn] = #messages
        if turn == 1 then
          return completion({ role = "assistant", content = json.null, tool_calls = {
            { id = "call_1", type = "function", ["function"] = { name = "calc", arguments = '{"expression":"6*7"}' } } } }, "tool_calls")
        end
        assert.are.same({ role = "tool", tool_call_id = "call_1", content = '{"result":42}' }, messages[3])
        return completion({ role = "assistant", content = "42" })
      end,
    }
    assert.are.equal("42", doc.choices[1].message.content)
    assert.are.equal(1, n)
    assert.are.same({ 1, 3 }, seen)
  end)

  it("a request retried with the same key repeats no side effect, whatever the call ids", function()
    local t = counter_tool(false)
    local key = "idem-" .. tostring(mg.now())
    local function run(call_id)
      local turn = 0
      return tools.loop{ tools = { t }, messages = { { role = "user", content = "bump" } }, key = key,
        call_model = function(messages)
          turn = turn + 1
          if turn == 1 then
            return completion({ role = "assistant", tool_calls = {
              { id = call_id, type = "function", ["function"] = { name = "bump", arguments = '{"by":1}' } } } }, "tool_calls")
          end
          return completion({ role = "assistant", content = messages[#messages].content })
        end }
    end
    local a = run("call_abc")
    local b = run("call_xyz")
    assert.are.equal(1, t.runs)
    assert.are.equal(a.choices[1].message.content, b.choices[1].message.content)
  end)

  it("stops at the iteration cap", function()
    local calc = assert(tools.load("calc"))
    local calls = 0
    local doc, err = tools.loop{
      tools = { calc }, messages = {}, max_iterations = 3,
      call_model = function()
        calls = calls + 1
        return completion({ role = "assistant", tool_calls = {
          { id = "c" .. calls, type = "function", ["function"] = { name = "calc", arguments = '{"expression":"1"}' } } } }, "tool_calls")
      end,
    }
    assert.is_nil(doc)
    assert.are.equal("tool loop limit", err)
    assert.are.equal(4, calls)
  end)

  it("hands a call to a tool it does not have back to the client", function()
    local doc, n = tools.loop{
      tools = {}, messages = {},
      call_model = function()
        return completion({ role = "assistant", tool_calls = {
          { id = "c", type = "function", ["function"] = { name = "client_side", arguments = "{}" } } } }, "tool_calls")
      end,
    }
    assert.are.equal("client_side", doc.choices[1].message.tool_calls[1]["function"].name)
    assert.are.equal(0, n)
  end)
end)
