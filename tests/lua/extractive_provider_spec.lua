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

  it("embeds offline: unit vectors, float or base64, similar texts closer", function()
    local function embed(input, format)
      local r, f = p:embeddings({ doc = { model = "x", input = input, encoding_format = format } })
      assert.is_nil(f)
      return json.decode(r.body)
    end
    local out = embed({ "the cat sat on the mat", "a cat was sitting on a rug", "quarterly tax filing deadline" })
    assert.are.equal("list", out.object)
    assert.are.equal(3, #out.data)
    assert.are.equal(2, out.data[3].index)
    local v = {}
    for i = 1, 3 do v[i] = out.data[i].embedding end
    local dim = #v[1]
    assert.is_true(dim >= 64)
    local function dot(a, b) local s = 0 for i = 1, dim do s = s + a[i] * b[i] end return s end
    assert.is_true(math.abs(dot(v[1], v[1]) - 1) < 1e-4)
    assert.is_true(dot(v[1], v[2]) > dot(v[1], v[3]))
    assert.are.equal(out.usage.prompt_tokens, out.usage.total_tokens)
    assert.is_true(out.usage.prompt_tokens > 0)
    -- base64 is the same float32 vector, little-endian
    local b = embed("the cat sat on the mat", "base64").data[1].embedding
    assert.are.equal("string", type(b))
    assert.are.equal(math.ceil(dim * 4 / 3) * 4, #b)
    assert.are.equal("AAAA", extractive.base64("\0\0\0"))
    assert.are.equal("YWI=", extractive.base64("ab"))
  end)

  it("refuses what it cannot embed, as a client error", function()
    local r, f = p:embeddings({ doc = { model = "x", input = { { 1, 2, 3 } } } })
    assert.is_nil(r)
    assert.are.same({ 400, "client", "input must be text: the extractive provider cannot read token arrays" },
      { f.status, f.kind, f.message })
    r, f = p:embeddings({ doc = { model = "x", input = "a", encoding_format = "int8" } })
    assert.are.equal('encoding_format must be "float" or "base64"', f.message)
  end)
end)
