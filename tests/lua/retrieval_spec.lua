-- moongate.retrieval: versioned index directory, hybrid search, tenant/label isolation,
-- filters, dedupe, re-indexing, fusion, context building, extractive answers and rag_qa.
local retrieval = require "moongate.retrieval"
local jit_check = require "moongate.jit_check"
local store = require "moongate.retrieval.store"
local fusion = require "moongate.retrieval.fusion"
local context = require "moongate.retrieval.context"
local extractive = require "moongate.extractive"

local tmpdir = require "tmpdir"

local ROTATE = "# Rotating keys\n\nTo rotate an API key, create a new key, deploy it to every client, " ..
  "then revoke the old key. Revoked keys stop working within one minute."
local DOCS = {
  { id = "keys", title = "", text = ROTATE, format = "markdown", source = "keys.md" },
  { id = "billing", text = "# Billing\n\nInvoices are sent on the first day of each month. " ..
    "Payment is due within thirty days.", format = "markdown", source = "billing.md",
    metadata = { lang = "en", team = "finance" } },
  -- a near-copy of keys (one word differs): dropped at index time, kept as "also"
  { id = "keys-copy", text = ROTATE:gsub("minute", "minutes"), format = "markdown", source = "copy.md" },
  { id = "acme-plan", text = "The acme rotation plan: keys rotate every ninety days.", tenant = "acme",
    source = "acme.txt" },
  { id = "salaries", text = "Salary bands are reviewed every year in March.", labels = { "hr" },
    source = "hr.txt" },
  { id = "faq", text = "Questions about invoices go to the billing team by email.", source = "faq.txt",
    metadata = { lang = "fr", team = "finance" } },
}

local function build(dir, docs, opts)
  local w = assert(retrieval.writer(dir, opts))
  for _, d in ipairs(docs or DOCS) do assert(w:add(d)) end
  return assert(w:commit())
end

local function ids(hits)
  local out = {}
  for i, h in ipairs(hits) do out[i] = h.doc_id end
  return out
end

describe("retrieval index", function()
  local dir
  before_each(function() dir = tmpdir() end)
  after_each(function() store.remove_tree(dir) end)

  it("builds version 1 with a summary", function()
    local s = build(dir)
    assert.are.equal(1, s.version)
    assert.are.equal(6, s.documents)
    assert.are.equal(6, s.added)
    assert.are.equal(6, s.chunks)
    assert.are.equal(1, s.duplicates)
    assert.are.equal(5, s.indexed)
    assert.are.equal("1\n", store.read_file(dir .. "/CURRENT"))
    local idx = assert(retrieval.open(dir))
    assert.are.equal(1, idx.version)
    assert.are.same({ version = 1, chunks = 5, documents = 6, duplicates = 1 },
      { version = idx:stats().version, chunks = idx:stats().chunks, documents = idx:stats().documents,
        duplicates = idx:stats().duplicates })
    idx:close()
  end)

  it("finds by BM25, dense and hybrid, with per-stage scores and metadata", function()
    build(dir)
    local idx = assert(retrieval.open(dir))
    local hits = assert(idx:search { query = "rotate API keys", k = 3, mode = "bm25" })
    assert.are.same({ "keys" }, ids(hits))
    local h = hits[1]
    assert.are.same({ "Rotating keys" }, h.heading)
    assert.are.same({ "keys-copy" }, h.also)
    assert.are.equal("keys.md", h.metadata.source)
    assert.are.equal(1, h.metadata.version)
    assert.are.same({}, h.metadata.labels)
    assert.is_nil(h.metadata.tenant)
    assert.is_true(h.scores.bm25 > 0)
    assert.are.equal(1, h.ranks.bm25)
    assert.are.equal(ROTATE, h.text)

    local dense = assert(idx:search { query = "replacing credentials", k = 1, mode = "dense" })
    assert.are.same({ "keys" }, ids(dense))
    assert.is_true(dense[1].scores.dense > 0.3)

    local hybrid, info = assert(idx:search { query = "when is payment due for invoices", k = 2 })
    assert.are.same({ "billing", "faq" }, ids(hybrid))
    assert.are.equal("hybrid", info.mode)
    assert.are.equal(1, info.version)
    assert.is_number(hybrid[1].scores.bm25)
    assert.is_number(hybrid[1].scores.dense)
    assert.is_number(hybrid[1].scores.fused)
    assert.are.equal("en", hybrid[1].metadata.lang)
    idx:close()
  end)

  it("isolates tenants and access labels", function()
    build(dir)
    local idx = assert(retrieval.open(dir))
    -- no tenant: only documents indexed without one
    assert.are.same({ "keys" }, ids(assert(idx:search { query = "rotation plan keys rotate", mode = "bm25" })))
    -- tenant acme sees its own documents only
    assert.are.same({ "acme-plan" }, ids(assert(idx:search { query = "rotation plan keys rotate", mode = "bm25", tenant = "acme" })))
    assert.are.same({}, ids(assert(idx:search { query = "invoices", mode = "bm25", tenant = "acme" })))
    assert.are.same({}, ids(assert(idx:search { query = "salary bands", mode = "hybrid", tenant = "other" })))
    -- a labelled document needs the label
    assert.are.same({}, ids(assert(idx:search { query = "salary bands", mode = "bm25" })))
    -- dense returns the nearest readable chunks, never the labelled one
    local dense = ids(assert(idx:search { query = "salary bands", mode = "dense" }))
    table.sort(dense)
    assert.are.same({ "billing", "faq", "keys" }, dense)
    assert.are.same({ "salaries" }, ids(assert(idx:search { query = "salary bands", mode = "bm25", labels = { "hr" } })))
    assert.are.same({ "salaries" }, ids(assert(idx:search { query = "salary bands", k = 1, labels = "hr,eng" })))
    idx:close()
  end)

  it("filters on metadata during the scan", function()
    build(dir)
    local idx = assert(retrieval.open(dir))
    assert.are.same({ "faq" }, ids(assert(idx:search { query = "invoices billing", mode = "bm25", filters = { lang = "fr" } })))
    assert.are.same({ "faq", "billing" }, ids(assert(idx:search { query = "invoices billing", mode = "bm25", filters = { team = "finance" } })))
    assert.are.same({ "billing" }, ids(assert(idx:search { query = "invoices billing", mode = "bm25", filters = { source = { "billing.md", "x" } } })))
    assert.are.same({}, ids(assert(idx:search { query = "invoices billing", filters = { lang = "de" } })))
    idx:close()
  end)

  it("expands the query with the best hits' rarest frequent terms", function()
    build(dir)
    local idx = assert(retrieval.open(dir))
    local hits, info = assert(idx:search { query = "payment", mode = "bm25", expand = { docs = 1, terms = 4 } })
    -- billing's terms by tf/len * idf (stemmed, stop words out), ties by name
    assert.are.same({ "bill", "day", "due", "each" }, info.expansion)
    assert.are.same({ "billing", "faq" }, ids(hits))   -- "bill" brings in the FAQ
    local plain = assert(idx:search { query = "payment", mode = "bm25" })
    assert.are.same({ "billing" }, ids(plain))
    idx:close()
  end)

  it("returns documents, listing the dropped copies of a chunk", function()
    build(dir)
    local idx = assert(retrieval.open(dir))
    local docs = assert(idx:search_documents { query = "rotate API key revoke", k = 5, mode = "bm25" })
    assert.are.same({ "keys", "keys-copy" }, { docs[1].doc_id, docs[2].doc_id })
    assert.are.equal(docs[1].score, docs[2].score)
    idx:close()
  end)

  it("rejects bad queries with clear errors", function()
    build(dir)
    local idx = assert(retrieval.open(dir))
    assert.are.same({ nil, "empty query" }, { idx:search { query = "  " } })
    assert.are.same({ nil, "mode must be bm25, dense or hybrid" }, { idx:search { query = "x", mode = "fuzzy" } })
    assert.are.same({ nil, "k must be an integer from 1 to 1000" }, { idx:search { query = "x", k = 0 } })
    assert.are.same({ nil, "query must be a string" }, { idx:search { query = 42 } })
    assert.has_error(function() idx:search("x") end, "search takes a table: {query =, k =, ...}")
    assert.are.same({ nil, "no index at " .. dir .. "/nope" }, { retrieval.open(dir .. "/nope") })
    idx:close()
  end)

  it("replaces changed documents, drops deleted ones, keeps unchanged ones", function()
    build(dir)
    local w = assert(retrieval.writer(dir))
    assert.are.equal("unchanged", w:add(DOCS[1]))
    assert.are.equal("changed", w:add { id = "billing", text = "Invoices now arrive on the fifth.", source = "billing.md" })
    assert.is_true(w:delete("faq"))
    assert.are.same({ nil, "not found" }, { w:delete("faq", "acme") })
    local s = assert(w:commit())
    assert.are.same({ 2, 1, 1, 1 }, { s.version, s.changed, s.unchanged, s.deleted })
    local idx = assert(retrieval.open(dir))
    assert.are.equal(2, idx.version)
    local hits = assert(idx:search { query = "invoices", mode = "bm25" })
    assert.are.same({ "billing" }, ids(hits))
    assert.are.equal("Invoices now arrive on the fifth.", hits[1].text)
    assert.are.equal(2, hits[1].metadata.version)
    idx:close()
  end)

  it("keeps the current version when a run changes nothing", function()
    build(dir)
    local s = build(dir)
    assert.are.same({ 1, 0, 6, 0, 5 }, { s.version, s.added, s.unchanged, s.deleted, s.indexed })
    assert.are.equal("1\n", store.read_file(dir .. "/CURRENT"))
    -- a BM25 setting changed: a new version, same chunks
    s = build(dir, nil, { k1 = 1.5 })
    assert.are.same({ 2, 0, 6, 5 }, { s.version, s.added, s.unchanged, s.indexed })
  end)

  it("serves the old version until the writer publishes, then swaps", function()
    build(dir)
    local reader = assert(retrieval.open(dir, { refresh_interval = false }))
    local w = assert(retrieval.writer(dir))
    assert(w:add { id = "new", text = "Zebras graze on the savanna.", source = "new.txt" })
    -- a second writer is refused while the first holds the lock
    assert.are.same({ nil, "index is being written" }, { retrieval.writer(dir) })
    assert.are.same({}, assert(reader:search { query = "zebras", mode = "bm25" }))
    assert(w:commit())
    -- still on version 1 until refreshed: same answers, texts still readable
    assert.are.equal(1, reader.version)
    assert.are.same({ "keys" }, ids(assert(reader:search { query = "rotate", mode = "bm25" })))
    assert.are.same({ true, true }, { reader:refresh() })
    assert.are.equal(2, reader.version)
    assert.are.same({ "new" }, ids(assert(reader:search { query = "zebras", mode = "bm25" })))
    assert.are.same({ true, false }, { reader:refresh() })
    reader:close()
  end)

  it("counts a section's heading heading_weight times for BM25", function()
    local docs = {
      { id = "a", format = "markdown", source = "a.md",
        text = "# Retries\n\nA failed call is sent again after a short wait, at most three times." },
      { id = "b", format = "markdown", source = "b.md", text = "# Deadlines\n\nEvery request has a deadline. " ..
        "Retries stop when it passes: retries never outlive it, and retries of a request past it are not sent." },
    }
    local function first(weight)
      local d = tmpdir()
      build(d, docs, { heading_weight = weight, embedder = "none" })
      local idx = assert(retrieval.open(d))
      local hits = assert(idx:search { query = "retries", k = 2, mode = "bm25" })
      idx:close()
      store.remove_tree(d)
      return hits[1].doc_id
    end
    -- once, the page that says "retries" three times wins; three times, the section named so
    assert.are.equal("b", first(nil))
    assert.are.equal("a", first(3))
    local writer = require "moongate.retrieval.writer"
    assert.are.equal("Retries\nRetries\nGuide > Retries\ntext",
      writer.bm25_text("Guide > Retries", "Guide > Retries\ntext", 3))
    assert.are.equal("text", writer.bm25_text("Guide > Retries", "text", 1))
    assert.are.same({ nil, "heading_weight must be a whole number from 1 to 10" },
      { retrieval.writer(dir, { heading_weight = "3" }) })
  end)

  it("re-indexes files: changed files replace, removed files disappear", function()
    local src = tmpdir()
    local function write(name, text)
      local f = assert(io.open(src .. "/" .. name, "wb")); f:write(text); f:close()
    end
    write("a.md", "# Alpha\n\nAlpha particles are helium nuclei.")
    write("b.txt", "Beta decay emits an electron.")
    write("c.html", "<h1>Gamma</h1><p>Gamma rays are photons.</p>")
    write("d.jsonl", '{"_id": "d1", "title": "Delta", "text": "Delta wings suit supersonic flight.", "year": 1960}\n')
    write("skip.bin", "\0\1")
    local s = assert(retrieval.index(dir, { src }))
    assert.are.same({ 4, 4, 1 }, { s.files, s.added, #s.skipped })
    local idx = assert(retrieval.open(dir, { refresh_interval = 0 }))
    local hits = assert(idx:search { query = "gamma photons", k = 1, mode = "bm25" })
    assert.are.equal(src .. "/c.html", hits[1].doc_id)
    assert.are.same({ "Gamma" }, hits[1].heading)
    hits = assert(idx:search { query = "delta wings", k = 1, mode = "bm25" })
    assert.are.same({ "d1", "Delta", 1960 }, { hits[1].doc_id, hits[1].title, hits[1].metadata.year })

    os.remove(src .. "/b.txt")
    write("a.md", "# Alpha\n\nAlpha radiation is stopped by paper.")
    s = assert(retrieval.index(dir, { src }))
    assert.are.same({ 2, 1, 2, 1 }, { s.version, s.changed, s.unchanged, s.deleted })
    assert.are.same({}, assert(idx:search { query = "beta electron", mode = "bm25" }))
    hits = assert(idx:search { query = "alpha", mode = "bm25" })
    assert.are.equal("# Alpha\n\nAlpha radiation is stopped by paper.", hits[1].text)
    idx:close()
    store.remove_tree(src)
  end)

  it("knows a file by one path however it is spelled", function()
    local ingest = require "moongate.retrieval.ingest"
    assert.are.same({ "docs/a.md", "docs", "/x/y", "/", "a/b" },
      { ingest.clean_path("./docs//a.md"), ingest.clean_path("././docs/"), ingest.clean_path("/x/./y"),
        ingest.clean_path("/"), ingest.clean_path("a/b/") })
  end)

  it("refuses to change the chunking of an existing index", function()
    build(dir)
    assert.are.same({ nil, "the index was chunked with max_tokens = 800; index into a new folder to change it" },
      { retrieval.writer(dir, { max_tokens = 500 }) })
  end)
end)

describe("fusion", function()
  it("computes reciprocal rank fusion", function()
    local f = fusion.rrf({ a = { { key = 1, score = 9 }, { key = 2, score = 5 } }, b = { { key = 2, score = 0.9 } } }, { k = 60 })
    assert.are.equal(2, f[1].key)
    assert.are.equal(1 / 62 + 1 / 61, f[1].score)
    assert.are.same({ a = 2, b = 1 }, f[1].ranks)
    assert.are.equal(1 / 61, f[2].score)
  end)

  it("computes weighted min-max fusion", function()
    local f = fusion.weighted({ a = { { key = 1, score = 10 }, { key = 2, score = 0 } }, b = { { key = 2, score = 3 }, { key = 3, score = 1 } } },
      { weights = { a = 1, b = 0.5 } })
    assert.are.same({ 1, 2, 3 }, { f[1].key, f[2].key, f[3].key })
    assert.are.same({ 1, 0.5, 0 }, { f[1].score, f[2].score, f[3].score })
  end)
end)

describe("context builder", function()
  local function hit(i, words, score)
    local t = {}
    for w = 1, words do t[w] = "w" .. w .. (w % 10 == 0 and "." or "") end
    return { id = i, doc_id = "d" .. i, title = "T" .. i, heading = {}, score = score,
      text = table.concat(t, " "), metadata = { source = "s" .. i } }
  end
  local words = function(s) return select(2, s:gsub("%S+", "")) end

  it("fits the budget, giving later hits less, leaving out weak ones", function()
    local c = context.build({ hit(1, 100, 10), hit(2, 100, 8), hit(3, 100, 6), hit(4, 100, 1) },
      { budget = 150, decay = 0.5, min_relevance = 0.2, min_tokens = 10, count = words })
    assert.are.equal(3, #c.passages)
    assert.is_true(c.tokens <= 150)
    assert.is_true(c.passages[1].tokens > c.passages[2].tokens)
    assert.are.equal("[1] T1\nw1 w2", c.text:sub(1, 12))
    assert.are.same({ n = 2, id = 2, doc_id = "d2", source = "s2", title = "T2" }, c.citations[2])
  end)
end)

describe("extractive", function()
  local contexts = {
    { id = "k", title = "Keys", source = "keys.md", text = ROTATE },
    { id = "b", title = "Billing", source = "billing.md", text = "Invoices are sent monthly. Payment is due within thirty days." },
  }

  it("answers with the matching sentences and citations", function()
    local r = extractive.answer { question = "When is payment due?", contexts = contexts }
    assert.are.equal("Payment is due within thirty days. [1]", r.text)
    assert.are.same({ { n = 1, id = "b", source = "billing.md", title = "Billing" } }, r.citations)
    r = extractive.answer { question = "How do I rotate an API key, and when is payment due?", contexts = contexts }
    -- both parts answered, each from its own page and cited apart
    assert.are.equal("Payment is due within thirty days. [1] " ..
      "To rotate an API key, create a new key, deploy it to every client, then revoke the old key. [2]", r.text)
    assert.are.same({ "b", "k" }, { r.citations[1].id, r.citations[2].id })
  end)

  it("quotes prose, not code blocks or table rows", function()
    local r = extractive.answer { question = "how to build the index", contexts = { { id = "x", source = "x.md",
      text = "To build the index, run the index command.\n\n```sh\nmoongate index build the index\n```\n\n| build | index |" } } }
    assert.are.equal("To build the index, run the index command. [1]", r.text)
  end)

  it("quotes a section's first sentence even when it comes joined to its heading", function()
    local r = extractive.answer { question = "What decides which provider answers?", contexts = {
      { id = "r", source = "routing.md", heading = "Routing",
        text = "# Routing Which provider answers a request is decided by the routing policy.\nIt is a Lua file." } } }
    assert.are.equal("Which provider answers a request is decided by the routing policy. [1]", r.text)
  end)

  it("cites the section each quoted sentence comes from, under the passage's heading path", function()
    local r = extractive.answer { question = "When does the circuit open, and what does the reset button do?",
      max_sentences = 2, contexts = { { id = "p", source = "routing.md", path = { "Routing", "Retries" },
        text = "Retries wait between tries.\n\n## Circuit breakers\n\nThe circuit opens after five failures in a row.\n\n" ..
               "### Reset\n\nThe reset button closes the circuit at once." } } }
    assert.are.equal("The reset button closes the circuit at once. [1] The circuit opens after five failures in a row. [2]", r.text)
    assert.are.same({ "Routing", "Circuit breakers", "Reset" }, r.citations[1].heading)
    assert.are.same({ "Routing", "Circuit breakers" }, r.citations[2].heading)
    assert.are.same({ "p", "p" }, { r.citations[1].id, r.citations[2].id })
  end)

  it("a passage cut inside a code block does not quote the code", function()
    local r = extractive.answer { question = "how to build the index", contexts = { { id = "x", source = "x.md",
      text = "moongate index build the index docs\n```\n\nTo build the index, run the index command." } } }
    assert.are.equal("To build the index, run the index command. [1]", r.text)
  end)

  it("a fence quoted inside a code block or a sentence does not turn code into prose", function()
    local r = extractive.answer { question = "how to build the index", contexts = { { id = "x", source = "x.md",
      text = "```\nprints ```lua\n```\n\nTo build the index, run the index command.\n\n" ..
             "```sh\nmoongate index build the index docs now\n```\n\nUse ``` fences around code." } } }
    assert.are.equal("To build the index, run the index command. [1]", r.text)
  end)

  it("matches word families the stemmer keeps apart (failing / failures)", function()
    local r = extractive.answer { question = "What happens when a provider keeps failing?", contexts = {
      { id = "r", source = "reload.md", text = "A broken edit keeps the previous version serving." },
      { id = "c", source = "breaker.md", text = "After five failures in a row the provider's circuit opens." },
    } }
    assert.are.equal("After five failures in a row the provider's circuit opens. [1]", r.text)
  end)

  it("prefers the sentence from the better-ranked context over a slightly shorter one", function()
    -- BM25 alone would pick the second (shorter) sentence; contexts come best first
    local r = extractive.answer { question = "What does the breaker do?", max_sentences = 1, contexts = {
      { id = "a", source = "breaker.md", text = "The breaker opens after repeated failures." },
      { id = "b", source = "shared.md", text = "The store keeps the breaker state." },
    } }
    assert.are.equal("The breaker opens after repeated failures. [1]", r.text)
  end)

  it("prefers the page whose title the question names over one that repeats a word of it", function()
    local idf = function(t) if t == "memori" or t == "token" then return 1 end end
    local r = extractive.answer { question = "How much memory does the tokenizer use?", max_sentences = 1, idf = idf, contexts = {
      { id = "s", source = "shared.md", path = { "moongate.shared", "How it works" }, score = 1,
        text = "Memory is managed by a buddy allocator, and freed memory merges." },
      { id = "t", source = "tokenizer.md", path = { "The tokenizer", "How it works" }, score = 0.9,
        text = "Memory: the rank table takes about 10 MB once loaded." },
    } }
    assert.are.equal("Memory: the rank table takes about 10 MB once loaded. [1]", r.text)
    assert.are.same({ "The tokenizer", "How it works" }, r.citations[1].heading)
  end)

  it("prefers the page most of the passages come from, on a near tie", function()
    local r = extractive.answer { question = "How do I rotate the signing keys?", max_sentences = 1, contexts = {
      { id = "b", source = "billing.md", path = { "Billing", "Invoices" }, score = 1,
        text = "Rotate the signing keys with the billing tool." },
      { id = "k1", source = "credentials.md", path = { "Credentials", "Rotation" }, score = 0.95,
        text = "The signing keys rotate with the command of the CLI that makes them." },
      { id = "k2", source = "credentials.md", path = { "Credentials", "Expiry" }, score = 0.9,
        text = "An old key expires an hour after the rotation." },
    } }
    assert.are.equal("The signing keys rotate with the command of the CLI that makes them. [1]", r.text)
  end)

  it("prefers the section on the topic over the page's opening that names it", function()
    local r = extractive.answer { question = "How do I count the tokens of a chat request?", max_sentences = 1, contexts = {
      { id = "t", source = "tokens.md", path = { "Tokens" }, text = "Tokens of chat requests are counted exactly.\n\n" ..
        "## Lua API\n\nUse count_chat to count the tokens of a chat request, with the per-message overhead." } } }
    assert.are.equal("Use count_chat to count the tokens of a chat request, with the per-message overhead. [1]", r.text)
    assert.are.same({ "Tokens", "Lua API" }, r.citations[1].heading)
  end)

  it("weighs question terms by the index's idf: a term no passage holds weighs nothing", function()
    local contexts = { { id = "k", source = "keys.md", text = "Rotate keys every 90 days." } }
    -- by the context alone "frobnicate" is as rare as "rotate": the sentence covers half the question
    local idf = function(t) if t == "rotat" or t == "key" then return 2 end end
    local r = extractive.answer { question = "frobnicate rotate keys", contexts = contexts, min_coverage = 0.9, idf = idf }
    assert.are.equal("Rotate keys every 90 days. [1]", r.text)
    assert.are.equal(extractive.NO_ANSWER,
      extractive.answer { question = "frobnicate rotate keys", contexts = contexts, min_coverage = 0.9 }.text)
    -- nothing the index knows: no answer
    assert.are.equal(extractive.NO_ANSWER,
      extractive.answer { question = "What is the capital of Peru?", contexts = contexts, idf = idf }.text)
  end)

  it("topic: the question without the words that only shape it", function()
    assert.are.equal("hot-reload routing policy?", extractive.topic("How do I hot-reload the routing policy?"))
    assert.are.equal("What is it?", extractive.topic("What is it?"))   -- nothing left: as asked
  end)

  it("says plainly when the context does not cover the question", function()
    assert.are.same({ text = "I don't know: the provided context does not cover this.", citations = {} },
      extractive.answer { question = "What is the capital of Peru?", contexts = contexts })
    assert.are.same({ text = "I don't know: the provided context does not cover this.", citations = {} },
      extractive.answer { question = "anything", contexts = {} })
  end)
end)

describe("rag_qa", function()
  local rag = dofile(require("moongate.base").home .. "/pipelines/rag_qa.lua")
  local dir
  before_each(function() dir = tmpdir(); build(dir) end)
  after_each(function() store.remove_tree(dir) end)

  it("re-ranks when asked", function()
    local r = assert(rag.answer { question = "How do I rotate an API key?", index = dir, rerank = true })
    assert.is_number(r.hits[1].scores.rerank)
    assert.are.equal("keys", r.hits[1].doc_id)
  end)

  it("answers from the index with citations (extractive default)", function()
    local r = assert(rag.answer { question = "How do I rotate an API key?", index = dir })
    assert.are.equal("To rotate an API key, create a new key, deploy it to every client, then revoke the old key. [1]", r.answer)
    assert.are.equal(1, #r.citations)
    assert.are.same({ 1, "keys", "keys.md" }, { r.citations[1].n, r.citations[1].doc_id, r.citations[1].source })
    assert.are.equal("keys", r.hits[1].doc_id)
    assert.are.same({ "retrieve", "rerank", "build_context", "generate", "answer" },
      { r.spans[1].name, r.spans[2].name, r.spans[3].name, r.spans[4].name, r.spans[5].name })
  end)

  it("uses a model when given one, keeping the passages it cited", function()
    local seen
    local r = assert(rag.answer { question = "When is payment due?", index = dir, k = 2,
      generate = function(req) seen = req; return "Within thirty days [1]." end })
    assert.are.equal("Within thirty days [1].", r.answer)
    assert.are.same({ "billing" }, { r.citations[1].doc_id })
    assert.are.equal("system", seen.messages[1].role)
    assert.is_truthy(seen.context:find("[1]", 1, true))
  end)

  it("keeps tenants apart and reports errors", function()
    local r = assert(rag.answer { question = "How often do keys rotate in the acme rotation plan?", index = dir, tenant = "acme" })
    assert.are.equal("acme-plan", r.hits[1].doc_id)
    assert.are.equal(1, #r.hits)
    assert.are.same({ nil, "empty question" }, { rag.answer { question = " ", index = dir } })
    assert.are.same({ nil, "retrieve: no index or folder at /nonexistent" }, { rag.answer { question = "x", index = "/nonexistent" } })
  end)
end)

describe("glove embedder under the JIT", function()
  it("its accumulation loop compiles to a trace without NYI", function()
    local e = assert(require("moongate.retrieval.embedder").new { kind = "glove" })
    local text = ("wing flutter at supersonic speed "):rep(20)
    local vec, known
    local log = jit_check.trace_log(function()
      for _ = 1, 20 do vec, known = e.embed(text) end
    end)
    assert.are.equal(100, known)
    local s = 0
    for i = 0, e.dim - 1 do s = s + vec[i] * vec[i] end
    assert.is_true(math.abs(s - 1) < 1e-5)
    assert.matches("embedder.lua:%d+ loop%]", log)
    -- (what the analyzer's own Lua does is the analyzer spec's business)
    assert.is_nil(log:find("NYI[^\n]* at embedder%.lua"), log)
  end)
end)
