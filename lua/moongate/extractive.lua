-- moongate.extractive: the embedded default "model", offline: answers a question with the
-- context sentences that match it best (BM25 over sentences, the share of the question they
-- cover, where they come from), each cited as [n]; says so plainly when the context does not
-- cover the question.
local analyzer = require "moongate.analyzer"
local bm25 = require "moongate.bm25"
local chunker = require "moongate.retrieval.chunker"
local markdown = require "moongate.retrieval.markdown"

local M = {}

M.NO_ANSWER = "I don't know: the provided context does not cover this."

-- A sentence's score adds these signals, each from 0 to about 1 (before its weight):
--   the passage's retrieval score, relative to the best passage's (without one: 1 / (1 +
--     RANK_DECAY (n - 1)) for the context's rank n)
--   the sentence's BM25 over the context sentences, relative to the best sentence's
--   its coverage: the share of the question's term weight it holds (heading included)
--   the share the page's title holds, times TITLE_WEIGHT: "How much memory does the
--     tokenizer use?" is about the tokenizer's page, not the shared-memory one that says
--     "memory" more often
--   the share of all the passages' retrieval scores that went to passages of its page (times
--     PAGE_WEIGHT): a page several passages come from is the likelier subject of the question
--   less OVERVIEW_PENALTY for a sentence of a page's opening (under its title alone): an
--     overview names every topic of its page, and the section on the topic says it in full
-- The title's weight was 2 and the penalty 0.4 until more pages came: a page title shares
-- words with questions about other pages ("Routing, retries and circuit breakers" outweighed
-- the sentence that answers "close a circuit breaker by hand" from the gateway's admin
-- routes). Chosen on the golden set's tuning part (tests/golden/docs_answers.lua, ids not
-- ending in 3 or 8): right first citations 115 -> 117 of 142; held out 29 -> 30 of 35.
local RANK_DECAY = 0.25
local TITLE_WEIGHT = 1
local OVERVIEW_PENALTY = 1
local PAGE_WEIGHT = 1
local MATCH_SHARE = 0.5

-- Words that shape a question but say nothing of its subject (beyond the analyzer's
-- English stop words), as the analyzer outputs them (stemmed: "why" is "whi").
local QUESTION_WORDS = {}
for w in ([[what which who whom whose when where why how do doe did done can could should would
  shall may might must i me my we our you your he she him her us tell explain describ give list
  have ha had
  show know want need pleas about mean get there here ani some much mani whi from]]):gmatch("%S+") do
  QUESTION_WORDS[w] = true
end

-- Content terms of a text: stemmed, stop words out.
local function terms(text)
  return analyzer.terms(text, { stem = "english", stopwords = true })
end

local function question_terms(text)
  local out = {}
  for _, t in ipairs(terms(text)) do
    if not QUESTION_WORDS[t] then out[#out + 1] = t end
  end
  return out
end

local function is_fence(line) return line:match("^%s*```") or line:match("^%s*~~~") end

-- The prose of a passage (Markdown): its headings, paragraphs, lists and quotes, each block
-- apart; code blocks and tables do not read as answers and are left out. Blocks come from
-- moongate.retrieval.markdown, so a fence only opens or closes on a line of its own (a
-- "```" quoted inside a code block or a sentence is text). A passage cut from the middle of
-- a code block starts inside it (an odd number of fence lines): its text up to the first
-- fence line is code.
local function prose_of(text)
  local lines, fences = {}, 0
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    lines[#lines + 1] = line
    if is_fence(line) then fences = fences + 1 end
  end
  if fences % 2 == 1 then
    local first = 1
    while not is_fence(lines[first]) do first = first + 1 end
    text = table.concat(lines, "\n", first + 1)
  end
  local parts = {}
  for _, b in ipairs(markdown.parse(text)) do
    if b.kind == "heading" then
      parts[#parts + 1] = ("#"):rep(b.level or 1) .. " " .. b.text
    elseif b.kind == "paragraph" or b.kind == "list" or b.kind == "quote" then
      parts[#parts + 1] = b.text
    end
  end
  return table.concat(parts, "\n\n")
end

--- topic(question) -> the question without the words that only shape it ("How do I hot-reload
-- the routing policy?" -> "hot-reload the routing policy?"), for the retrieval query: "how",
-- "do" and "I" match every passage that says how to do anything. The question itself when
-- nothing would be left.
function M.topic(question)
  local kept = {}
  for word in question:gmatch("%S+") do
    local keep = false
    for _, t in ipairs(terms(word)) do
      if not QUESTION_WORDS[t] then keep = true; break end
    end
    if keep then kept[#kept + 1] = word end
  end
  if #kept == 0 then return question end
  return table.concat(kept, " ")
end

--- answer{question =, contexts = {{id =, title =, text =, source =, path =, score =}, ...},
--   max_sentences = 3, min_coverage = 0.25, idf = fn}   (contexts best first, as retrieval
--   returns them; score: the context's retrieval score relative to the best one's, 0..1)
-- -> {text = "... [1] ... [2]", citations = {{n = 1, id =, source =, title =, heading =}, ...}}
-- path: the heading path the context's text starts under ({"Guide", "Install"}); the headings
-- met inside the text move it on, and each citation names the section its sentences came from
-- (heading, a path), so one passage quoted from two sections is cited twice.
-- A sentence is relevant when it holds question terms carrying at least min_coverage of the
-- question's weight (terms weighted by idf(term), their rarity across the whole index, when
-- given; else by their rarity across the context sentences).
function M.answer(req)
  if type(req) ~= "table" then error("extractive.answer takes a table", 2) end
  if type(req.question) ~= "string" then error("question must be a string", 2) end
  local contexts = req.contexts or {}
  if type(contexts) ~= "table" then error("contexts must be an array", 2) end
  local max_sentences = req.max_sentences or 3
  local min_coverage = req.min_coverage or 0.25

  local qterms, qset = {}, {}
  for _, t in ipairs(question_terms(req.question)) do
    if not qset[t] then qset[t] = true; qterms[#qterms + 1] = t end
  end
  local none = { text = M.NO_ANSWER, citations = {} }
  if #qterms == 0 or #contexts == 0 then return none end

  -- every sentence of every context, with where it came from
  local sents = {}
  local ix = assert(bm25.new { k1 = 1.2, b = 0.75, stem = "english", stopwords = true })
  local seen_text = {}
  for ci, c in ipairs(contexts) do
    if type(c) ~= "table" or type(c.text) ~= "string" then
      ix:close()
      error("context " .. ci .. " needs a text", 2)
    end
    local prose = prose_of(c.text)
    local path = type(c.path) == "table" and c.path or nil
    for si, s in ipairs(chunker.sentences(prose)) do
      s = s:gsub("%s+", " ")
      -- a section's first sentence can come joined to its heading ("# Routing Which provider
      -- ..."): with the heading known, what follows it is a sentence like any other
      local title = c.heading or c.title
      if type(title) == "string" and title ~= "" and s:match("^#+%s") then
        local h = s:match("^#+%s+(.*)$")
        if h:sub(1, #title) == title and #h > #title + 1 then s = h:sub(#title + 2) end
      end
      -- a heading inside the passage starts a section at its level (path entry n is level n)
      local marks, htext = s:match("^(#+)%s+(.-)%s*$")
      if marks then
        local p = {}
        for i = 1, math.min(#marks - 1, path and #path or 0) do p[i] = path[i] end
        p[#p + 1] = htext
        path = p
      end
      local key = s:lower()
      if not seen_text[key] then
        seen_text[key] = true
        -- headings count for the terms' rarity but are never quoted as an answer.
        -- A sentence is scored with its section's heading: "The circuit opens after five
        -- failures" answers "how does the circuit breaker work?" because it sits under
        -- "Circuit breakers". Not with the page's title: that one names every topic of the
        -- page, and would make its overview win every question about them.
        local scored = s
        if path and #path > 1 and not marks then scored = s .. "\n" .. path[#path] end
        sents[#sents + 1] = { ctx = ci, pos = si, text = s, scored = scored, path = path,
                              skip = marks ~= nil or s:match("^|") ~= nil }
        ix:add(scored)
      end
    end
  end
  if #sents == 0 then ix:close(); return none end
  ix:commit()

  -- Stemming leaves some families apart ("failing" -> fail, "failures" -> failur): a context
  -- term that the question term is a prefix of (or the other way round, 4 letters at least)
  -- counts as that question term.
  local variant_of, variants = {}, {}
  for _, q in ipairs(qterms) do variant_of[q] = q; variants[#variants + 1] = q end
  for _, s in ipairs(sents) do
    s.terms = terms(s.scored)
    for _, t in ipairs(s.terms) do
      if variant_of[t] == nil then
        variant_of[t] = false
        for _, q in ipairs(qterms) do
          local a, b = q, t
          if #a > #b then a, b = b, a end
          if #a >= 4 and b:sub(1, #a) == a then
            variant_of[t] = q
            variants[#variants + 1] = t
            break
          end
        end
      end
    end
  end

  -- a question term's weight: its rarity across the sentences, variants included
  local N = #sents
  local df = {}
  for _, s in ipairs(sents) do
    local seen = {}
    for _, t in ipairs(s.terms) do
      local q = variant_of[t]
      if q and not seen[q] then seen[q] = true; df[q] = (df[q] or 0) + 1 end
    end
  end
  -- With req.idf (the rarity of a term across the whole index) a term's weight says how much
  -- it tells passages apart, which a handful of context sentences cannot say; a term the index
  -- has never seen could be covered by no sentence at all, and weighs nothing.
  local weight, wsum = {}, 0
  for _, t in ipairs(qterms) do
    if req.idf then
      weight[t] = req.idf(t) or 0
    else
      local d = df[t] or 0
      weight[t] = math.log(1 + (N - d + 0.5) / (d + 0.5))
    end
    wsum = wsum + weight[t]
  end
  if wsum <= 0 then ix:close(); return none end
  -- every sentence is ranked: headings and table rows are skipped below, and a cut taken before
  -- that could hold nothing else
  local ranked = ix:search_terms(variants, N)
  ix:close()

  -- the share of the question's weight a list of terms holds
  local function share(list)
    local have, w = {}, 0
    for _, t in ipairs(list) do
      local q = variant_of[t]
      if q == nil then q = qset[t] and t end
      if q and not have[q] then have[q] = true; w = w + weight[q] end
    end
    return w / wsum
  end
  -- each page's share of the retrieved passages' scores
  local doc_mass, mass = {}, 0
  for i, c in ipairs(contexts) do
    local w = type(c.score) == "number" and c.score or 1 / (1 + RANK_DECAY * (i - 1))
    local src = c.source or i
    doc_mass[src] = (doc_mass[src] or 0) + w
    mass = mass + w
  end
  local title_share = {}
  local top_bm25 = 0
  for _, h in ipairs(ranked) do top_bm25 = math.max(top_bm25, h.score) end
  for _, h in ipairs(ranked) do
    local s = sents[h.doc + 1]
    local c = contexts[s.ctx]
    local passage = type(c.score) == "number" and c.score or 1 / (1 + RANK_DECAY * (s.ctx - 1))
    local title = s.path and s.path[1]
    if title and title_share[title] == nil then title_share[title] = share(terms(title)) end
    s.cover = share(s.terms)
    -- how well the sentence itself matches; the rest says how good a place it comes from
    s.match = (top_bm25 > 0 and h.score / top_bm25 or 0) + s.cover
    h.score = passage + s.match + TITLE_WEIGHT * (title and title_share[title] or 0)
      + PAGE_WEIGHT * doc_mass[c.source or s.ctx] / mass
      - (s.path and #s.path == 1 and OVERVIEW_PENALTY or 0)
  end
  table.sort(ranked, function(a, b)
    if a.score ~= b.score then return a.score > b.score end
    return a.doc < b.doc
  end)

  local picked = {}
  local best
  for _, h in ipairs(ranked) do
    local s = sents[h.doc + 1]
    if s.skip then goto continue end
    if s.cover >= min_coverage then
      -- the best sentence leads; another joins it when it matches the question at least
      -- MATCH_SHARE as well by itself
      best = best or s.match
      if s.match >= best * MATCH_SHARE then
        picked[#picked + 1] = s
        if #picked >= max_sentences then break end
      end
    end
    ::continue::
  end
  if #picked == 0 then return none end

  -- The answer leads with the section of the best sentence (its first citation is the one a
  -- reader trusts), then the next best section's; inside a section, sentences keep their order.
  local rank_of = {}
  for r, s in ipairs(picked) do
    local key = s.ctx .. "\0" .. table.concat(s.path or {}, "\0")
    rank_of[key] = rank_of[key] or r
    s.group = rank_of[key]
  end
  table.sort(picked, function(a, b)
    if a.group ~= b.group then return a.group < b.group end
    return a.pos < b.pos
  end)
  local num, citations, parts = {}, {}, {}
  for _, s in ipairs(picked) do
    local where = num[s.ctx] or {}
    num[s.ctx] = where
    local n = where[s.path or where]
    if not n then
      n = #citations + 1
      where[s.path or where] = n
      local c = contexts[s.ctx]
      citations[n] = { n = n, id = c.id, source = c.source, title = c.title, heading = s.path }
    end
    local text = s.text
    if not text:match("[.!?]$") then text = text .. "." end
    parts[#parts + 1] = text .. " [" .. n .. "]"
  end
  return { text = table.concat(parts, " "), citations = citations }
end

return M
