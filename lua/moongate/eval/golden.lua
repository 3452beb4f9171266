-- moongate.eval.golden: golden sets, versioned JSONL files of cases, read and checked line by line
-- into one shape the runner and scorers share. See docs/evals.md for the format.
local json = require "moongate.json"
local reload = require "moongate.reload"

local M = {}

local format = string.format

local EXPECT = { exact = true, contains = true, regex = true, schema = true }
local FIELDS = { id = true, question = true, messages = true, expect = true, citations = true, tags = true,
                 doc = true, section = true, key = true, notes = true }

-- A JSON array, or a Lua sequence (cases built in Lua carry no array mark).
local function is_list(v)
  if json.is_array(v) then return true end
  local n = #v
  for k in pairs(v) do
    if type(k) ~= "number" or k < 1 or k > n or k % 1 ~= 0 then return false end
  end
  return true
end
M.is_list = is_list

local function string_list(v, what)
  if type(v) == "string" then return { v } end
  if type(v) ~= "table" or not is_list(v) then return nil, what .. " must be a list of strings" end
  for i, s in ipairs(v) do
    if type(s) ~= "string" or s == "" then return nil, format("%s[%d] must be a non-empty string", what, i) end
  end
  return v
end

-- The question a case asks: its question, or the last user message of its messages.
local function question_of(messages)
  for i = #messages, 1, -1 do
    local m = messages[i]
    if m.role == "user" and type(m.content) == "string" then return m.content end
  end
end

--- golden.case(t) -> case | nil, err: one decoded line made into a case:
--- { id, question, messages?, expect = { exact?, contains = {...}?, regex?, schema? },
---   citations = { { doc =, section = }, ... } | nil, tags = {...} }
--- The second shape, { id, question, doc, section, key, tags }, reads as
--- expect.contains = { key } and citations = { { doc = doc, section = section } }.
function M.case(t)
  if type(t) ~= "table" or (json.is_array(t) or (#t > 0)) then return nil, "a case must be a JSON object" end
  for k in pairs(t) do
    if not FIELDS[k] then
      return nil, format("unknown field '%s' (expected id, question or messages, expect, citations, tags)", tostring(k))
    end
  end
  local id = t.id
  if type(id) == "number" then id = format("%d", id) end
  if type(id) ~= "string" or id == "" then return nil, "id must be a non-empty string" end
  local c = { id = id, tags = {}, expect = {} }
  if t.messages ~= nil then
    if type(t.messages) ~= "table" or #t.messages == 0 then return nil, "messages must be a non-empty array" end
    for i, m in ipairs(t.messages) do
      if type(m) ~= "table" or type(m.role) ~= "string" or type(m.content) ~= "string" then
        return nil, format("messages[%d] must be { role =, content = } with string values", i)
      end
    end
    c.messages = t.messages
    c.question = question_of(t.messages)
    if not c.question then return nil, "messages has no user message" end
  end
  if t.question ~= nil then
    if type(t.question) ~= "string" or not t.question:find("%S") then return nil, "question must be a non-empty string" end
    c.question = t.question
  end
  if not c.question then return nil, "a case needs a question or messages" end
  if t.expect ~= nil then
    if type(t.expect) ~= "table" or json.is_array(t.expect) or #t.expect > 0 then return nil, "expect must be an object" end
    for k, v in pairs(t.expect) do
      if not EXPECT[k] then return nil, format("expect: unknown kind '%s' (expected exact, contains, regex, schema)", tostring(k)) end
      if k == "exact" and type(v) ~= "string" then return nil, "expect.exact must be a string" end
      if k == "regex" then
        if type(v) ~= "string" or v == "" then return nil, "expect.regex must be a non-empty pattern" end
        local ok, err = pcall(string.find, "", v)
        if not ok then return nil, "expect.regex: " .. tostring(err):gsub("^.-: ", "") end
      end
      if k == "schema" then
        if type(v) ~= "table" then return nil, "expect.schema must be a JSON schema object" end
        local ok, err = require("moongate.eval.schema").check_schema(v)
        if not ok then return nil, "expect.schema: " .. err end
      end
    end
    c.expect.exact, c.expect.regex, c.expect.schema = t.expect.exact, t.expect.regex, t.expect.schema
    if t.expect.contains ~= nil then
      local l, err = string_list(t.expect.contains, "expect.contains")
      if not l then return nil, err end
      c.expect.contains = l
    end
  end
  if t.key ~= nil then
    if type(t.key) ~= "string" or t.key == "" then return nil, "key must be a non-empty string" end
    c.expect.contains = c.expect.contains or {}
    table.insert(c.expect.contains, t.key)
  end
  if t.citations ~= nil then
    local l, err = string_list(t.citations, "citations")
    if not l then return nil, err end
    c.citations = {}
    for i, d in ipairs(l) do c.citations[i] = { doc = d } end
  end
  if t.doc ~= nil then
    if type(t.doc) ~= "string" or t.doc == "" then return nil, "doc must be a non-empty string" end
    if t.section ~= nil and type(t.section) ~= "string" then return nil, "section must be a string" end
    c.citations = c.citations or {}
    table.insert(c.citations, { doc = t.doc, section = t.section })
  elseif t.section ~= nil then
    return nil, "section needs doc"
  end
  if t.tags ~= nil then
    local l, err = string_list(t.tags, "tags")
    if not l then return nil, err end
    c.tags = l
  end
  return c
end

--- golden.load(path) -> { path =, version = content hash, cases = {...} } | nil, err
--- Blank lines and lines starting with // are skipped; an error names the line.
function M.load(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, "cannot read golden set " .. path .. ": " .. tostring(err):gsub("^[^:]*: ", "") end
  local src = f:read("*a")
  f:close()
  local cases, seen, n = {}, {}, 0
  for line in (src .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    if line:find("%S") and not line:match("^%s*//") then
      local t, derr = json.decode(line)
      if t == nil then return nil, format("%s:%d: %s", path, n, derr) end
      local c, cerr = M.case(t)
      if not c then return nil, format("%s:%d: %s", path, n, cerr) end
      if seen[c.id] then return nil, format("%s:%d: id '%s' is used twice (first on line %d)", path, n, c.id, seen[c.id]) end
      seen[c.id] = n
      c.line = n
      cases[#cases + 1] = c
    end
  end
  if #cases == 0 then return nil, path .. ": the golden set has no cases" end
  return { path = path, version = reload.hash(src), cases = cases }
end

return M
