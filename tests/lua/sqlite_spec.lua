-- moongate.sqlite: connections, statements, rows, transactions and errors, on real files.
local sqlite = require "moongate.sqlite"
local ffi = require "ffi"

local function tmpdb()
  local path = os.tmpname()
  os.remove(path)
  return path .. ".db"
end

local function cleanup(path)
  for _, suffix in ipairs({ "", "-wal", "-shm" }) do os.remove(path .. suffix) end
end

describe("moongate.sqlite", function()
  local path, db
  before_each(function()
    path = tmpdb()
    db = assert(sqlite.open(path))
    assert(db:exec([[
      CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, score REAL, data BLOB);
      CREATE TABLE posts (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL REFERENCES users(id), body TEXT);
    ]]))
  end)
  after_each(function()
    db:close()
    cleanup(path)
  end)

  it("opens in WAL mode with synchronous=NORMAL and foreign keys on", function()
    assert.same({ journal_mode = "wal" }, db:first("PRAGMA journal_mode"))
    assert.same({ synchronous = 1 }, db:first("PRAGMA synchronous"))
    assert.same({ foreign_keys = 1 }, db:first("PRAGMA foreign_keys"))
    assert.same({ timeout = 5000 }, db:first("PRAGMA busy_timeout"))
  end)

  it("binds positional parameters and returns rows as tables", function()
    assert(db:query("INSERT INTO users (name, score) VALUES (?, ?)", "ada", 1.5))
    assert.equal(1, db:changes())
    assert.equal(1, db:last_insert_rowid())
    assert(db:query("INSERT INTO users (name, score) VALUES (?, ?)", "bob", nil))
    assert.equal(2, db:last_insert_rowid())
    local rows = assert(db:query("SELECT id, name, score FROM users ORDER BY id"))
    assert.same({ { id = 1, name = "ada", score = 1.5 }, { id = 2, name = "bob" } }, rows)
    assert.same({}, db:query("SELECT * FROM users WHERE id > ?", 10))
  end)

  it("first returns one row or nil", function()
    db:query("INSERT INTO users (name) VALUES ('ada')")
    assert.same({ name = "ada" }, db:first("SELECT name FROM users WHERE id = ?", 1))
    assert.is_nil(db:first("SELECT name FROM users WHERE id = ?", 99))
    assert.same({ n = 1 }, db:first("SELECT count(*) AS n FROM users"))
  end)

  it("binds named parameters from one table", function()
    db:query("INSERT INTO users (name, score) VALUES (:name, @score)", { name = "cy", score = 3 })
    db:query("INSERT INTO users (name, score) VALUES ($name, :score)", { name = "di" })
    assert.same({ { name = "cy", score = 3 }, { name = "di" } },
      db:query("SELECT name, score FROM users ORDER BY id"))
  end)

  it("keeps integers exact: numbers up to 2^53, int64 cdata beyond", function()
    local big = 9007199254740993LL
    db:query("INSERT INTO users (id, name) VALUES (?, ?)", big, "big")
    db:query("INSERT INTO users (id, name) VALUES (?, ?)", 2 ^ 53, "edge")
    local row = db:first("SELECT id FROM users WHERE name = 'big'")
    assert.equal("cdata", type(row.id))
    assert.is_true(ffi.istype("int64_t", row.id) and row.id == big)
    assert.is_true(db:last_insert_rowid() == 2 ^ 53)
    assert.equal(9007199254740992, db:first("SELECT id FROM users WHERE name = 'edge'").id)
    assert.equal("number", type(db:first("SELECT id FROM users WHERE name = 'edge'").id))
    local max = db:first("SELECT 9223372036854775807 AS m, -9223372036854775808 AS n")
    assert.is_true(max.m == 9223372036854775807LL)
    assert.is_true(max.n == -9223372036854775807LL - 1)
    assert.same({ a = 5, b = 1.5 }, db:first("SELECT ? AS a, ? AS b", ffi.new("int32_t", 5), ffi.new("double", 1.5)))
    assert.has_error(function() db:query("SELECT ?", ffi.new("char *")) end, "sqlite: parameter 1: cannot bind a cdata")
    assert.has_error(function() db:query("SELECT ?", 18446744073709551615ULL) end,
      "sqlite: parameter 1: integer out of range")
  end)

  it("stores strings with zero bytes, blobs and booleans", function()
    db:query("INSERT INTO users (name, data) VALUES (?, ?)", "a\0b", sqlite.blob("\255\0\1"))
    local row = db:first("SELECT name, data, typeof(data) AS t, length(name) AS n FROM users")
    assert.equal("a\0b", row.name)
    assert.equal("\255\0\1", row.data)
    assert.equal("blob", row.t)
    assert.same({ t = 1, f = 0 }, db:first("SELECT ? AS t, ? AS f", true, false))
    assert.same({ x = 0.25 }, db:first("SELECT ? AS x", 0.25))
  end)

  it("returns nil, err, code for constraint failures", function()
    assert(db:query("INSERT INTO users (name) VALUES ('ada')"))
    local ok, err, code = db:query("INSERT INTO users (name) VALUES ('ada')")
    assert.is_nil(ok)
    assert.equal("UNIQUE constraint failed: users.name", err)
    assert.equal("constraint", code)
    ok, err, code = db:query("INSERT INTO posts (user_id, body) VALUES (42, 'x')")
    assert.is_nil(ok)
    assert.equal("FOREIGN KEY constraint failed", err)
    assert.equal("constraint", code)
    ok, err = db:exec("INSERT INTO users (name) VALUES (NULL)")
    assert.is_nil(ok)
    assert.equal("NOT NULL constraint failed: users.name", err)
    ok, err = db:query("SELEC 1")
    assert.is_nil(ok)
    assert.equal('near "SELEC": syntax error', err)
  end)

  it("prepares statements: bind, step, rows, reset, finalize", function()
    local ins = assert(db:prepare("INSERT INTO users (name, score) VALUES (?, ?)"))
    for i = 1, 5 do
      assert(ins:bind("u" .. i, i * 10))
      assert.is_nil(ins:step())
      ins:reset()
    end
    ins:finalize()
    ins:finalize() -- idempotent
    assert.has_error(function() ins:step() end, "sqlite: statement is finalized")

    local sel = assert(db:prepare("SELECT name, score FROM users WHERE score >= :min ORDER BY id"))
    assert.same({ "name", "score" }, sel:columns())
    sel:bind({ min = 30 })
    local names = {}
    for row in sel:rows() do names[#names + 1] = row.name end
    assert.same({ "u3", "u4", "u5" }, names)
    -- rows() reset the statement: run it again with new bindings
    sel:bind({ min = 50 })
    assert.same({ name = "u5", score = 50 }, sel:step())
    assert.is_nil(sel:step())
    sel:reset()
    assert.same({ { name = "u5", score = 50 } }, sel:all())
    sel:finalize()
  end)

  it("commits a transaction and returns fn's results", function()
    local a, b = db:transaction(function(tx)
      assert(tx:query("INSERT INTO users (name) VALUES ('t1')"))
      return "done", 2
    end)
    assert.equal("done", a)
    assert.equal(2, b)
    assert.equal(true, db:transaction(function() end))
    assert.equal(true, db:transaction(function() return nil end))
    assert.same({ n = 1 }, db:first("SELECT count(*) AS n FROM users"))
    assert.is_true(db:autocommit())
  end)

  it("rolls back when fn raises or returns nil, err", function()
    local ok, err = db:transaction(function(tx)
      tx:query("INSERT INTO users (name) VALUES ('gone')")
      error("boom", 0)
    end)
    assert.is_nil(ok)
    assert.equal("boom", err)
    ok, err = db:transaction(function(tx)
      tx:query("INSERT INTO users (name) VALUES ('gone')")
      return tx:query("INSERT INTO users (name) VALUES ('gone')")
    end)
    assert.is_nil(ok)
    assert.equal("UNIQUE constraint failed: users.name", err)
    assert.same({ n = 0 }, db:first("SELECT count(*) AS n FROM users"))
    assert.is_true(db:autocommit())
  end)

  it("nests transactions as savepoints", function()
    db:transaction(function(tx)
      tx:query("INSERT INTO users (name) VALUES ('outer')")
      local ok, err = tx:transaction(function(inner)
        inner:query("INSERT INTO users (name) VALUES ('inner')")
        return nil, "inner failed"
      end)
      assert.is_nil(ok)
      assert.equal("inner failed", err)
      assert(tx:transaction(function(inner) return inner:query("INSERT INTO users (name) VALUES ('kept')") end))
    end)
    local names = {}
    for _, r in ipairs(db:query("SELECT name FROM users ORDER BY id")) do names[#names + 1] = r.name end
    assert.same({ "outer", "kept" }, names)
  end)

  it("reports busy after the timeout when another connection holds the write lock", function()
    local other = assert(sqlite.open(path, { busy_timeout = 0.05 }))
    assert(db:exec("BEGIN IMMEDIATE"))
    local t0 = os.clock()
    local ok, err, code = other:exec("BEGIN IMMEDIATE")
    assert.is_nil(ok)
    assert.equal("database is locked", err)
    assert.equal("busy", code)
    ok, err, code = other:transaction(function() end)
    assert.is_nil(ok)
    assert.equal("busy", code)
    assert(db:exec("COMMIT"))
    assert(other:transaction(function(tx) return tx:query("INSERT INTO users (name) VALUES ('w')") end))
    assert.same({ name = "w" }, db:first("SELECT name FROM users"))
    other:close()
    assert(os.clock() - t0 < 5)
  end)

  it("opens read-only connections that refuse writes", function()
    db:query("INSERT INTO users (name) VALUES ('r')")
    local ro = assert(sqlite.open(path, { readonly = true }))
    assert.same({ name = "r" }, ro:first("SELECT name FROM users"))
    local ok, err, code = ro:query("INSERT INTO users (name) VALUES ('x')")
    assert.is_nil(ok)
    assert.equal("attempt to write a readonly database", err)
    assert.equal("readonly", code)
    ro:close()
  end)

  it("fails to open a missing directory with nil, err", function()
    local d, err, code = sqlite.open("/nonexistent/dir/x.db")
    assert.is_nil(d)
    assert.equal("unable to open database file: /nonexistent/dir/x.db", err)
    assert.equal("cantopen", code)
  end)

  it("close is idempotent, finalizes statements, and raises on later use", function()
    local st = assert(db:prepare("SELECT 1 AS one"))
    db:close()
    db:close()
    assert.is_false(db:is_open())
    assert.has_error(function() db:query("SELECT 1") end, "sqlite: database is closed")
    assert.has_error(function() st:step() end, "sqlite: statement is finalized")
    assert.has_error(function() db:transaction(function() end) end, "sqlite: database is closed")
    db = assert(sqlite.open(path)) -- for after_each
  end)

  it("closes a connection that used an FTS5 table (FTS5 owns statements of its own)", function()
    assert(db:exec("CREATE VIRTUAL TABLE notes USING fts5(body)"))
    assert(db:query("INSERT INTO notes(body) VALUES (?)", "circuit breakers open after failures"))
    local rows = assert(db:query("SELECT body FROM notes WHERE notes MATCH ?", "breakers"))
    assert.are.equal("circuit breakers open after failures", rows[1].body)
    db:close()
    db = assert(sqlite.open(path))   -- for after_each
    assert.are.equal(1, db:first("SELECT count(*) AS n FROM notes").n)
  end)

  it("raises for caller bugs: bad values and argument counts", function()
    assert.has_error(function() db:query("SELECT ?, ?", {}, 1) end, "sqlite: parameter 1: cannot bind a table")
    assert.has_error(function() db:query("SELECT ?", print) end, "sqlite: parameter 1: cannot bind a function")
    assert.has_error(function() db:query("SELECT ?", 1, 2) end, "sqlite: 2 values for 1 parameters")
    assert.has_error(function() db:query("SELECT 1; SELECT 2") end)
    assert.has_error(function() sqlite.open(42) end, "sqlite.open: path must be a string")
  end)

  it("reuses query statements safely: bindings cleared, schema changes seen, no read lock kept", function()
    assert.same({ x = "a" }, db:first("SELECT ? AS x", "a"))
    assert.same({}, db:first("SELECT ? AS x")) -- same SQL, no value: NULL, not the old binding
    db:query("INSERT INTO users (name) VALUES ('s')")
    assert.same({ { id = 1, name = "s" } }, db:query("SELECT * FROM users"))
    assert(db:exec("ALTER TABLE users ADD COLUMN extra TEXT DEFAULT 'e'"))
    assert.same({ { id = 1, name = "s", extra = "e" } }, db:query("SELECT * FROM users"))
    -- first() stops after one row; its statement must not keep a read transaction open
    db:query("INSERT INTO users (name) VALUES ('t')")
    assert.same({ name = "s" }, db:first("SELECT name FROM users ORDER BY id"))
    local other = assert(sqlite.open(path))
    assert.same({ busy = 0, log = 0, checkpointed = 0 }, other:first("PRAGMA wal_checkpoint(TRUNCATE)"))
    other:close()
    for i = 1, 100 do -- more distinct statements than the cache holds
      assert.same({ v = i }, db:first("SELECT " .. i .. " AS v"))
    end
    assert.same({ x = 7 }, db:first("SELECT ? AS x", 7))
  end)

  it("leaves no statement or connection behind after garbage collection", function()
    collectgarbage()
    collectgarbage()
    local base = sqlite.stats()
    for _ = 1, 100 do
      local st = db:prepare("SELECT 1")
      st:step()
    end
    assert.equal(base.statements + 100, sqlite.stats().statements)
    for _ = 1, 20 do
      local other = assert(sqlite.open(path))
      other:prepare("SELECT 1")
    end
    assert.equal(base.connections + 20, sqlite.stats().connections)
    collectgarbage()
    collectgarbage()
    assert.same(base, sqlite.stats())
    local st = db:prepare("SELECT 1")
    st:finalize()
    local kept = db:prepare("SELECT 2")
    assert.equal(base.statements + 1, sqlite.stats().statements)
    db:close() -- finalizes kept
    assert.same({ connections = base.connections - 1, statements = base.statements }, sqlite.stats())
    assert.has_error(function() kept:step() end, "sqlite: statement is finalized")
    -- a leaked statement would keep the connection busy: closing and reopening works
    db:close()
    db = assert(sqlite.open(path))
    assert.same({ one = 1 }, db:first("SELECT 1 AS one"))
  end)
end)
