-- The Anthropic adapter's translations: chat completions -> /v1/messages, and the answer and its
-- stream events back into OpenAI's shapes.
local anthropic = require "moongate.providers.anthropic"
local json = require "moongate.json"

describe("anthropic.to_messages", function()
  it("moves system prompts out, merges tool results, maps tools and stops", function()
    local doc = assert(json.decode([[{
      "model": "claude", "max_tokens": 100, "temperature": 0.2, "stop": "END", "user": "u1",
      "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "weather in Paris and Rome?"},
        {"role": "assistant", "content": null, "tool_calls": [
          {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}},
          {"id": "call_2", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Rome\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "call_2", "content": "rain"}
      ],
      "tools": [{"type": "function", "function": {"name": "weather", "description": "w",
                 "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
      "tool_choice": "required"
    }]]))
    local a = anthropic.to_messages(doc)
    assert.are.equal("be brief", a.system)
    assert.are.equal(100, a.max_tokens)
    assert.are.equal(0.2, a.temperature)
    assert.are.same({ "END" }, a.stop_sequences)
    assert.are.same({ user_id = "u1" }, a.metadata)
    assert.are.same({ type = "any" }, a.tool_choice)
    assert.are.equal(3, #a.messages)
    assert.are.same({ role = "user", content = { { type = "text", text = "weather in Paris and Rome?" } } }, a.messages[1])
    assert.are.equal("assistant", a.messages[2].role)
    assert.are.same({ type = "tool_use", id = "call_1", name = "weather", input = { city = "Paris" } },
      a.messages[2].content[1])
    assert.are.equal("call_2", a.messages[2].content[2].id)
    assert.are.same({ role = "user", content = {
      { type = "tool_result", tool_use_id = "call_1", content = "sunny" },
      { type = "tool_result", tool_use_id = "call_2", content = "rain" } } }, a.messages[3])
    assert.are.equal("weather", a.tools[1].name)
    assert.are.equal("w", a.tools[1].description)
    assert.are.equal("object", a.tools[1].input_schema.type)
    -- the wire form is what Anthropic expects
    local wire = json.encode(a)
    assert.truthy(wire:find('"input_schema":{', 1, true))
  end)

  it("defaults max_tokens and maps image parts", function()
    local a = anthropic.to_messages({ messages = { { role = "user", content = {
      { type = "text", text = "what is this?" },
      { type = "image_url", image_url = { url = "data:image/png;base64,AAAA" } } } } } }, 512)
    assert.are.equal(512, a.max_tokens)
    assert.are.same({ type = "image", source = { type = "base64", media_type = "image/png", data = "AAAA" } },
      a.messages[1].content[2])
    assert.is_nil(a.system)
  end)
end)

describe("anthropic.from_message", function()
  it("turns text and tool_use blocks into an OpenAI completion", function()
    local out = anthropic.from_message(assert(json.decode([[{
      "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
      "content": [{"type": "text", "text": "Let me check."},
                  {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}}],
      "stop_reason": "tool_use", "usage": {"input_tokens": 12, "output_tokens": 7}}]])))
    assert.are.equal("chatcmpl-msg_1", out.id)
    assert.are.equal("chat.completion", out.object)
    assert.are.equal("claude-x", out.model)
    local c = out.choices[1]
    assert.are.equal("tool_calls", c.finish_reason)
    assert.are.equal("Let me check.", c.message.content)
    assert.are.same({ id = "toolu_1", type = "function",
      ["function"] = { name = "weather", arguments = '{"city":"Paris"}' } }, c.message.tool_calls[1])
    assert.are.same({ prompt_tokens = 12, completion_tokens = 7, total_tokens = 19 }, out.usage)
  end)

  it("maps stop reasons", function()
    local out = anthropic.from_message({ content = { { type = "text", text = "x" } }, stop_reason = "max_tokens" })
    assert.are.equal("length", out.choices[1].finish_reason)
  end)
end)

describe("anthropic stream events", function()
  local function reader(events)
    local i = 0
    return { next = function() i = i + 1; return events[i] end, close = function() end }
  end

  it("translate into OpenAI chunks, usage last, then [DONE]", function()
    local evs = anthropic.events(reader{
      '{"type":"message_start","message":{"id":"msg_9","model":"claude-x","usage":{"input_tokens":5,"output_tokens":1}}}',
      '{"type":"ping"}',
      '{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}',
      '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}}',
      '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"lo"}}',
      '{"type":"content_block_stop","index":0}',
      '{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_2","name":"calc","input":{}}}',
      '{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\\"x\\":"}}',
      '{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"1}"}}',
      '{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":9}}',
      '{"type":"message_stop"}',
    })
    local out = {}
    while true do
      local d = evs:next(1)
      if not d then break end
      out[#out + 1] = d
    end
    assert.are.equal(9, #out)
    assert.are.equal("[DONE]", out[9])
    local c1 = json.decode(out[1])
    assert.are.equal("chatcmpl-msg_9", c1.id)
    assert.are.equal("claude-x", c1.model)
    assert.are.same({ role = "assistant", content = "" }, c1.choices[1].delta)
    assert.are.equal("Hel", json.decode(out[2]).choices[1].delta.content)
    assert.are.equal("lo", json.decode(out[3]).choices[1].delta.content)
    assert.are.same({ { index = 0, id = "toolu_2", type = "function", ["function"] = { name = "calc", arguments = "" } } },
      json.decode(out[4]).choices[1].delta.tool_calls)
    assert.are.equal('{"x":', json.decode(out[5]).choices[1].delta.tool_calls[1]["function"].arguments)
    assert.are.equal("1}", json.decode(out[6]).choices[1].delta.tool_calls[1]["function"].arguments)
    assert.are.equal("tool_calls", json.decode(out[7]).choices[1].finish_reason)
    local last = json.decode(out[8])
    assert.are.same({ prompt_tokens = 5, completion_tokens = 9, total_tokens = 14 }, last.usage)
    assert.are.equal(0, #last.choices)
    assert.is_nil(evs:next(1))
  end)

  it("an error event becomes an OpenAI error payload", function()
    local evs = anthropic.events(reader{ '{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}' })
    assert.are.same({ error = { type = "overloaded_error", message = "Overloaded" } }, json.decode(evs:next(1)))
  end)
end)
