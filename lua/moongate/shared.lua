-- moongate.shared: a key/value store shared by every worker process (numbers, strings, booleans,
-- with TTLs in seconds and LRU eviction), as OpenResty's ngx.shared.DICT. Backed by core/shdict.c.
local ffi = require "ffi"

local type, error, tonumber = type, error, tonumber
local ffi_string = ffi.string

pcall(ffi.cdef, [[
typedef struct { int type; double num; size_t len; } mg_shdict_value;
int mg_shdict_init(size_t bytes);
int mg_shdict_open(const char *name, size_t len);
int mg_shdict_get(int dict, const char *key, size_t klen, mg_shdict_value *out, char *buf, size_t cap);
int mg_shdict_set(int dict, const char *key, size_t klen, int type, double num, const char *str,
                  size_t slen, double ttl, int mode, const char **err);
int mg_shdict_incr(int dict, const char *key, size_t klen, double by, int has_init, double init,
                   double ttl, double *out, const char **err);
int mg_shdict_incr_capped(int dict, const char *key, size_t klen, double by, double limit, double ttl,
                          double *out, const char **err);
int mg_shdict_delete(int dict, const char *key, size_t klen);
int mg_shdict_ttl(int dict, const char *key, size_t klen, double *ttl);
int mg_shdict_expire(int dict, const char *key, size_t klen, double ttl);
int mg_shdict_keys(int dict, const char *prefix, size_t plen, char *buf, size_t cap, size_t *used,
                   size_t *count);
int mg_shdict_flush(int dict);
int mg_shdict_stats(size_t *capacity, size_t *free_bytes, size_t *entries, uint64_t *evictions);
]])

local C = ffi.C
local MG_OK, MG_AGAIN, MG_DECLINED = 0, -2, -5
local NUMBER, STRING, BOOLEAN = 1, 2, 3
local SET, ADD, REPLACE = 0, 1, 2
local MAX_KEY = 65535

-- Scratch space reused by every call (one Lua state per process, calls never overlap).
local val = ffi.new("mg_shdict_value[1]")
local errp = ffi.new("const char *[1]")
local dout = ffi.new("double[1]")
local sz = ffi.new("size_t[4]")
local u64 = ffi.new("uint64_t[1]")
local buf_cap = 4096
local buf = ffi.new("char[?]", buf_cap)

local function grow(n)
  while buf_cap < n do buf_cap = buf_cap * 2 end
  buf = ffi.new("char[?]", buf_cap)
end

local function check_key(key, fname)
  if type(key) ~= "string" then
    error(("shared.%s: key must be a string, got %s"):format(fname, type(key)), 3)
  end
  local n = #key
  if n == 0 or n > MAX_KEY then
    error(("shared.%s: key must be 1 to %d bytes"):format(fname, MAX_KEY), 3)
  end
end

local function check_ttl(ttl, fname)
  if ttl == nil then return 0 end
  if type(ttl) ~= "number" or ttl < 0 or ttl ~= ttl then
    error(("shared.%s: ttl must be a number of seconds >= 0"):format(fname), 3)
  end
  return ttl
end

local function store(id, key, value, ttl, mode, fname)
  check_key(key, fname)
  ttl = check_ttl(ttl, fname)
  local tv, rc = type(value)
  if tv == "number" then
    rc = C.mg_shdict_set(id, key, #key, NUMBER, value, nil, 0, ttl, mode, errp)
  elseif tv == "string" then
    rc = C.mg_shdict_set(id, key, #key, STRING, 0, value, #value, ttl, mode, errp)
  elseif tv == "boolean" then
    rc = C.mg_shdict_set(id, key, #key, BOOLEAN, value and 1 or 0, nil, 0, ttl, mode, errp)
  elseif value == nil and mode == SET then
    C.mg_shdict_delete(id, key, #key)
    return true
  else
    error(("shared.%s: value must be a number, string or boolean, got %s"):format(fname, tv), 3)
  end
  if rc == MG_OK then return true end
  return nil, ffi_string(errp[0])
end

local dicts = {}

-- A dict's functions work both as d.get(k) and d:get(k): a key is never a table, so a table
-- first argument is the dict itself.
local function new_dict(name, id)
  local d = {}

  --- get(key) -> value | nil
  function d.get(key, k2)
    if type(key) == "table" then key = k2 end
    check_key(key, "get")
    local rc = C.mg_shdict_get(id, key, #key, val, buf, buf_cap)
    while rc == MG_AGAIN do
      grow(tonumber(val[0].len))
      rc = C.mg_shdict_get(id, key, #key, val, buf, buf_cap)
    end
    if rc ~= MG_OK then return nil end
    local t = val[0].type
    if t == NUMBER then return val[0].num end
    if t == STRING then return ffi_string(buf, val[0].len) end
    return val[0].num ~= 0
  end

  --- set(key, value, ttl?) -> true | nil, err     (value nil deletes)
  function d.set(key, value, ttl, t2)
    if type(key) == "table" then key, value, ttl = value, ttl, t2 end
    return store(id, key, value, ttl, SET, "set")
  end

  --- add(key, value, ttl?) -> true | nil, "exists"
  function d.add(key, value, ttl, t2)
    if type(key) == "table" then key, value, ttl = value, ttl, t2 end
    return store(id, key, value, ttl, ADD, "add")
  end

  --- replace(key, value, ttl?) -> true | nil, "not found"
  function d.replace(key, value, ttl, t2)
    if type(key) == "table" then key, value, ttl = value, ttl, t2 end
    return store(id, key, value, ttl, REPLACE, "replace")
  end

  --- incr(key, by?, init?, ttl?) -> new value | nil, err
  --- by defaults to 1. An absent key is created as init + by (with ttl) when init is given,
  --- else nil, "not found". An existing key keeps its ttl.
  function d.incr(key, by, init, ttl, extra)
    if type(key) == "table" then key, by, init, ttl = by, init, ttl, extra end
    check_key(key, "incr")
    if by == nil then by = 1 end
    if type(by) ~= "number" then error("shared.incr: by must be a number", 2) end
    if init ~= nil and type(init) ~= "number" then error("shared.incr: init must be a number", 2) end
    ttl = check_ttl(ttl, "incr")
    local rc = C.mg_shdict_incr(id, key, #key, by, init ~= nil and 1 or 0, init or 0, ttl, dout, errp)
    if rc == MG_OK then return dout[0] end
    return nil, ffi_string(errp[0])
  end

  --- incr_capped(key, by, limit, ttl?) -> new value | nil, "limit", current | nil, err
  --- Adds by only if the result stays <= limit, in one step under the store's lock, so N
  --- workers taking from one budget never take more than the limit. An absent key counts as 0
  --- and is created with ttl; an existing key keeps its ttl.
  function d.incr_capped(key, by, limit, ttl, extra)
    if type(key) == "table" then key, by, limit, ttl = by, limit, ttl, extra end
    check_key(key, "incr_capped")
    if type(by) ~= "number" then error("shared.incr_capped: by must be a number", 2) end
    if type(limit) ~= "number" then error("shared.incr_capped: limit must be a number", 2) end
    ttl = check_ttl(ttl, "incr_capped")
    local rc = C.mg_shdict_incr_capped(id, key, #key, by, limit, ttl, dout, errp)
    if rc == MG_OK then return dout[0] end
    if rc == MG_DECLINED then return nil, "limit", dout[0] end
    return nil, ffi_string(errp[0])
  end

  --- delete(key) -> true
  function d.delete(key, k2)
    if type(key) == "table" then key = k2 end
    check_key(key, "delete")
    C.mg_shdict_delete(id, key, #key)
    return true
  end

  --- ttl(key) -> seconds left (0 = never expires) | nil, "not found"
  function d.ttl(key, k2)
    if type(key) == "table" then key = k2 end
    check_key(key, "ttl")
    if C.mg_shdict_ttl(id, key, #key, dout) == MG_OK then return dout[0] end
    return nil, "not found"
  end

  --- expire(key, ttl) -> true | nil, "not found"    (ttl 0 = never expires)
  function d.expire(key, ttl, t2)
    if type(key) == "table" then key, ttl = ttl, t2 end
    check_key(key, "expire")
    ttl = check_ttl(ttl, "expire")
    if C.mg_shdict_expire(id, key, #key, ttl) == MG_OK then return true end
    return nil, "not found"
  end

  --- keys(prefix?) -> array of live keys (most recently used first)
  function d.keys(prefix, p2)
    if type(prefix) == "table" then prefix = p2 end
    prefix = prefix or ""
    if type(prefix) ~= "string" then error("shared.keys: prefix must be a string", 2) end
    local rc = C.mg_shdict_keys(id, prefix, #prefix, buf, buf_cap, sz, sz + 1)
    while rc == MG_AGAIN do
      grow(tonumber(sz[0]))
      rc = C.mg_shdict_keys(id, prefix, #prefix, buf, buf_cap, sz, sz + 1)
    end
    local out, pos, used = {}, 0, tonumber(sz[0])
    while pos < used do
      local n = ffi.cast("uint32_t *", buf + pos)[0]
      out[#out + 1] = ffi_string(buf + pos + 4, n)
      pos = pos + 4 + n
    end
    return out
  end

  --- flush_all(): removes every key of this dict
  function d.flush_all()
    C.mg_shdict_flush(id)
  end

  d.name = name
  return d
end

local M = {}

--- shared.dict(name) -> the named dict (created on first use; every worker sees the same one)
function M.dict(name)
  if type(name) ~= "string" then error("shared.dict: name must be a string", 2) end
  local d = dicts[name]
  if d then return d end
  local id = C.mg_shdict_open(name, #name)
  if id < 0 then
    error(("shared.dict: cannot open %q (names are 1 to 47 bytes, at most 64 dicts)"):format(name), 2)
  end
  d = new_dict(name, id)
  dicts[name] = d
  return d
end

--- shared.stats() -> {capacity, free, entries, evictions} for the whole region (bytes)
function M.stats()
  C.mg_shdict_stats(sz, sz + 1, sz + 2, u64)
  return { capacity = tonumber(sz[0]), free = tonumber(sz[1]), entries = tonumber(sz[2]),
    evictions = tonumber(u64[0]) }
end

-- The module's own get/set/... are the default dict's.
local default = M.dict("default")
for _, fname in ipairs({ "get", "set", "add", "replace", "incr", "incr_capped", "delete", "ttl", "expire", "keys", "flush_all" }) do
  M[fname] = default[fname]
end
M.name = "default"

return M
