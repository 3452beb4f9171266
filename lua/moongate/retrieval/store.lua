-- The on-disk index directory: sqlite (documents, chunks with metadata, versions), one folder
-- of saved BM25/vector files per version, CURRENT naming the version readers use, a write lock.
--
--   DIR/index.sqlite      documents, chunks (rows live from added_version until removed_version),
--                         versions, version_chunks (docno -> chunk of each version), meta
--   DIR/v<N>/bm25.bin     BM25 postings of version N (docno = row of version_chunks)
--   DIR/v<N>/vectors.bin  chunk vectors of version N (row = docno)
--   DIR/v<N>/emb.f32      the same vectors as raw float32, reused by the next version
--   DIR/CURRENT           "N\n": replaced by rename, so a reader sees the old or the new version
--   DIR/write.lock        flock()ed by the one writer
local ffi = require "ffi"

-- One declaration a cdef: another module may have declared some of these already (a second
-- declaration raises), and each must still be declared once.
for _, decl in ipairs {
  "int open(const char *path, int flags, ...);",
  "int close(int fd);",
  "int flock(int fd, int op);",
  "int mkdir(const char *path, unsigned int mode);",
  "int rename(const char *from, const char *to);",
  "int rmdir(const char *path);",
  "int unlink(const char *path);",
  "char *strerror(int errnum);",
  "int access(const char *path, int mode);",
  [[typedef struct mg_dir_stream mg_dir_stream;
    mg_dir_stream *opendir(const char *name);
    int closedir(mg_dir_stream *d);
    struct mg_dirent { uint64_t d_ino; int64_t d_off; unsigned short d_reclen; unsigned char d_type; char d_name[256]; };
    struct mg_dirent *readdir(mg_dir_stream *d);]],
} do
  pcall(ffi.cdef, decl)
end

local C = ffi.C
local M = {}

M.SCHEMA_VERSION = 1

local SCHEMA = [[
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
  key        INTEGER PRIMARY KEY,
  tenant     TEXT NOT NULL DEFAULT '',
  doc_id     TEXT NOT NULL,
  source     TEXT NOT NULL DEFAULT '',
  title      TEXT NOT NULL DEFAULT '',
  labels     TEXT NOT NULL DEFAULT '',
  metadata   TEXT NOT NULL DEFAULT '{}',
  hash       TEXT NOT NULL,
  version    INTEGER NOT NULL,
  updated_at REAL NOT NULL,
  UNIQUE (tenant, doc_id)
);
CREATE INDEX IF NOT EXISTS documents_source ON documents (source);
CREATE TABLE IF NOT EXISTS chunks (
  id              INTEGER PRIMARY KEY,
  doc_key         INTEGER NOT NULL,
  tenant          TEXT NOT NULL DEFAULT '',
  doc_id          TEXT NOT NULL,
  labels          TEXT NOT NULL DEFAULT '',
  ordinal         INTEGER NOT NULL,
  heading         TEXT NOT NULL DEFAULT '',
  text            TEXT NOT NULL,
  tokens          INTEGER NOT NULL,
  simhash         TEXT NOT NULL,
  added_version   INTEGER NOT NULL,
  removed_version INTEGER,
  -- the document's fields as of this chunk, so that a reader of an older version still
  -- sees them after the document row changed or went
  source          TEXT NOT NULL DEFAULT '',
  title           TEXT NOT NULL DEFAULT '',
  metadata        TEXT NOT NULL DEFAULT '{}',
  updated_at      REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks (doc_key);
CREATE INDEX IF NOT EXISTS chunks_live ON chunks (removed_version);
CREATE TABLE IF NOT EXISTS versions (
  version    INTEGER PRIMARY KEY,
  created_at REAL NOT NULL,
  documents  INTEGER NOT NULL,
  chunks     INTEGER NOT NULL,
  duplicates INTEGER NOT NULL,
  settings   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS version_chunks (
  version  INTEGER NOT NULL,
  docno    INTEGER NOT NULL,
  chunk_id INTEGER NOT NULL,
  also     TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (version, docno)
);
]]

local function errno_msg()
  return ffi.string(C.strerror(ffi.errno()))
end

function M.mkdir(path)
  if C.mkdir(path, tonumber("755", 8)) ~= 0 and ffi.errno() ~= 17 then
    return nil, "cannot create " .. path .. ": " .. errno_msg()
  end
  return true
end

--- Entries of a folder (names, without "." and ".."), or nil, err. kind: "dir"|"file"|nil
function M.list_dir(path)
  local d = C.opendir(path)
  if d == nil then return nil, errno_msg() end
  local out = {}
  while true do
    local e = C.readdir(d)
    if e == nil then break end
    local name = ffi.string(e.d_name)
    if name ~= "." and name ~= ".." then
      local t = e.d_type
      out[#out + 1] = { name = name, kind = t == 4 and "dir" or t == 8 and "file" or t == 10 and "link" or nil }
    end
  end
  C.closedir(d)
  table.sort(out, function(a, b) return a.name < b.name end)
  return out
end

--- Whether a path exists. Never by opening it: closing any descriptor of the sqlite file
-- would drop this process's POSIX locks on it, and sqlite's with them.
function M.exists(path)
  return C.access(path, 0) == 0
end

function M.is_dir(path)
  local d = C.opendir(path)
  if d == nil then return false end
  C.closedir(d)
  return true
end

function M.remove_tree(path)
  local entries = M.list_dir(path)
  if entries then
    for _, e in ipairs(entries) do
      local p = path .. "/" .. e.name
      if e.kind == "dir" then M.remove_tree(p) else C.unlink(p) end
    end
    C.rmdir(path)
  else
    C.unlink(path)
  end
end

function M.rename(from, to)
  if C.rename(from, to) ~= 0 then return nil, "cannot rename " .. from .. ": " .. errno_msg() end
  return true
end

function M.read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

--- Write a file so that readers see the old or the new content, never a part: a temporary
-- file beside it, then rename.
function M.write_file_atomic(path, data)
  local tmp = path .. ".tmp"
  local f, err = io.open(tmp, "wb")
  if not f then return nil, err end
  f:write(data)
  f:close()
  return M.rename(tmp, path)
end

--- The version readers should use (from DIR/CURRENT), or nil when nothing was committed.
function M.current_version(dir)
  local s = M.read_file(dir .. "/CURRENT")
  return s and tonumber(s:match("^(%d+)")) or nil
end

--- Open (creating when asked) the index sqlite database of DIR.
-- opts.create: create DIR and the schema if missing. Returns db | nil, err.
function M.open_db(dir, opts)
  local sqlite = require "moongate.sqlite"
  opts = opts or {}
  if not M.is_dir(dir) then
    if not opts.create then return nil, "no index at " .. dir end
    local ok, err = M.mkdir(dir)
    if not ok then return nil, err end
  end
  local path = dir .. "/index.sqlite"
  if not opts.create and not M.exists(path) then return nil, "no index at " .. dir end
  local ok, db = pcall(sqlite.open, path)
  if not ok or not db then return nil, "cannot open " .. path .. ": " .. tostring(db) end
  db:exec("PRAGMA busy_timeout = 10000")
  if opts.create then
    db:exec(SCHEMA)
    local rows = db:query("SELECT value FROM meta WHERE key = 'schema'")
    if #rows == 0 then
      db:query("INSERT INTO meta (key, value) VALUES ('schema', ?)", tostring(M.SCHEMA_VERSION))
    end
  end
  local rows = db:query("SELECT value FROM meta WHERE key = 'schema'")
  if #rows == 0 or tonumber(rows[1].value) ~= M.SCHEMA_VERSION then
    db:close()
    return nil, "unsupported index format at " .. dir
  end
  return db
end

--- Take the writer lock of DIR (one writer at a time; readers never wait for it).
-- Returns a release function | nil, "index is being written".
function M.lock(dir, wait)
  local fd = C.open(dir .. "/write.lock", 64 + 2, ffi.new("int", tonumber("644", 8))) -- O_CREAT|O_RDWR
  if fd < 0 then return nil, "cannot lock index: " .. errno_msg() end
  local LOCK_EX, LOCK_NB, LOCK_UN = 2, 4, 8
  if C.flock(fd, wait and LOCK_EX or LOCK_EX + LOCK_NB) ~= 0 then
    C.close(fd)
    return nil, "index is being written"
  end
  local released = false
  return function()
    if released then return end
    released = true
    C.flock(fd, LOCK_UN)
    C.close(fd)
  end
end

--- db:query that raises on error (a failing statement here is a broken index or disk).
function M.query(db, sql, ...)
  local rows, err = db:query(sql, ...)
  if not rows then error("index database: " .. tostring(err), 2) end
  return rows
end

function M.exec(db, sql)
  local ok, err = db:exec(sql)
  if not ok then error("index database: " .. tostring(err), 2) end
  return true
end

function M.get_meta(db, key)
  local rows = M.query(db, "SELECT value FROM meta WHERE key = ?", key)
  return rows[1] and rows[1].value or nil
end

function M.set_meta(db, key, value)
  M.query(db, "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    key, value)
end

--- Labels as stored: sorted, unique, comma-separated ("" for none).
function M.labels_key(labels)
  if labels == nil or labels == "" then return "" end
  if type(labels) == "string" then
    local t = {}
    for l in labels:gmatch("[^,]+") do t[#t + 1] = l end
    labels = t
  end
  local seen, out = {}, {}
  for _, l in ipairs(labels) do
    l = tostring(l):match("^%s*(.-)%s*$")
    if l ~= "" and not seen[l] then seen[l] = true; out[#out + 1] = l end
  end
  table.sort(out)
  return table.concat(out, ",")
end

function M.split_labels(key)
  local t = {}
  for l in key:gmatch("[^,]+") do t[#t + 1] = l end
  return t
end

return M
