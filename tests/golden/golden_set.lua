-- tests/golden/golden_set.lua: reads a golden set of questions about the docs (JSON lines:
-- id, question, doc, section, key, tags) and checks it against the docs as they are now,
-- so that a set that no longer matches its pages fails loudly instead of scoring wrongly.
--
--   local golden = dofile(home .. "/tests/golden/golden_set.lua")
--   local cases = assert(golden.load(home .. "/tests/golden/docs.jsonl"))
--   local problems = golden.check(cases, home .. "/docs")   -- {} when the set is valid
local json = require "moongate.json"
local markdown = require "moongate.retrieval.markdown"

local M = {}

-- blocks a sentence can be quoted from (the extractive answerer never quotes code or tables)
local PROSE = { paragraph = true, list = true, quote = true }

--- load(path) -> cases | nil, err
function M.load(path)
  local f, err = io.open(path)
  if not f then return nil, err end
  local cases, n = {}, 0
  for line in f:lines() do
    n = n + 1
    if line:find("%S") then
      local case, derr = json.decode(line)
      if type(case) ~= "table" then
        f:close()
        return nil, ("%s:%d: %s"):format(path, n, derr or "not a JSON object")
      end
      case.line = n
      cases[#cases + 1] = case
    end
  end
  f:close()
  return cases
end

-- markdown soft-wraps lines: a key matches across a line break
local function squash(s) return (s:gsub("%s+", " ")) end

-- doc -> { [section heading] = prose text of the blocks directly under it }, or nil, err
local function sections_of(dir, doc)
  local f = io.open(dir .. "/" .. doc)
  if not f then return nil, "no such page" end
  local text = f:read("*a")
  f:close()
  local out = {}
  for _, b in ipairs(markdown.parse(text)) do
    local h = b.heading[#b.heading]
    if h then
      out[h] = out[h] or {}
      if PROSE[b.kind] then table.insert(out[h], squash(b.text)) end
    end
  end
  for h, parts in pairs(out) do out[h] = table.concat(parts, "\n") end
  return out
end

--- check(cases, docs_dir) -> problems: one line per fault ("docs.jsonl id routing-03: key
-- not in routing.md > Circuit breakers: ..."), empty when every case is well formed, its
-- section is a heading of its doc, and its key is verbatim prose of that section.
function M.check(cases, dir)
  local problems, pages, ids = {}, {}, {}
  local function bad(case, msg)
    problems[#problems + 1] = ("id %s (line %s): %s"):format(tostring(case.id), tostring(case.line), msg)
  end
  for _, c in ipairs(cases) do
    for _, field in ipairs { "id", "question", "doc", "section", "key" } do
      if type(c[field]) ~= "string" or not c[field]:find("%S") then bad(c, "missing " .. field) end
    end
    if type(c.id) == "string" then
      if ids[c.id] then bad(c, "duplicate id") end
      ids[c.id] = true
    end
    if type(c.doc) == "string" and type(c.section) == "string" and type(c.key) == "string" then
      local page = pages[c.doc]
      if page == nil then
        local err
        page, err = sections_of(dir, c.doc)
        pages[c.doc] = page or false
        if not page then bad(c, c.doc .. ": " .. err) end
      end
      if page then
        local text = page[c.section]
        if not text then
          bad(c, ("section %q is not a heading of %s"):format(c.section, c.doc))
        elseif not text:find(squash(c.key), 1, true) then
          bad(c, ("key not in the prose of %s > %s: %q"):format(c.doc, c.section, c.key))
        end
      end
    end
  end
  return problems
end

return M
