-- The extractive provider: answers from the conversation with citations, in OpenAI's shapes
-- (completion and stream), and says plainly when it has nothing to answer from.
local extractive = require "moongate.providers.extractive"
local json = require "moongate.json"

local CONV = {
  { role = "system", content = "The office opens at 9am. Parking is free on weekends. The cafeteria serves lunch from noon." },
  { role = "user", content = "When does the office open?" },
}

describe("providers.extractive", function()
  local p = extractive.new("extractive", {})

  it("answers the last user message from the earlier messages, with citations", function()
    local r = assert(p:chat({ doc = { messages = CONV }, stream = false }, {}, 5))
    local doc = json.decode(r.body)
    assert.are.equal("chat.completion", doc.object)
    assert.are.equal("extractive", doc.model)
    local c = doc.choices[1]
    assert.are.equal("stop", c.finish_reason)
    assert.are.equal("assistant", c.message.role)
    assert.truthy(c.message.content:find("The office opens at 9am.", 1, true), c.message.content)
    assert.falsy(c.message.content:find("cafeteria", 1, true))
    assert.are.equal("messages[0]", doc.citations[1].source)
    assert.are.equal(doc.usage.prompt_tokens + doc.usage.completion_tokens, doc.usage.total_tokens)
  end)

  it("says plainly when there is nothing to answer from", function()
    local r = assert(p:chat({ doc = { messages = { { role = "user", content = "What is the capital of Peru?" } } } }, {}, 5))
    local doc = json.decode(r.body)
    assert.are.equal(extractive.NOTHING, doc.choices[1].message.content)
    assert.are.equal(0, #doc.citations)
  end)

  it("streams OpenAI chunks: role, text, finish, usage, [DONE]", function()
    local r = assert(p:chat({ doc = { messages = CONV }, stream = true }, {}, 5))
    local events, text = {}, {}
    while true do
      local d = r.events:next(1)
      if not d then break end
      events[#events + 1] = d
    end
    assert.are.equal("[DONE]", events[#events])
    local first = json.decode(events[1])
    assert.are.equal("chat.completion.chunk", first.object)
    assert.are.same({ role = "assistant", content = "" }, first.choices[1].delta)
    for i = 2, #events - 3 do text[#text + 1] = json.decode(events[i]).choices[1].delta.content end
    local whole = table.concat(text)
    assert.truthy(whole:find("The office opens at 9am.", 1, true), whole)
    assert.are.equal("stop", json.decode(events[#events - 2]).choices[1].finish_reason)
    local usage = json.decode(events[#events - 1])
    assert.are.equal(0, #usage.choices)
    assert.is_true(usage.usage.total_tokens > 0)
  end)

  it("has no embeddings and says so as a client error", function()
    local r, f = p:embeddings()
    assert.is_nil(r)
    assert.are.equal("client", f.kind)
    assert.are.equal(400, f.status)
  end)
end)
