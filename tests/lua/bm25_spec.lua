-- moongate.bm25: Lucene BM25 scores, filters applied in the scan, save/load, lifecycle.
local bm25 = require "moongate.bm25"
local jit_check = require "moongate.jit_check"
local bitset = require "moongate.bitset"

local docs = {
  "the quick brown fox",
  "the lazy dog",
  "quick quick fox jumps",
  "",
  "Brown dogs; LAZY foxes",
}

local function build(opts)
  local ix = assert(bm25.new(opts))
  for i, d in ipairs(docs) do assert.are.equal(i - 1, ix:add(d)) end
  assert.is_true(ix:commit())
  return ix
end

-- Lucene's BM25, by hand: idf * tf / (tf + k1 * (1 - b + b * dl / avgdl))
local function score(tf, df, N, dl, avgdl)
  return math.log(1 + (N - df + 0.5) / (df + 0.5)) * tf / (tf + 1.2 * (0.25 + 0.75 * dl / avgdl))
end

local function near(a, b) return math.abs(a - b) < 1e-5 end

describe("bm25", function()
  it("scores with Lucene's formula, best first", function()
    local ix = build { stem = false }
    local hits = ix:search("quick fox", 10)
    assert.are.equal(2, #hits)
    assert.are.equal(2, hits[1].doc)
    assert.are.equal(0, hits[2].doc)
    assert.is_true(near(0.850455, hits[1].score))
    assert.is_true(near(score(2, 2, 5, 4, 3) + score(1, 2, 5, 4, 3), hits[1].score))
    assert.is_true(near(2 * score(1, 2, 5, 4, 3), hits[2].score))
    assert.are.equal(5, ix:count())
    assert.are.equal(2, ix:df("quick"))
    assert.are.equal(4, ix:doc_len(2))
  end)

  it("stems English by default", function()
    local ix = build()
    local hits = ix:search("FOX", 10)
    assert.are.same({ 0, 2, 4 }, { hits[1].doc, hits[2].doc, hits[3].doc })
    assert.are.same({ k1 = 1.2, b = 0.75, stem = "english", stopwords = false }, ix:settings())
  end)

  it("limits to k and breaks ties by docno", function()
    local ix = build { stem = false }
    local hits = ix:search("brown", 1)
    assert.are.equal(1, #hits)
    assert.are.equal(0, hits[1].doc)
    assert.are.same({}, ix:search("zebra"))
    assert.are.same({}, ix:search(""))
    assert.are.same({}, ix:search("fox", 0))
  end)

  it("never scores documents outside the allow list", function()
    local ix = build { stem = false }
    local allow = bitset.new(5):set(0):set(1):set(4)
    local hits = ix:search("quick fox", 10, allow)
    assert.are.equal(1, #hits)
    assert.are.equal(0, hits[1].doc)
    assert.are.same({}, ix:search("quick fox", 10, bitset.new(5)))
    -- a shorter bitset allows nothing past its end
    assert.are.same({}, ix:search("jumps", 10, bitset.new(2):fill(true)))
  end)

  it("saves and loads without re-analysis", function()
    local ix = build { stem = "english", stopwords = true, k1 = 0.9, b = 0.4 }
    local path = os.tmpname()
    assert.is_true(ix:save(path))
    local re = assert(bm25.load(path))
    assert.are.same(ix:settings(), re:settings())
    assert.are.same(ix:search("lazy brown foxes", 10), re:search("lazy brown foxes", 10))
    assert.are.equal(5, re:count())
    local f = io.open(path, "wb")
    f:write("not an index")
    f:close()
    assert.are.same({ nil, "not a bm25 index" }, { bm25.load(path) })
    os.remove(path)
    assert.are.same({ nil, "cannot open" }, { bm25.load("/nonexistent/dir/ix") })
  end)

  it("raises on misuse and refuses bad settings", function()
    local ix = assert(bm25.new())
    ix:add("one")
    assert.has_error(function() ix:search("one") end, "bm25 index is not committed: commit() before search()")
    ix:commit()
    assert.has_error(function() ix:add("two") end, "bm25 index is committed: add() before commit()")
    assert.has_error(function() ix:search("one", -1) end, "k must be a non-negative integer")
    assert.has_error(function() ix:search("one", 10, {}) end, "allow must be a bitset")
    ix:close()
    ix:close()
    assert.has_error(function() ix:count() end, "bm25 index is closed")
    assert.are.same({ nil, "unknown stemmer language" }, { bm25.new { stem = "klingon" } })
    assert.are.same({ nil, "k1 must be >= 0 and b within [0, 1]" }, { bm25.new { b = 2 } })
  end)
end)

describe("bm25 under the JIT", function()
  it("a search loop compiles to a trace without NYI or stitch", function()
    local ix = build { stem = false }
    local best = 0
    local log = jit_check.trace_log(function()
      for _ = 1, 500 do
        local hits = ix:search("quick fox", 10)
        best = best + hits[1].doc
      end
    end)
    assert.are.equal(1000, best)
    assert.matches("bm25_spec.lua:%d+ loop%]", log)
    assert.is_nil(log:find("NYI", 1, true), log)
    assert.is_nil(log:find("stitch", 1, true), log)
  end)
end)

describe("bm25 search_terms", function()
  it("gives the same hits as search for the analyzed query", function()
    local analyzer = require "moongate.analyzer"
    local ix = build()
    local q = "Quick brown foxes jumping"
    assert.are.same(ix:search(q, 10), ix:search_terms(analyzer.terms(q), 10))
    assert.are.same(ix:search("fox fox", 10), ix:search_terms({ "fox" }, 10, nil, { 2 }))
  end)

  it("weights scale a term's part of the score", function()
    local ix = build { stem = false }
    local one = ix:search_terms({ "jumps" }, 1)[1].score
    local half = ix:search_terms({ "jumps" }, 1, nil, { 0.5 })[1].score
    assert.is_true(near(one / 2, half))
    -- weights change the order: "lazy" outweighs "quick" once boosted
    assert.are.equal(2, ix:search_terms({ "quick", "lazy" }, 1)[1].doc)
    assert.are.equal(1, ix:search_terms({ "quick", "lazy" }, 1, nil, { 1, 3 })[1].doc)
    local allow = bitset.new(5):set(0)
    assert.are.same({ 0 }, { ix:search_terms({ "quick", "lazy" }, 5, allow)[1].doc })
    assert.are.same({}, ix:search_terms({}, 5))
    assert.are.same({}, ix:search_terms({ "unknown" }, 5))
  end)

  it("raises on bad terms or weights", function()
    local ix = build()
    assert.has_error(function() ix:search_terms("fox") end, "terms must be an array of strings")
    assert.has_error(function() ix:search_terms({ 1 }) end, "terms must be an array of strings")
    assert.has_error(function() ix:search_terms({ "a" }, 1, nil, { 1, 2 }) end, "weights must be an array as long as terms")
    assert.has_error(function() ix:search_terms({ "a" }, 1, nil, { 0 }) end, "weights must be positive numbers")
    assert.has_error(function() ix:search_terms({ "a" }, 1, nil, { 0 / 0 }) end, "weights must be positive numbers")
  end)
end)
