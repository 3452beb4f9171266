-- Structural parsing (Markdown, text, HTML) and chunking: headings give the path, blocks that
-- fit are never cut, long sections split with sentence overlap.
local markdown = require "moongate.retrieval.markdown"
local html = require "moongate.retrieval.html"
local chunker = require "moongate.retrieval.chunker"

-- one token a word, for exact expectations
local function words(s) return select(2, s:gsub("%S+", "")) end

local function kinds(blocks)
  local out = {}
  for i, b in ipairs(blocks) do out[i] = b.kind .. ":" .. table.concat(b.heading, "/") end
  return out
end

describe("markdown", function()
  it("parses headings, paragraphs, lists, tables, code and quotes", function()
    local blocks = markdown.parse(table.concat({
      "---", "title: front matter", "---",
      "# Guide", "", "Intro line one", "line two.", "",
      "## Install", "- one", "- two", "  more of two", "",
      "```sh", "make", "# not a heading", "```", "",
      "| a | b |", "|---|---|", "| 1 | 2 |", "",
      "> quoted", "",
      "Setext", "======", "after",
    }, "\n"))
    assert.are.same({
      "heading:Guide", "paragraph:Guide", "heading:Guide/Install", "list:Guide/Install",
      "code:Guide/Install", "table:Guide/Install", "quote:Guide/Install", "heading:Setext",
      "paragraph:Setext",
    }, kinds(blocks))
    assert.are.equal("Intro line one\nline two.", blocks[2].text)
    assert.are.equal("- one\n- two\n  more of two", blocks[4].text)
    assert.are.equal("```sh\nmake\n# not a heading\n```", blocks[5].text)
    assert.are.equal(2, blocks[3].level)
  end)

  it("splits plain text on blank lines", function()
    local blocks = markdown.parse_text("first para\nstill first\n\n\nsecond # not heading\n")
    assert.are.same({ "paragraph:", "paragraph:" }, kinds(blocks))
    assert.are.equal("second # not heading", blocks[2].text)
  end)
end)

describe("html", function()
  it("keeps headings, paragraphs, lists and tables; drops scripts", function()
    local blocks, title = html.parse([[<html><head><title>T &amp; C</title><script>x()</script></head>
      <body><nav>menu</nav><h1>Top</h1><p>Hello &amp; <b>bold</b> world</p><h2>Sub</h2>
      <ul><li>one</li><li>two</li></ul><table><tr><th>a</th><th>b</th></tr><tr><td>1</td><td>2</td></tr></table>
      <pre>x = 1
  y = 2</pre></body></html>]])
    assert.are.equal("T & C", title)
    assert.are.same({ "heading:Top", "paragraph:Top", "heading:Top/Sub", "list:Top/Sub", "table:Top/Sub",
      "code:Top/Sub" }, kinds(blocks))
    assert.are.equal("Hello & bold world", blocks[2].text)
    assert.are.equal("- one\n- two", blocks[4].text)
    assert.are.equal("| a | b |\n| 1 | 2 |", blocks[5].text)
    assert.are.equal("x = 1\n  y = 2", blocks[6].text)
  end)

  it("survives broken markup", function()
    local blocks = html.parse("<p>unclosed <b>bold<p>next</div></span>")
    assert.are.equal(2, #blocks)
    assert.are.equal("unclosed bold", blocks[1].text)
  end)
end)

describe("sentences", function()
  it("splits on end punctuation, not on abbreviations or soft wraps", function()
    assert.are.same({ "Dr. Smith left, e.g. at 5.", "It rained!", "Was it\nlate?", "- item" },
      chunker.sentences("Dr. Smith left, e.g. at 5. It rained! Was it\nlate?\n- item"))
  end)
end)

describe("chunker", function()
  local function para(n, tag)
    local t = {}
    for i = 1, n do t[i] = tag .. i .. (i % 10 == 0 and "." or "") end
    return table.concat(t, " ")
  end

  it("keeps small sections together and carries the heading path", function()
    local blocks = markdown.parse("# A\n\nalpha beta.\n\n## B\n\ngamma delta.\n")
    local chunks = chunker.chunk(blocks, { max_tokens = 100, min_tokens = 50, overlap = 10, count = words })
    assert.are.equal(1, #chunks)
    assert.are.equal("# A\n\nalpha beta.\n\n## B\n\ngamma delta.", chunks[1].text)
    assert.are.same({ "A" }, chunks[1].heading)
    assert.are.equal(8, chunks[1].tokens)
  end)

  it("starts a new chunk at a heading once the current one is big enough", function()
    local md = "# A\n\n" .. para(30, "a") .. "\n\n# B\n\n" .. para(30, "b") .. "\n"
    local chunks = chunker.chunk(markdown.parse(md), { max_tokens = 100, min_tokens = 20, overlap = 10, count = words })
    assert.are.equal(2, #chunks)
    assert.are.same({ "A" }, chunks[1].heading)
    assert.are.same({ "B" }, chunks[2].heading)
    assert.are.equal("# B", chunks[2].text:sub(1, 3))   -- no overlap across sections
  end)

  it("never cuts a block that fits, and overlaps whole sentences inside a section", function()
    local md = "# S\n\n" .. para(50, "p") .. "\n\n" .. para(50, "q") .. "\n\n" .. para(50, "r") .. "\n"
    local chunks = chunker.chunk(markdown.parse(md), { max_tokens = 90, min_tokens = 20, overlap = 12, count = words })
    assert.are.equal(3, #chunks)
    -- every paragraph is whole in some chunk
    for _, tag in ipairs { "p", "q", "r" } do
      local whole = false
      for _, c in ipairs(chunks) do if c.text:find(para(50, tag), 1, true) then whole = true end end
      assert.is_true(whole, tag)
    end
    -- the second chunk starts with the last sentence of the first (10 words <= 12)
    assert.are.equal("p41 p42 p43 p44 p45 p46 p47 p48 p49 p50.", chunks[2].text:match("^[^\n]+"))
    assert.are.equal("q41 q42 q43 q44 q45 q46 q47 q48 q49 q50.", chunks[3].text:match("^[^\n]+"))
    for _, c in ipairs(chunks) do
      assert.is_true(c.tokens <= 90)
      assert.are.same({ "S" }, c.heading)
    end
  end)

  it("splits a block longer than the limit by sentences", function()
    local chunks = chunker.chunk(markdown.parse(para(250, "w")), { max_tokens = 100, min_tokens = 50, overlap = 0, count = words })
    assert.are.equal(3, #chunks)
    assert.are.same({ 100, 100, 50 }, { chunks[1].tokens, chunks[2].tokens, chunks[3].tokens })
    assert.are.equal("w1 w2", chunks[1].text:sub(1, 5))
    assert.are.equal("w250.", chunks[3].text:match("(%S+)$"))
  end)

  it("cuts a long fenced code block into fenced pieces of whole lines", function()
    local lines = {}
    for i = 1, 30 do lines[i] = ("local v%d = %d -- three more words"):format(i, i) end
    local md = "# S\n\n```lua\n" .. table.concat(lines, "\n") .. "\n```\n"
    local chunks = chunker.chunk(markdown.parse(md), { max_tokens = 60, min_tokens = 10, overlap = 0, count = words })
    assert.is_true(#chunks >= 4)
    local seen = 0
    for _, c in ipairs(chunks) do
      local code = c.text:match("```lua\n(.-)\n```$")
      if code then
        for line in (code .. "\n"):gmatch("([^\n]*)\n") do
          seen = seen + 1
          assert.are.equal(lines[seen], line)   -- every line whole, in order
        end
      end
      assert.is_true(c.tokens <= 60, c.tokens)
    end
    assert.are.equal(30, seen)
  end)

  it("cuts a long table into tables of whole rows under its header, with no overlap out of it", function()
    local rows = { "| name | meaning |", "| --- | --- |" }
    for i = 1, 30 do rows[#rows + 1] = ("| key%d | what key %d does here |"):format(i, i) end
    local md = "# S\n\n" .. table.concat(rows, "\n") .. "\n\n" .. para(50, "p") .. "\n"
    local chunks = chunker.chunk(markdown.parse(md), { max_tokens = 60, min_tokens = 10, overlap = 12, count = words })
    local seen = 0
    for _, c in ipairs(chunks) do
      local t = c.text:gsub("^# S\n\n", "")
      if t:match("^|") then
        assert.are.equal("| name | meaning |\n| --- | --- |\n", t:sub(1, 33))
        for row in (t:sub(34):gsub("\n\n.*$", "")):gmatch("[^\n]+") do
          seen = seen + 1
          assert.are.equal(rows[seen + 2], row)
        end
      else
        -- the paragraph after the table starts its own chunk, without the table's last words
        assert.are.equal("p1 p2", t:sub(1, 5))
      end
      assert.is_true(c.tokens <= 60, c.tokens)
    end
    assert.are.equal(30, seen)
  end)

  it("counts tokens exactly when the tokenizer is there", function()
    local count, name = chunker.token_counter()
    assert.are.equal("cl100k_base", name)
    assert.are.equal(require("moongate.tokenizer").count("hello world, chunked", "cl100k_base"), count("hello world, chunked"))
    -- the approximation: about 4 bytes a token, never fewer tokens than words
    assert.are.equal(6, chunker.approx_tokens("four words right here"))
    assert.are.equal(5, chunker.approx_tokens("a b c d e"))
  end)
end)
