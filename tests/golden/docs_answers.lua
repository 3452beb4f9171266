-- tests/golden/docs_answers.lua: how well the embedded default answers questions about
-- moongate's own docs. Runs every case of a golden set (docs.jsonl: question, doc, section,
-- key) through pipelines/rag_qa.lua with the quickstart's settings and prints the figures:
--   section  the first citation is the section that answers (or a section under it)
--   cited    some citation is
--   key      the answer quotes the key sentence
--
--   moongate run tests/golden/docs_answers.lua [--min 0.8] [--show failures|all] [--docs DIR] [GOLDEN.jsonl]
-- --docs: answer from another folder of pages than docs/ (say, with pages still to be merged).
-- The figures are printed for the whole set and for its held-out part (ids ending in 3 or 8),
-- the questions left out while tuning retrieval and sentence selection.
-- Exits 1 when the share of right first citations is under --min, 2 when the set does not
-- match the docs (a section renamed, a key sentence gone: tests/golden/golden_set.lua).
local home = require("moongate.base").home
local golden_set = dofile(home .. "/tests/golden/golden_set.lua")

local golden, min, show = home .. "/tests/golden/docs.jsonl", nil, nil
local index = home .. "/docs"
local i = 1
while i <= #arg do
  local a = arg[i]
  if a == "--min" then min = tonumber(arg[i + 1]); i = i + 1
  elseif a == "--show" then show = arg[i + 1]; i = i + 1
  elseif a == "--docs" then index = arg[i + 1]; i = i + 1
  else golden = a end
  i = i + 1
end

-- the settings a user of the quickstart gets
local conf = dofile(home .. "/examples/quickstart/moongate.lua").providers.docs
local rag = dofile(home .. "/pipelines/rag_qa.lua")

local function squash(s) return (s:gsub("[%s]+", " ")) end
-- "`moongate index` ..." and "moongate index ..." are the same words: compare without markup
local function plain(s) return squash(s:gsub("[`*_]", "")) end

local function cites_section(c, case)
  if not c or not c.source or not c.source:find(case.doc, 1, true) then return false end
  local want = plain(case.section)
  for _, h in ipairs(c.heading or {}) do
    if plain(h) == want then return true end   -- the section itself, or one under it
  end
  return false
end

local cases, err = golden_set.load(golden)
if not cases then io.stderr:write("docs_answers: ", err, "\n"); os.exit(2) end
local problems = golden_set.check(cases, index)
if #problems > 0 then
  io.stderr:write(("docs_answers: %s does not match docs/:\n  %s\n"):format(golden, table.concat(problems, "\n  ")))
  os.exit(2)
end

-- a fresh index of the pages, as a first start builds it (never a cache that chunked the
-- pages with code as it was before)
local store = require "moongate.retrieval.store"
local tmp = os.tmpname()
os.remove(tmp)
assert(store.mkdir(tmp))
local idx = assert(rag.index_folder(index, tmp .. "/index"))

local function held_out(case) return case.id:match("[38]$") ~= nil end
local n, right, cited, keyed = 0, 0, 0, 0
local hn, hright, hcited, hkeyed = 0, 0, 0, 0
local rows = {}
for _, case in ipairs(cases) do
  local r = assert(rag.answer { question = case.question, index = idx, k = conf.k,
                                max_sentences = conf.max_sentences })
  local first = cites_section(r.citations[1], case)
  local any = false
  for _, c in ipairs(r.citations) do any = any or cites_section(c, case) end
  local key = plain(r.answer):find(plain(case.key), 1, true) ~= nil
  n = n + 1
  right, cited, keyed = right + (first and 1 or 0), cited + (any and 1 or 0), keyed + (key and 1 or 0)
  if held_out(case) then
    hn = hn + 1
    hright, hcited, hkeyed = hright + (first and 1 or 0), hcited + (any and 1 or 0), hkeyed + (key and 1 or 0)
  end
  if show == "all" or (show == "failures" and not (first and key)) then
    local c = r.citations[1]
    rows[#rows + 1] = ("%s %s%s%s %s\n     want %s > %s\n     got  %s > %s\n     %s"):format(
      case.id, first and "S" or "-", any and "C" or "-", key and "K" or "-", case.question,
      case.doc, case.section, c and c.source or "(none)",
      c and table.concat(c.heading or {}, " > ") or "", r.answer:sub(1, 240))
  end
end

idx:close()
store.remove_tree(tmp)

for _, row in ipairs(rows) do print(row) end
local function pct(x, of) return ("%5.1f%%"):format(of > 0 and 100 * x / of or 0) end
print(("golden set %s: %d questions (%d held out)                  all   held out"):format(
  golden:match("[^/]+$"), n, hn))
print(("  right section cited first  %3d  %s  %3d  %s"):format(right, pct(right, n), hright, pct(hright, hn)))
print(("  right section cited        %3d  %s  %3d  %s"):format(cited, pct(cited, n), hcited, pct(hcited, hn)))
print(("  key sentence in the answer %3d  %s  %3d  %s"):format(keyed, pct(keyed, n), hkeyed, pct(hkeyed, hn)))
if min and right < min * n then
  print(("FAIL: %s of first citations are right, under %.0f%%"):format(pct(right, n), 100 * min))
  os.exit(1)
end
