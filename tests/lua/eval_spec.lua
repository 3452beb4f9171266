-- moongate.eval: golden-set cases in both shapes, the scorers, the schema subset and the paired
-- bootstrap, on exact values.
local golden = require "moongate.eval.golden"
local scorers = require "moongate.eval.scorers"
local schema = require "moongate.eval.schema"
local stats = require "moongate.eval.stats"
local summary = require "moongate.eval.summary"

describe("eval.golden", function()
  it("reads the full shape", function()
    local c = assert(golden.case { id = 7, messages = { { role = "system", content = "be brief" },
      { role = "user", content = "What is X?" } }, expect = { contains = "x is", regex = "^X" },
      citations = { "a.md", "b.md" }, tags = { "t1" } })
    assert.equal("7", c.id)
    assert.equal("What is X?", c.question)
    assert.same({ "x is" }, c.expect.contains)
    assert.equal("^X", c.expect.regex)
    assert.same({ { doc = "a.md" }, { doc = "b.md" } }, c.citations)
    assert.same({ "t1" }, c.tags)
  end)

  it("reads the docs golden set's shape as contains + citation", function()
    local c = assert(golden.case { id = "q1", question = "How?", doc = "docs/flags.md", section = "Evaluation",
      key = "first rule that applies", tags = { "flags" } })
    assert.same({ "first rule that applies" }, c.expect.contains)
    assert.same({ { doc = "docs/flags.md", section = "Evaluation" } }, c.citations)
  end)

  it("refuses bad cases with a reason", function()
    local function why(t) return select(2, golden.case(t)) end
    assert.equal("id must be a non-empty string", why { question = "q" })
    assert.equal("a case needs a question or messages", why { id = "a" })
    assert.equal("expect: unknown kind 'fuzzy' (expected exact, contains, regex, schema)",
      why { id = "a", question = "q", expect = { fuzzy = 1 } })
    assert.equal("expect.regex: malformed pattern (missing ']')", why { id = "a", question = "q", expect = { regex = "[a" } })
    assert.equal("expect.schema: schema: unsupported keyword 'oneOf'",
      why { id = "a", question = "q", expect = { schema = { oneOf = {} } } })
    assert.equal("section needs doc", why { id = "a", question = "q", section = "S" })
    assert.equal("unknown field 'anwser' (expected id, question or messages, expect, citations, tags)",
      why { id = "a", question = "q", anwser = "x" })
  end)
end)

describe("eval.scorers", function()
  it("scores correctness by every expectation", function()
    assert.equal(1, scorers.correctness("Use `moongate index`  now.", { contains = { "moongate index now" } }))
    local v, why = scorers.correctness("no", { contains = { "yes" } })
    assert.equal(0, v)
    assert.equal('does not contain "yes"', why)
    assert.equal(1, scorers.correctness(" 42 ", { exact = "42" }))
    assert.equal(0, (scorers.correctness("42", { regex = "^%a+$" })))
    assert.equal(1, scorers.correctness('{"answer":"x","n":2}', { schema = { type = "object", required = { "answer" },
      properties = { answer = { type = "string" }, n = { type = "integer" } } } }))
    v, why = scorers.correctness('{"n":"2"}', { schema = { type = "object", properties = { n = { type = "integer" } } } })
    assert.equal(0, v)
    assert.equal("$.n: expected integer, got string", why)
    assert.is_nil(scorers.correctness("anything", {}))
  end)

  it("scores citations: precision over what was cited, recall over what was expected", function()
    local cited = { { doc_id = "docs/a.md", heading = { "A", "Install" } }, { doc_id = "docs/b.md" } }
    local p, r = scorers.citations(cited, { { doc = "a.md" }, { doc = "c.md" } })
    assert.equal(0.5, p)
    assert.equal(0.5, r)
    p, r = scorers.citations(cited, { { doc = "a.md", section = "Install" }, { doc = "b.md" } })
    assert.same({ 1, 1 }, { p, r })
    p, r = scorers.citations(cited, { { doc = "a.md", section = "Usage" } })
    assert.same({ 0, 0 }, { p, r })
    p, r = scorers.citations({}, {})
    assert.same({ 1, 1 }, { p, r })
    assert.is_nil(scorers.citations(cited, nil))
  end)

  it("checks the format: [n] markers point at returned citations", function()
    assert.equal(1, scorers.format("Yes [1].", { { n = 1 } }, {}))
    local v, why = scorers.format("Yes [2].", { { n = 1 } }, {})
    assert.equal(0, v)
    assert.equal("cites [2], which it does not return", why)
    assert.equal(0, (scorers.format("  ", {}, {})))
  end)

  it("measures groundedness as supported sentences", function()
    local snippets = { "Tomatoes need deep watering twice a week in summer." }
    assert.equal(1, scorers.groundedness("Tomatoes need watering twice a week [1].", snippets))
    assert.equal(0.5, scorers.groundedness("Tomatoes need watering twice a week. Roses like acid granite soil.", snippets))
  end)
end)

describe("eval.schema", function()
  it("validates the subset", function()
    local s = { type = "object", required = { "a" }, additionalProperties = false,
                properties = { a = { type = "array", items = { type = "string", enum = { "x", "y" } } } } }
    assert.is_true(schema.validate({ a = { "x", "y" } }, s))
    assert.same({ nil, "$.a[1]: not one of the allowed values" }, { schema.validate({ a = { "x", "z" } }, s) })
    assert.same({ nil, "$: missing required property 'a'" }, { schema.validate({}, s) })
    assert.same({ nil, "$: unexpected property 'b'" }, { schema.validate({ a = {}, b = 1 }, s) })
  end)
end)

describe("eval.stats", function()
  it("gives nearest-rank percentiles", function()
    local xs = {}
    for i = 1, 100 do xs[i] = 101 - i end
    assert.equal(50, stats.percentile(xs, 50))
    assert.equal(95, stats.percentile(xs, 95))
    assert.equal(100, stats.percentile(xs, 100))
  end)

  it("gives the same paired bootstrap interval on every run", function()
    local a, b = {}, {}
    for i = 1, 20 do a[i] = 1; b[i] = i <= 5 and 0 or 1 end
    local r1, r2 = stats.paired_bootstrap(a, b), stats.paired_bootstrap(a, b)
    assert.equal(-0.25, r1.diff)
    assert.same(r1, r2)
    assert.is_true(r1.low < -0.25 and r1.high > -0.25 and r1.high <= 0)
    local same = stats.paired_bootstrap(a, a)
    assert.same({ 0, 0, 0 }, { same.diff, same.low, same.high })
  end)
end)

describe("eval.summary.compare", function()
  local function results(scores)
    local out = {}
    for i, v in ipairs(scores) do out[i] = { id = "c" .. i, scores = { correctness = v }, latency_ms = 10 * i, cost = 0 } end
    return out
  end
  it("flags a drop beyond the threshold and says why", function()
    local c = summary.compare(results { 1, 1, 1, 1 }, results { 1, 1, 1, 0 }, { max_regression = 0.1 })
    assert.is_true(c.regressed)
    assert.matches("^correctness fell from 1%.000 to 0%.750 %(%-0%.250", c.reasons[1])
    c = summary.compare(results { 1, 1, 1, 1 }, results { 1, 1, 1, 0 }, { correctness = 0.3 })
    assert.is_false(c.regressed)
  end)
end)

describe("eval.runner", function()
  local runner = require "moongate.eval.runner"
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. dir .. "/pipelines") == 0)
  local f = assert(io.open(dir .. "/pipelines/echo.lua", "wb"))
  f:write([[
return { answer = function(req)
  if req.question:find("boom") then error("exploded") end
  if req.question:find("nil") then return nil, "no index" end
  return { answer = "You asked: " .. req.question .. " [1]", citations = { { n = 1, id = 7, doc_id = "a.md" } },
           hits = { { id = 7, text = "You asked about tea." } } }
end }
]])
  f:close()

  it("resolves a name in the first folder that has it, with its content hash", function()
    local p = assert(runner.resolve("echo", { "/nonexistent", dir }))
    assert.equal(dir .. "/pipelines/echo.lua", p.path)
    assert.matches("^%x+$", p.version)
    assert.equal(16, #p.version)
    local q = assert(runner.resolve("echo@" .. p.version:sub(1, 6), { dir }))
    assert.equal(p.version:sub(1, 6), q.wanted)
    assert.equal("no pipeline 'nope' (looked for nope.lua in " .. dir .. "/pipelines)", select(2, runner.resolve("nope", { dir })))
  end)

  it("runs every case concurrently, scores them, and counts a failing case as 0", function()
    local g = { cases = {
      assert(golden.case { id = "ok", question = "tea?", expect = { contains = "tea" }, citations = { "a.md" } }),
      assert(golden.case { id = "boom", question = "boom?", expect = { contains = "x" } }),
      assert(golden.case { id = "nil", question = "nil?" }),
    } }
    local seen = {}
    local results = assert(runner.run(g, assert(runner.resolve("echo", { dir })),
      { concurrency = 2, progress = function(done, total, r) seen[#seen + 1] = done .. "/" .. total .. " " .. r.id end }))
    assert.equal(3, #seen)
    assert.same({ correctness = 1, citation_precision = 1, citation_recall = 1, format = 1, groundedness = 1 }, results[1].scores)
    assert.matches("exploded", results[2].error)
    assert.equal(0, results[2].scores.correctness)
    assert.equal("no index", results[3].error)
    local s = summary.of(results)
    assert.same({ 3, 2 }, { s.cases, s.errors })
    assert.equal(1 / 3, s.scores.correctness)
  end)
end)
