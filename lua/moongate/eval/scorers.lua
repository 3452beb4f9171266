-- moongate.eval.scorers: how one answer is scored against its golden case, each scorer a number
-- from 0 to 1 (or nil when the case gives it nothing to check): correctness, citation precision
-- and recall, format validity, groundedness.
local json = require "moongate.json"
local analyzer = require "moongate.analyzer"
local chunker = require "moongate.retrieval.chunker"
local schema = require "moongate.eval.schema"

local M = {}

-- The scorers in report order; the judge's score joins them when a judge is configured.
M.NAMES = { "correctness", "citation_precision", "citation_recall", "format", "groundedness" }

-- Markup and spacing do not change what an answer says: "`moongate index`" = "moongate index".
local function plain(s) return (s:gsub("[`*_]", ""):gsub("%s+", " "):lower()) end
M.plain = plain

local function trim(s) return (s:gsub("^%s+", ""):gsub("%s+$", "")) end

--- correctness(answer, expect) -> 1 | 0 | nil, why: every expectation the case gives holds.
function M.correctness(text, expect)
  local any = false
  if expect.exact then
    any = true
    if trim(text) ~= trim(expect.exact) then return 0, "not exactly the expected answer" end
  end
  if expect.contains then
    any = true
    local p = plain(text)
    for _, want in ipairs(expect.contains) do
      if not p:find(plain(want), 1, true) then return 0, "does not contain \"" .. want .. "\"" end
    end
  end
  if expect.regex then
    any = true
    if not text:find(expect.regex) then return 0, "does not match " .. expect.regex end
  end
  if expect.schema then
    any = true
    local v = json.decode(text)
    if v == nil then return 0, "not JSON" end
    local ok, err = schema.validate(v, expect.schema)
    if not ok then return 0, err end
  end
  if not any then return nil end
  return 1
end

-- Does a citation name the expected document (and section)? A document is named by its id or
-- path, or a path ending in it ("docs/flags.md" names "flags.md").
local function names_doc(c, doc)
  for _, v in ipairs({ c.doc_id, c.source }) do
    if type(v) == "string" and (v == doc or v:sub(-#doc - 1) == "/" .. doc) then return true end
  end
  return false
end

local function in_section(c, section)
  if not section then return true end
  local want = plain(section)
  local h = c.heading
  if type(h) == "string" then h = { h } end
  for _, x in ipairs(type(h) == "table" and h or {}) do
    if plain(x) == want then return true end   -- the section itself, or one under it
  end
  return false
end

local function matches(c, e) return names_doc(c, e.doc) and in_section(c, e.section) end

--- citations(cited, expected) -> precision, recall: the share of citations that name an expected
--- source, and the share of expected sources cited. No citation where some were expected: 0, 0;
--- none expected and none given: 1, 1.
function M.citations(cited, expected)
  if not expected then return nil, nil end
  if #cited == 0 then
    if #expected == 0 then return 1, 1 end
    return 0, 0
  end
  local good = 0
  for _, c in ipairs(cited) do
    for _, e in ipairs(expected) do
      if matches(c, e) then good = good + 1; break end
    end
  end
  local found = 0
  for _, e in ipairs(expected) do
    for _, c in ipairs(cited) do
      if matches(c, e) then found = found + 1; break end
    end
  end
  return good / #cited, #expected > 0 and found / #expected or 1
end

--- format(answer, citations, expect) -> 1 | 0, why: a non-empty answer whose [n] markers all
--- point at a citation it returned, and that parses as JSON when a schema is expected.
function M.format(text, cited, expect)
  if type(text) ~= "string" or not text:find("%S") then return 0, "empty answer" end
  local have = {}
  for _, c in ipairs(cited) do if c.n then have[tonumber(c.n)] = true end end
  if not (expect and expect.schema) then
    for n in text:gmatch("%[(%d+)%]") do
      if not have[tonumber(n)] then return 0, "cites [" .. n .. "], which it does not return" end
    end
  else
    if json.decode(text) == nil then return 0, "not JSON" end
  end
  return 1
end

local function terms(s)
  local out = {}
  for _, t in ipairs(analyzer.terms(s, { stem = "english", stopwords = true })) do out[t] = true end
  return out
end

M.SUPPORT = 0.5   -- a sentence is supported when half its content terms are in the cited passages

--- groundedness(answer, snippets) -> share of the answer's sentences whose content terms are at
--- least SUPPORT in the cited snippets | nil (nothing to check: no sentence with content terms)
function M.groundedness(text, snippets)
  local pool = terms(table.concat(snippets, "\n"))
  local n, supported = 0, 0
  for _, s in ipairs(chunker.sentences((text:gsub("%[%d+%]", "")))) do
    local t, have, total = terms(s), 0, 0
    for term in pairs(t) do
      total = total + 1
      if pool[term] then have = have + 1 end
    end
    if total > 0 then
      n = n + 1
      if have / total >= M.SUPPORT then supported = supported + 1 end
    end
  end
  if n == 0 then return nil end
  return supported / n
end

--- score(case, result) -> { [scorer] = 0..1 }, { [scorer] = why it lost points }
--- result: { answer =, citations = {{n, doc_id, source, heading, text}}, snippets = {text...} }
function M.score(case, r)
  local s, why = {}, {}
  local text = r.answer or ""
  local cited = r.citations or {}
  s.correctness, why.correctness = M.correctness(text, case.expect)
  s.citation_precision, s.citation_recall = M.citations(cited, case.citations)
  s.format, why.format = M.format(text, cited, case.expect)
  if not case.expect.schema then s.groundedness = M.groundedness(text, r.snippets or {}) end
  return s, why
end

return M
