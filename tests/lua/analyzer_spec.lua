-- moongate.analyzer: exact terms for the settings bm25 and simhash use.
local analyzer = require "moongate.analyzer"

describe("analyzer", function()
  it("stems English by default and keeps stop words", function()
    assert.are.same({ "the", "aerodynam", "of", "a", "wing", "in", "a", "slipstream" },
      analyzer.terms("The aerodynamics of a wing in a slipstream."))
  end)

  it("without stemming only folds case and splits words", function()
    assert.are.same({ "running", "flows", "x86", "64" },
      analyzer.terms("Running FLOWS, x86-64", { stem = false }))
  end)

  it("drops Lucene's English stop words on request", function()
    assert.are.same({ "flow", "gas" },
      analyzer.terms("The flow of a gas is not such that it will be", { stem = false, stopwords = true }))
    assert.is_true(analyzer.is_stopword("the"))
    assert.is_false(analyzer.is_stopword("wing"))
  end)

  it("folds Unicode with NFKC and case folding", function()
    assert.are.same({ "strasse", "école", "finance", "1", "kg", "full" },
      analyzer.terms("Straße ÉCOLE ﬁnance ① ㎏ Ｆｕｌｌ", { stem = false }))
    assert.are.same({ "john", "book" }, analyzer.terms("John’s book", { stem = false }))
  end)

  it("treats invalid UTF-8 as separators", function()
    assert.are.same({ "bad", "bytes" }, analyzer.terms("bad\255\254bytes", { stem = false }))
  end)

  it("refuses an unknown language and raises on wrong argument types", function()
    assert.are.same({ nil, "unknown stemmer language" }, { analyzer.terms("x", { stem = "klingon" }) })
    assert.are.same({ nil, "unknown stemmer language" }, { analyzer.new { stem = "klingon" } })
    assert.has_error(function() analyzer.terms(42) end, "text must be a string")
    assert.has_error(function() analyzer.terms("x", { stopwords = "yes" }) end, "stopwords must be a boolean")
  end)

  it("an analyzer object is reusable and closes idempotently", function()
    local a = assert(analyzer.new { stem = "english" })
    assert.are.same({ "flow" }, a:terms("flows"))
    assert.are.same({}, a:terms(""))
    a:close()
    a:close()
    assert.has_error(function() a:terms("x") end, "analyzer is closed")
  end)
end)
