-- moongate.feedback: what an application's users said about an answer (POST /v1/feedback), kept
-- in the trace store's database next to the request's trace, and turned into golden-set cases.
local sqlite = require "moongate.sqlite"
local json = require "moongate.json"

local M = {}
local Store = {}
Store.__index = Store

local format = string.format

local SCHEMA = [[
CREATE TABLE IF NOT EXISTS feedback (
  request_id TEXT PRIMARY KEY,        -- the answer's request (traces.request_id)
  tenant     TEXT,
  created    REAL NOT NULL,           -- Unix seconds
  rating     TEXT,                    -- as sent: "up", "down" or 1..5
  score      REAL,                    -- the rating as 0..1
  correction TEXT,
  tags       TEXT                     -- JSON array
);
CREATE INDEX IF NOT EXISTS feedback_created ON feedback(created);
]]

local FIELDS = { request_id = true, rating = true, correction = true, tags = true }
M.MAX_CORRECTION, M.MAX_TAGS, M.MAX_TAG = 20000, 20, 64

--- feedback.check(doc) -> { request_id, rating, score, correction, tags } | nil, err
--- rating: "up" (1), "down" (0) or a whole number 1..5 ((n - 1) / 4); a rating or a correction
--- is required.
function M.check(doc)
  if type(doc) ~= "table" or json.is_array(doc) then return nil, "the body must be a JSON object" end
  for k in pairs(doc) do
    if not FIELDS[k] then
      return nil, format("unknown field '%s' (expected request_id, rating, correction, tags)", tostring(k))
    end
  end
  local id = doc.request_id
  if type(id) ~= "string" or not id:match("^[%w%-_.:]+$") or #id > 128 then
    return nil, "request_id must be the request's id (the x-request-id header of its answer)"
  end
  local f = { request_id = id }
  local r = doc.rating
  if r ~= nil and r ~= json.null then
    if r == "up" then f.score = 1
    elseif r == "down" then f.score = 0
    elseif type(r) == "number" and r % 1 == 0 and r >= 1 and r <= 5 then f.score = (r - 1) / 4
    else return nil, 'rating must be "up", "down" or a whole number from 1 to 5' end
    f.rating = tostring(r)
  end
  local c = doc.correction
  if c ~= nil and c ~= json.null then
    if type(c) ~= "string" or not c:find("%S") then return nil, "correction must be a non-empty string" end
    if #c > M.MAX_CORRECTION then return nil, format("correction is longer than %d bytes", M.MAX_CORRECTION) end
    f.correction = c
  end
  if not f.rating and not f.correction then return nil, "give a rating, a correction, or both" end
  local tags = doc.tags
  f.tags = {}
  if tags ~= nil and tags ~= json.null then
    if type(tags) ~= "table" or (next(tags) ~= nil and not json.is_array(tags)) then return nil, "tags must be a list of strings" end
    if #tags > M.MAX_TAGS then return nil, format("at most %d tags", M.MAX_TAGS) end
    for i, t in ipairs(tags) do
      if type(t) ~= "string" or t == "" or #t > M.MAX_TAG then
        return nil, format("tags[%d] must be a string of 1 to %d bytes", i - 1, M.MAX_TAG)
      end
      f.tags[i] = t
    end
  end
  return f
end

--- feedback.open(path[, opts]) -> store | nil, err   (the trace store's file; opts.readonly)
function M.open(path, opts)
  opts = opts or {}
  local db, err = sqlite.open(path, { readonly = opts.readonly, busy_timeout = 2 })
  if not db then return nil, "feedback store " .. path .. ": " .. tostring(err) end
  if not opts.readonly then
    local ok, serr = db:exec(SCHEMA)
    if not ok then db:close(); return nil, "feedback store " .. path .. ": " .. tostring(serr) end
  end
  return setmetatable({ db = db, path = path }, Store)
end

--- store:request(id) -> { tenant =, status =, spans = OTLP JSON } of a stored trace | nil
function Store:request(id)
  local ok, rows = pcall(self.db.query, self.db, "SELECT tenant, status, spans FROM traces WHERE request_id = ?", id)
  return ok and rows and rows[1] or nil
end

--- feedback.release_of(spans_json) -> release, variant | nil: what the root span says served it
function M.release_of(spans)
  local list = type(spans) == "string" and json.decode(spans)
  if type(list) ~= "table" then return nil end
  for _, sp in ipairs(list) do
    if sp.parentSpanId == nil or sp.parentSpanId == "" then
      local a = {}
      for _, kv in ipairs(sp.attributes or {}) do a[kv.key] = kv.value and kv.value.stringValue end
      if a["moongate.release"] then return a["moongate.release"], a["moongate.release.variant"] end
      return nil
    end
  end
end

--- store:save(f, tenant) -> true | nil, err   (a second feedback for a request replaces the first)
function Store:save(f, tenant)
  local rows, err = self.db:query("INSERT OR REPLACE INTO feedback (request_id, tenant, created, rating, score, " ..
    "correction, tags) VALUES (?,?,?,?,?,?,?)", f.request_id, tenant, os.time(), f.rating, f.score, f.correction,
    assert(json.encode(json.array(f.tags))))
  if not rows then return nil, err end
  return true
end

--- store:rated{since =, tenant =} -> feedback rows joined with their traces, oldest first
function Store:rated(o)
  local where, args = { "f.created >= ?" }, { o.since or 0 }
  if o.tenant then where[#where + 1] = "f.tenant = ?"; args[#args + 1] = o.tenant end
  return self.db:query("SELECT f.*, t.raw, t.model, t.upstream, t.status FROM feedback f " ..
    "LEFT JOIN traces t ON t.request_id = f.request_id WHERE " .. table.concat(where, " AND ") ..
    " ORDER BY f.created, f.request_id", unpack(args))
end

function Store:close() self.db:close() end

-- ---- feedback -> golden-set candidates ------------------------------------------------------------

-- The question and the answer of a stored chat request: its last user message, its first choice.
local function question_answer(raw)
  local r = raw and json.decode(raw)
  if type(r) ~= "table" then return nil end
  local req = type(r.prompt) == "string" and json.decode(r.prompt)
  local q
  if type(req) == "table" and type(req.messages) == "table" then
    for i = #req.messages, 1, -1 do
      local m = req.messages[i]
      if type(m) == "table" and m.role == "user" and type(m.content) == "string" then q = m.content; break end
    end
  end
  local answer, cites = nil, {}
  local resp = type(r.response) == "string" and json.decode(r.response)
  if type(resp) == "table" then
    local c = type(resp.choices) == "table" and resp.choices[1]
    answer = type(c) == "table" and type(c.message) == "table" and c.message.content or nil
    for _, ct in ipairs(type(resp.citations) == "table" and resp.citations or {}) do
      local d = type(ct) == "table" and (ct.doc_id or ct.source)
      if type(d) == "string" then
        local dup = false
        for _, x in ipairs(cites) do dup = dup or x == d end
        if not dup then cites[#cites + 1] = d end
      end
    end
  end
  return q, answer, cites
end

--- feedback.candidate(row) -> a golden-set case (a table for one JSONL line) | nil, why skipped
--- A correction is what the answer should contain; an answer rated well without one is kept as
--- the expected answer; a poor rating without a correction is a case still to be written.
function M.candidate(row)
  local q, answer, cites = question_answer(row.raw)
  if not q then return nil, "no stored text" end
  local tags = json.decode(row.tags or "[]") or {}
  tags[#tags + 1] = "feedback"
  local c = { id = "fb-" .. row.request_id, question = q, tags = json.array(tags) }
  if row.correction then
    c.expect = { contains = row.correction }
  elseif row.score and row.score >= 0.75 and type(answer) == "string" then
    c.expect = { exact = answer }
    if #cites > 0 then c.citations = json.array(cites) end
  else
    tags[#tags] = "needs-expectation"
    table.insert(tags, #tags, "feedback")
  end
  c.notes = format("rating %s; answered: %s", row.rating or "-", type(answer) == "string" and answer:sub(1, 200) or "-")
  return c
end

return M
