-- moongate.sqlite: sqlite3 for Lua: WAL connections, prepared statements with bound parameters,
-- rows as tables, transactions. Calls are synchronous (they block the worker's loop while the
-- statement runs): keep them short on the request path and run bulk work elsewhere.
local ffi = require "ffi"
local core = require "moongate._sqlite"

local type, error, pcall, select, tostring, setmetatable = type, error, pcall, select, tostring, setmetatable
local unpack = unpack or table.unpack

pcall(ffi.cdef, [[
long long strtoll(const char *nptr, char **endptr, int base);
]])
local C = ffi.C
local int64_t = ffi.typeof("int64_t")
local uint64_t = ffi.typeof("uint64_t")

local blob_mt = { __name = "sqlite.blob" }

core.set_hooks(
  function(s) return int64_t(C.strtoll(s, nil, 10)) end,
  function(v)
    if ffi.istype(int64_t, v) then return (tostring(v):sub(1, -3)) end
    if ffi.istype(uint64_t, v) then return (tostring(v):sub(1, -4)) end
    return tonumber(v) -- other number cdata by value; nil for pointers and aggregates
  end,
  blob_mt)

local M = { version = core.version() }

local DB = core.db_mt.__index
local Stmt = core.stmt_mt.__index

--- sqlite.open(path, opts?) -> db | nil, err, code
--- opts.busy_timeout: seconds to wait for a lock (default 5); opts.readonly (default false).
--- Read-write connections use WAL, synchronous=NORMAL and enforce foreign keys.
function M.open(path, opts)
  if type(path) ~= "string" then error("sqlite.open: path must be a string", 2) end
  opts = opts or {}
  if type(opts) ~= "table" then error("sqlite.open: opts must be a table", 2) end
  local timeout = opts.busy_timeout or 5
  if type(timeout) ~= "number" or timeout < 0 then
    error("sqlite.open: busy_timeout must be a number of seconds >= 0", 2)
  end
  local db, err, code = core.open(path, opts.readonly and true or false, math.floor(timeout * 1000 + 0.5))
  if not db then return nil, err, code end
  local pragmas = opts.readonly and "PRAGMA foreign_keys=ON;"
    or "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;"
  local ok
  ok, err, code = db:exec(pragmas)
  if not ok then
    db:close()
    return nil, err, code
  end
  return db
end

--- sqlite.stats() -> {connections = n, statements = n}: open connections, and open statements
--- from db:prepare(), in this process (for leak checks).
M.stats = core.stats

--- sqlite.blob(s) -> a value that binds as a BLOB (a plain string binds as TEXT).
function M.blob(s)
  if type(s) ~= "string" then error("sqlite.blob: expected a string", 2) end
  return setmetatable({ s }, blob_mt)
end

local tx_depth = setmetatable({}, { __mode = "k" })

local function finish(db, ok_sql, undo_sql, ...)
  local n = select("#", ...)
  local ok, r1, r2 = ...
  if not ok or (r1 == nil and r2 ~= nil) then
    local err = ok and r2 or r1
    db:exec(undo_sql)
    return nil, type(err) == "string" and err or tostring(err)
  end
  local cok, cerr, ccode = db:exec(ok_sql)
  if not cok then
    db:exec(undo_sql)
    return nil, cerr, ccode
  end
  if n == 1 or (n == 2 and r1 == nil) then return true end -- committed: never look like a failure
  return select(2, ...)
end

--- db:transaction(fn, ...) -> fn's results | nil, err
--- Runs fn(db, ...) inside BEGIN IMMEDIATE; commits when it returns, rolls back and returns
--- nil, err when it raises or returns nil, err. Nested calls use savepoints.
function DB:transaction(fn, ...)
  if type(fn) ~= "function" then error("db:transaction: expected a function", 2) end
  if not self:is_open() then error("sqlite: database is closed", 2) end
  if self:autocommit() then
    local ok, err, code = self:exec("BEGIN IMMEDIATE")
    if not ok then return nil, err, code end
    return finish(self, "COMMIT", "ROLLBACK", pcall(fn, self, ...))
  end
  local depth = (tx_depth[self] or 0) + 1
  tx_depth[self] = depth
  local sp = "mg_tx_" .. depth
  local ok, err, code = self:exec("SAVEPOINT " .. sp)
  if not ok then
    tx_depth[self] = depth - 1
    return nil, err, code
  end
  local function done(...)
    tx_depth[self] = depth - 1
    return ...
  end
  return done(finish(self, "RELEASE " .. sp, "ROLLBACK TO " .. sp .. "; RELEASE " .. sp, pcall(fn, self, ...)))
end

--- stmt:rows() -> iterator over row tables; resets the statement at the end. Raises on a
--- sqlite error mid-iteration (an iterator has no other way to report it).
function Stmt:rows()
  return function()
    local row, err = self:step()
    if row then return row end
    if err then error(err, 2) end
    self:reset()
    return nil
  end
end

--- stmt:all() -> array of the remaining rows | nil, err, code
function Stmt:all()
  local out, n = {}, 0
  while true do
    local row, err, code = self:step()
    if not row then
      self:reset()
      if err then return nil, err, code end
      return out
    end
    n = n + 1
    out[n] = row
  end
end

M._db_methods = DB
M._stmt_methods = Stmt

return M
