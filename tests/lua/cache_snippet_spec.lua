-- moongate.cache.snippet: re-ranker results reused for the same query over the same document
-- versions (the re-ranker is not called again, the order and scores are its own), a changed
-- document version misses, and an index's new version evicts exactly the entries built on the
-- documents it changed (a real index on disk, refreshed by a reader).
local snippet = require "moongate.cache.snippet"
local retrieval = require "moongate.retrieval"
local rerank = require "moongate.retrieval.rerank"

local tmpdir = require "tmpdir"

-- The local re-ranker, counting its calls.
local function counted()
  local rr = assert(rerank.new { kind = "local" })
  local calls = 0
  local inner = rr.rerank
  local wrapper = setmetatable({ calls = function() return calls end }, { __index = rr })
  wrapper.rerank = function(self, q, hits, ctx) calls = calls + 1; return inner(rr, q, hits, ctx) end
  return wrapper, function() return calls end
end

local function order(hits)
  local out = {}
  for i, h in ipairs(hits) do out[i] = h.doc_id:match("[^/]+$") .. string.format(":%.4f", h.score) end
  return table.concat(out, " ")
end

describe("moongate.cache.snippet", function()
  local src, dir, idx
  local function write(name, text)
    local f = assert(io.open(src .. "/" .. name, "wb")); f:write(text); f:close()
  end
  before_each(function()
    src, dir = tmpdir(), tmpdir()
    write("tea.md", "# Tea\n\nSteep green tea for two minutes. Black tea wants boiling water.")
    write("tea2.md", "# More tea\n\nGreen tea is steeped in water below boiling.")
    write("bread.md", "# Bread\n\nBake bread for forty minutes in a hot oven.")
    assert(retrieval.index(dir, { src }))
    idx = assert(retrieval.open(dir, { refresh_interval = 0 }))
  end)
  after_each(function()
    idx:close()
    snippet.configure(false)
  end)

  it("re-ranks a query over the same documents once, with the re-ranker's own order", function()
    local rr, calls = counted()
    local plain = assert(idx:search { query = "green tea water", k = 5, mode = "bm25", rerank = rr })
    assert.equal(1, calls())
    local c = snippet.configure({})
    local first = assert(idx:search { query = "green tea water", k = 5, mode = "bm25", rerank = rr })
    local again = assert(idx:search { query = "green tea water", k = 5, mode = "bm25", rerank = rr })
    assert.equal(2, calls())   -- plain, then the first cached one; not the second
    assert.equal(order(plain), order(first))
    assert.equal(order(plain), order(again))
    assert.same({ 1, 1, 1 }, { c.hits, c.misses, c:count() })
    assert(idx:search { query = "bread oven", k = 5, mode = "bm25", rerank = rr })
    assert.equal(3, calls())
  end)

  it("evicts on a new version exactly the entries built on a changed document", function()
    local rr, calls = counted()
    local c = snippet.configure({})
    assert(idx:search { query = "green tea water", k = 5, mode = "bm25", rerank = rr })
    assert(idx:search { query = "bread oven", k = 5, mode = "bm25", rerank = rr })
    assert.equal(2, c:count())
    write("tea.md", "# Tea\n\nSteep green tea for three minutes. Black tea wants boiling water.")
    assert.equal(2, assert(retrieval.index(dir, { src })).version)
    assert(idx:search { query = "bread oven", k = 5, mode = "bm25", rerank = rr })   -- refreshes
    assert.equal(2, calls())        -- bread's entry was kept: no new call
    assert.equal(1, c:count())      -- tea's entry went with the new version
    local hits = assert(idx:search { query = "green tea water", k = 5, mode = "bm25", rerank = rr })
    assert.equal(3, calls())
    assert.truthy(hits[1].text:find("three minutes", 1, true) or hits[2].text:find("three minutes", 1, true))
  end)

  it("keys on each document's version: a changed document never reuses an entry", function()
    local rr = assert(rerank.new { kind = "local" })
    local hits = { { id = 1, doc_id = "a", score = 1, scores = {}, text = "x", metadata = { version = 1 } } }
    local moved = { { id = 1, doc_id = "a", score = 1, scores = {}, text = "x", metadata = { version = 2 } } }
    assert.are_not.equal(snippet.key(rr, "q", hits), snippet.key(rr, "q", moved))
    assert.are_not.equal(snippet.key(rr, "q", hits), snippet.key(rr, "q2", hits))
    local other = assert(rerank.new { kind = "local", window = 3 })
    assert.are_not.equal(snippet.key(rr, "q", hits), snippet.key(other, "q", hits))
  end)
end)
