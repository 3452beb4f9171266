-- moongate.eval.generate: golden-set candidates proposed offline from an index — one per
-- section of each document: a question from the section's heading, the section's first
-- key sentence as what the answer must contain, the document and section as the citation.
local sqlite = require "moongate.sqlite"
local chunker = require "moongate.retrieval.chunker"

local M = {}

local format = string.format

M.MIN_WORDS, M.MAX_WORDS = 6, 40   -- a key sentence: long enough to say something, short enough to quote

local function words(s) local n = 0 for _ in s:gmatch("%S+") do n = n + 1 end return n end

local function slug(s) return (s:lower():gsub("%.%w+$", ""):gsub("[^%w]+", "-"):gsub("^%-+", ""):gsub("%-+$", "")) end

-- A sentence that reads as a statement of fact: prose, not a heading, list, table, code or link list.
local function key_sentence(text)
  for _, s in ipairs(chunker.sentences(text)) do
    s = s:gsub("%s+", " "):gsub("^%s+", ""):gsub("%s+$", "")
    local n = words(s)
    if n >= M.MIN_WORDS and n <= M.MAX_WORDS and s:match("^[%u%d`\"']") and s:match("[.!]$")
      and not s:find("|", 1, true) and not s:match("^[-*>#]") and not s:find("```", 1, true) then
      return s
    end
  end
end

--- generate.from_index(dir[, o]) -> { case, ... } | nil, err   (o.tenant: one tenant's documents)
--- The cases have the docs golden set's shape: { id, question, doc, section, key, tags }.
function M.from_index(dir, o)
  o = o or {}
  local path = dir .. "/index.sqlite"
  local f = io.open(path, "rb")
  if not f then return nil, "no index at " .. dir .. " (build one: moongate index --index " .. dir .. " FILES...)" end
  f:close()
  local db, err = sqlite.open(path, { readonly = true })
  if not db then return nil, "index " .. dir .. ": " .. tostring(err) end
  local rows, qerr = db:query("SELECT c.doc_id, c.heading, c.text, d.title FROM chunks c JOIN documents d ON d.key = c.doc_key " ..
    "WHERE c.removed_version IS NULL AND (? IS NULL OR c.tenant = ?) ORDER BY c.doc_id, c.ordinal", o.tenant, o.tenant)
  db:close()
  if not rows then return nil, "index " .. dir .. ": " .. tostring(qerr) end
  local out, seen = {}, {}
  for _, r in ipairs(rows) do
    local title = r.title ~= "" and r.title or r.heading:match("^[^>]+") or r.doc_id
    local section = r.heading:match("([^>]+)$")
    section = section and section:gsub("^%s+", ""):gsub("%s+$", "") or nil
    local para = {}
    local function flush()
      local text = table.concat(para, "\n")
      para = {}
      if not section or section == title then return end
      local id = r.doc_id .. "\0" .. section
      if seen[id] then return end
      local key = key_sentence(text)
      if key then
        seen[id] = true
        out[#out + 1] = { id = format("gen-%s-%s", slug(r.doc_id:match("[^/]+$")), slug(section)),
          question = format("What does %s say about %s?", title, section:lower()), doc = r.doc_id, section = section,
          key = key, tags = { "generated" } }
      end
    end
    local in_code = false
    for line in (r.text .. "\n"):gmatch("([^\n]*)\n") do
      if line:match("^%s*```") or line:match("^%s*~~~") then in_code = not in_code
      elseif not in_code then
        local h = line:match("^#+%s+(.-)%s*$")
        if h then flush(); section = h
        else para[#para + 1] = line end
      end
    end
    flush()
  end
  return out
end

return M
