-- The golden set of questions about the docs (tests/golden/docs.jsonl) stays true to the
-- docs: every section is a heading of its page and every key is verbatim prose under it.
local home = require("moongate.base").home
local golden = dofile(home .. "/tests/golden/golden_set.lua")

describe("golden set tests/golden/docs.jsonl", function()
  local cases = assert(golden.load(home .. "/tests/golden/docs.jsonl"))

  it("holds at least 70 questions over every page it names", function()
    assert.is_true(#cases >= 70, #cases .. " questions")
  end)

  it("matches the docs as they are", function()
    local problems = golden.check(cases, home .. "/docs")
    assert.are.equal("", table.concat(problems, "\n"))
  end)

  it("reports a key that left its section, a missing section and a missing page", function()
    local problems = golden.check({
      { id = "a", question = "q?", doc = "routing.md", section = "Circuit breakers", key = "One breaker per provider", line = 1 },
      { id = "b", question = "q?", doc = "routing.md", section = "Circuit breakers", key = "no such sentence", line = 2 },
      { id = "c", question = "q?", doc = "routing.md", section = "No such heading", key = "x", line = 3 },
      { id = "d", question = "q?", doc = "nowhere.md", section = "x", key = "x", line = 4 },
      { id = "a", question = "q?", doc = "routing.md", section = "Circuit breakers", key = "its state in", line = 5 },
    }, home .. "/docs")
    assert.are.same({
      'id b (line 2): key not in the prose of routing.md > Circuit breakers: "no such sentence"',
      'id c (line 3): section "No such heading" is not a heading of routing.md',
      "id d (line 4): nowhere.md: no such page",
      "id a (line 5): duplicate id",
    }, problems)
  end)

  it("does not take a key from a code block or a table", function()
    -- "moongate mock --listen 127.0.0.1:9001" is in the fenced block under "The gateway"
    local problems = golden.check({
      { id = "e", question = "q?", doc = "gateway.md", section = "The gateway", key = "moongate mock --listen 127.0.0.1:9001", line = 1 },
    }, home .. "/docs")
    assert.are.equal(1, #problems)
  end)
end)
