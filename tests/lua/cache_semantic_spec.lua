-- moongate.cache.guards and moongate.cache.semantic: the guards' features, hits only within a
-- scope (tenant, system prompt, parameters), the threshold, TTL and size bounds, eviction when
-- an index's new version changes the documents an answer was built on (a real index on disk),
-- and precision/recall on tests/data/paraphrases.tsv at the default threshold.
local guards = require "moongate.cache.guards"
local semantic = require "moongate.cache.semantic"
local ev = require "moongate.cache.paraphrase_eval"
local retrieval = require "moongate.retrieval"
local moongate = require "moongate"

local HOME = require("moongate.base").home

local tmpdir = require "tmpdir"

local function ask(text, system)
  local m = {}
  if system then m[1] = { role = "system", content = system } end
  m[#m + 1] = { role = "user", content = text }
  return { model = "m", temperature = 0, messages = m }
end

describe("moongate.cache.guards", function()
  it("finds numbers (digits and words), dates, entities and negation", function()
    local f = guards.features('Is it not safe to run gpt-4o on two "blue box" hosts in Paris on May 5?')
    assert.equal("2|4|5", f.numbers)
    assert.equal("may", f.dates)
    assert.equal("gpt-4o|paris|q:blue box", f.entities)
    assert.is_true(f.negation)
    local g = guards.features("what is the capital of france")
    assert.same({ numbers = "", dates = "", entities = "", negation = false }, g)
  end)
  it("reads question words and verbs at the start as plain words, not names", function()
    assert.equal("", guards.features("What is this? How do I book it? Explain.").entities)
    assert.equal("", guards.features("you may go").dates)           -- the verb, not the month
  end)
  it("agrees only when every guard matches", function()
    local a = guards.features("How many days are in a leap year?")
    assert.is_true(guards.agree(a, guards.features("How many days does a leap year have?")))
    assert.same({ false, "numbers" }, { guards.agree(a, guards.features("How many days are in 2 leap years?")) })
    assert.same({ false, "negation" }, { guards.agree(guards.features("Is parking free?"),
      guards.features("Is parking not free?")) })
    assert.same({ false, "entities" }, { guards.agree(guards.features("Flights to London?"),
      guards.features("Flights to Dublin?")) })
    assert.same({ false, "dates" }, { guards.agree(guards.features("Open on Monday?"),
      guards.features("Open on Sunday?")) })
  end)
end)

describe("moongate.cache.semantic", function()
  local gw = { providers = {} }
  local function st(ns) return { ns = ns or "t1", context = { policy = "v1" } } end

  it("answers a paraphrase and refuses a look-alike", function()
    local c = semantic.new {}
    local p = assert(c:lookup(ask("How do I reset my password?"), st(), gw, 0))
    assert.is_nil(p.entry)
    c:store(p, "stored answer", {})
    local hit = c:lookup(ask("What is the way to reset my password?"), st(), gw, 0)
    assert.equal("stored answer", hit.entry)
    assert.is_true(hit.similarity >= semantic.THRESHOLD)
    assert.is_nil(c:lookup(ask("How do I not reset my password?"), st(), gw, 0).entry)
  end)
  it("never answers across tenants, system prompts, generations or parameters", function()
    local c = semantic.new {}
    local q = "How do I reset my password?"
    c:store(assert(c:lookup(ask(q, "be brief"), st("a"), gw, 0)), "A's answer", {})
    assert.equal("A's answer", c:lookup(ask(q, "be brief"), st("a"), gw, 0).entry)
    assert.is_nil(c:lookup(ask(q, "be brief"), st("b"), gw, 0).entry)
    assert.is_nil(c:lookup(ask(q, "be verbose"), st("a"), gw, 0).entry)
    assert.is_nil(c:lookup(ask(q), st("a"), gw, 0).entry)
    assert.is_nil(c:lookup(ask(q, "be brief"), st("a"), gw, 1).entry)   -- after a flush
    local d = ask(q, "be brief"); d.max_tokens = 10
    assert.is_nil(c:lookup(d, st("a"), gw, 0).entry)
    local other = { ns = "a", context = { policy = "v2" } }
    assert.is_nil(c:lookup(ask(q, "be brief"), other, gw, 0).entry)
    assert.equal(1, c:flush("a"))
    assert.is_nil(c:lookup(ask(q, "be brief"), st("a"), gw, 0).entry)
  end)
  it("looks up only a single question", function()
    local c = semantic.new {}
    local conv = { model = "m", messages = { { role = "user", content = "hi" }, { role = "assistant", content = "hello" },
      { role = "user", content = "How do I reset my password?" } } }
    assert.is_nil(c:lookup(conv, st(), gw, 0))
    assert.is_nil(c:lookup(ask("???"), st(), gw, 0))
    assert.is_nil(c:lookup(ask("zxqv wqzx"), st(), gw, 0))   -- no known word: no vector to compare
  end)
  it("bypasses, never fails, when its embedder cannot load", function()
    local c = semantic.new { embedder = { kind = "glove", path = "/nonexistent/embeddings.bin" } }
    assert.is_nil(c:lookup(ask("Who wrote Hamlet?"), st(), gw, 0))
    assert.is_nil(c:lookup(ask("Who wrote Hamlet?"), st(), gw, 0))
  end)
  it("keeps at most max_entries, the oldest going first, and honours the TTL", function()
    local c = semantic.new { max_entries = 2 }
    for _, q in ipairs({ "What is the capital of France?", "Who wrote Hamlet?", "Why is the sky blue?" }) do
      c:store(assert(c:lookup(ask(q), st(), gw, 0)), q, {})
    end
    assert.equal(2, c:stats().entries)
    assert.is_nil(c:lookup(ask("Which city is the capital of France?"), st(), gw, 0).entry)
    assert.equal("Who wrote Hamlet?", c:lookup(ask("Who is the author of Hamlet?"), st(), gw, 0).entry)
    local t = semantic.new { ttl = 0.05 }
    t:store(assert(t:lookup(ask("Who wrote Hamlet?"), st(), gw, 0)), "x", {})
    local deadline = moongate.now() + 0.08
    repeat moongate.sleep(0.01) until moongate.now() >= deadline
    assert.is_nil(t:lookup(ask("Who is the author of Hamlet?"), st(), gw, 0).entry)
    assert.equal(0, t:stats().entries)
  end)
  it("evicts the entries built on a re-indexed document and nothing else", function()
    local src, dir = tmpdir(), tmpdir()
    local function write(name, text)
      local f = assert(io.open(src .. "/" .. name, "wb")); f:write(text); f:close()
    end
    write("tea.md", "# Tea\n\nSteep green tea for two minutes.")
    write("bread.md", "# Bread\n\nBake bread for forty minutes.")
    assert(retrieval.index(dir, { src }))
    local igw = { providers = { ex = { index = dir } } }
    local s = { ns = "t", context = {}, tiers = { { provider = "ex" } } }
    local c = semantic.new {}
    c:store(assert(c:lookup(ask("How long do I steep green tea?"), s, igw, 0)), "tea answer",
      { citations = { { doc_id = src .. "/tea.md" } } })
    c:store(assert(c:lookup(ask("How long do I bake bread?"), s, igw, 0)), "bread answer",
      { citations = { { doc_id = src .. "/bread.md" } } })
    assert.equal("tea answer", c:lookup(ask("How long should I steep green tea?"), s, igw, 0).entry)

    write("tea.md", "# Tea\n\nSteep green tea for three minutes.")
    assert.equal(2, assert(retrieval.index(dir, { src })).version)
    assert.is_nil(c:lookup(ask("How long should I steep green tea?"), s, igw, 0).entry)
    assert.equal("bread answer", c:lookup(ask("How long should I bake bread?"), s, igw, 0).entry)
    assert.equal(1, c:stats().entries)

    -- a version that adds a document may have a better source for any question: all go
    write("jam.md", "# Jam\n\nJam keeps for a year.")
    assert(retrieval.index(dir, { src }))
    assert.is_nil(c:lookup(ask("How long should I bake bread?"), s, igw, 0).entry)
    assert.equal(0, c:stats().entries)
  end)
end)

describe("semantic cache precision on tests/data/paraphrases.tsv", function()
  local list = ev.load(HOME .. "/tests/data/paraphrases.tsv")
  it("holds 306 labelled pairs", function()
    assert.equal(306, #list)
  end)
  it("at the default threshold: 138 correct hits, 1 wrong hit (an antonym), 15 misses", function()
    local r = ev.run(list, { threshold = semantic.THRESHOLD })
    assert.same({ 138, 1, 15, 152 }, { r.correct, r.wrong, r.missed, r.rejected })
    assert.same({ antonym = 1 }, r.wrong_by_kind)
  end)
  it("without the guards the same threshold answers 131 look-alikes wrongly", function()
    local r = ev.run(list, { threshold = semantic.THRESHOLD, guards = false })
    assert.same({ 138, 131, 15 }, { r.correct, r.wrong, r.missed })
  end)
end)
