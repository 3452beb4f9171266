-- Request body edits: the client's bytes are kept except for the top-level fields moongate sets.
local body = require "moongate.gateway.body"
local json = require "moongate.json"

local function rw(raw, set)
  return body.rewrite(raw, assert(json.decode(raw)), set)
end

describe("gateway.body.rewrite", function()
  it("splices the model name in place, keeping every other byte", function()
    local raw = '{ "model" : "default", "messages":[{"role":"user","content":"say \\"model\\": \\"x\\""}], "seed": 9007199254740993 }'
    local out = rw(raw, { model = "gpt-4o-mini" })
    assert.are.equal('{ "model" : "gpt-4o-mini", "messages":[{"role":"user","content":"say \\"model\\": \\"x\\""}], "seed": 9007199254740993 }', out)
  end)

  it("leaves the body untouched when nothing changes", function()
    local raw = '{"model":"m","messages":[]}'
    assert.are.equal(raw, rw(raw, { model = "m" }))
  end)

  it("inserts absent fields after the opening brace", function()
    local raw = '{"model":"a","stream":true}'
    assert.are.equal('{"stream_options":{"include_usage":true},"model":"b","stream":true}',
      rw(raw, { model = "b", stream_options = { include_usage = true } }))
    assert.are.equal('{"max_tokens":5}', rw('{}', { max_tokens = 5 }))
  end)

  it("re-encodes when a field must change in place", function()
    local out = rw('{"model":"a","max_tokens":100}', { max_tokens = 10 })
    assert.are.same({ model = "a", max_tokens = 10 }, json.decode(out))
  end)

  it("re-encodes when model appears more than once (a nested object)", function()
    local out = rw('{"model":"a","metadata":{"model":"keep"}}', { model = "b" })
    local doc = json.decode(out)
    assert.are.equal("b", doc.model)
    assert.are.equal("keep", doc.metadata.model)
  end)

  it("escapes a model name that needs it", function()
    local out = rw('{"model":"a"}', { model = 'we"ird' })
    assert.are.equal('we"ird', json.decode(out).model)
  end)
end)
