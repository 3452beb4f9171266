-- moongate.eval.store: eval runs in sqlite — one row per run, per case and per score — so a later
-- eval can compare against a stored version and a report can be rebuilt from the database.
local sqlite = require "moongate.sqlite"
local json = require "moongate.json"

local M = {}
local Store = {}
Store.__index = Store

local SCHEMA = [[
CREATE TABLE IF NOT EXISTS runs (
  id             INTEGER PRIMARY KEY,
  started        REAL NOT NULL,       -- Unix seconds
  golden         TEXT NOT NULL,       -- the golden set's path
  golden_version TEXT NOT NULL,       -- its content hash
  pipeline       TEXT NOT NULL,       -- its name
  path           TEXT NOT NULL,
  version        TEXT NOT NULL,       -- the pipeline file's content hash
  summary        TEXT NOT NULL        -- JSON: moongate.eval.summary.of
);
CREATE TABLE IF NOT EXISTS cases (
  run_id     INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  case_id    TEXT NOT NULL,
  tags       TEXT,                    -- JSON array
  answer     TEXT,
  citations  TEXT,                    -- JSON array
  error      TEXT,
  latency_ms REAL,
  tokens_in  INTEGER,
  tokens_out INTEGER,
  cost       REAL,
  why        TEXT,                    -- JSON: why a scorer took points off
  PRIMARY KEY (run_id, case_id)
);
CREATE TABLE IF NOT EXISTS scores (
  run_id  INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
  case_id TEXT NOT NULL,
  scorer  TEXT NOT NULL,
  value   REAL NOT NULL,
  PRIMARY KEY (run_id, case_id, scorer)
);
CREATE INDEX IF NOT EXISTS runs_version ON runs(pipeline, version, golden_version);
]]

--- store.default_path() -> $MOONGATE_EVALS, else moongate-evals.db in the working folder
function M.default_path() return os.getenv("MOONGATE_EVALS") or "moongate-evals.db" end

--- store.open(path) -> store | nil, err
function M.open(path)
  local db, err = sqlite.open(path)
  if not db then return nil, "eval store " .. path .. ": " .. tostring(err) end
  local ok, serr = db:exec(SCHEMA)
  if not ok then db:close(); return nil, "eval store " .. path .. ": " .. tostring(serr) end
  return setmetatable({ db = db, path = path }, Store)
end

local function enc(v) return v ~= nil and assert(json.encode(v)) or nil end

--- store:save(run, results) -> run id. run: { started, golden, golden_version, pipeline, path, version, summary }
function Store:save(run, results)
  return self.db:transaction(function(db)
    local function q(...)
      local rows, err = db:query(...)
      if not rows then error(err, 0) end
      return rows
    end
    q("INSERT INTO runs (started, golden, golden_version, pipeline, path, version, summary) VALUES (?,?,?,?,?,?,?)",
      run.started, run.golden, run.golden_version, run.pipeline, run.path, run.version, enc(run.summary))
    local id = db:last_insert_rowid()
    for _, r in ipairs(results) do
      q("INSERT INTO cases (run_id, case_id, tags, answer, citations, error, latency_ms, tokens_in, tokens_out, cost, why) " ..
        "VALUES (?,?,?,?,?,?,?,?,?,?,?)", id, r.id, enc(json.array(r.tags or {})), r.answer, enc(json.array(r.citations or {})),
        r.error, r.latency_ms, r.tokens_in, r.tokens_out, r.cost, enc(json.object(r.why or {})))
      for name, v in pairs(r.scores) do
        q("INSERT INTO scores (run_id, case_id, scorer, value) VALUES (?,?,?,?)", id, r.id, name, v)
      end
    end
    return id
  end)
end

--- store:find(pipeline, version, golden_version) -> run row of the newest such run | nil
function Store:find(pipeline, version, golden_version)
  local rows = self.db:query("SELECT * FROM runs WHERE pipeline = ? AND version LIKE ? AND golden_version = ? " ..
    "ORDER BY id DESC LIMIT 1", pipeline, version .. "%", golden_version)
  return rows[1]
end

--- store:results(run_id) -> the run's results, in the shape runner.run returns them
function Store:results(run_id)
  local out, by_id = {}, {}
  for _, c in ipairs(self.db:query("SELECT * FROM cases WHERE run_id = ? ORDER BY rowid", run_id)) do
    local r = { id = c.case_id, tags = json.decode(c.tags or "[]") or {}, answer = c.answer,
                citations = json.decode(c.citations or "[]") or {}, error = c.error, latency_ms = c.latency_ms,
                tokens_in = c.tokens_in, tokens_out = c.tokens_out, cost = c.cost,
                why = json.decode(c.why or "{}") or {}, scores = {} }
    out[#out + 1], by_id[r.id] = r, r
  end
  for _, s in ipairs(self.db:query("SELECT case_id, scorer, value FROM scores WHERE run_id = ?", run_id)) do
    local r = by_id[s.case_id]
    if r then r.scores[s.scorer] = s.value end
  end
  return out
end

function Store:close() self.db:close() end

return M
