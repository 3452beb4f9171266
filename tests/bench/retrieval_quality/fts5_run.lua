-- The peer: SQLite FTS5 bm25() over title + text, query = OR of the query's terms, as in
-- the collection's README. Writes a TREC run.
--   moongate run fts5_run.lua CORPUS.jsonl QUERIES.jsonl TOKENIZER(porter|unicode61) > run.trec
local sqlite = require "moongate.sqlite"
local json = require "moongate.json"
local corpus, queries, tokenizer = arg[1], arg[2], arg[3] or "porter"
local db = assert(sqlite.open(":memory:"))
assert(db:exec("CREATE VIRTUAL TABLE d USING fts5(id UNINDEXED, title, text, tokenize = '" .. tokenizer .. "')"))
local ins = db:prepare("INSERT INTO d (id, title, text) VALUES (?, ?, ?)")
assert(db:exec("BEGIN"))
for line in io.lines(corpus) do
  local o = json.decode(line)
  ins:bind(o._id, o.title or "", o.text); ins:step(); ins:reset()
end
assert(db:exec("COMMIT"))
local q = db:prepare("SELECT id, bm25(d) AS s FROM d WHERE d MATCH ? ORDER BY bm25(d) LIMIT 100")
local out = {}
for line in io.lines(queries) do
  local o = json.decode(line)
  local terms = {}
  for t in o.text:lower():gmatch("[%w]+") do terms[#terms + 1] = '"' .. t .. '"' end
  q:bind(table.concat(terms, " OR "))
  local rank = 0
  for row in q:rows() do
    rank = rank + 1
    out[#out + 1] = ("%s Q0 %s %d %.6f fts5-%s\n"):format(o._id, row.id, rank, -row.s, tokenizer)
  end
end
io.write(table.concat(out))
ins:finalize()
q:finalize()
db:exec("DROP TABLE d")   -- FTS5's own statements go with it, before the connection closes
db:close()
