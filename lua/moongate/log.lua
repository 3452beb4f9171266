-- moongate.log: structured logs, one JSON object per line on stderr, with the request id of
-- the running task. Secrets (authorization headers, API keys, tokens) are redacted, never written.
local ffi = require "ffi"
local json = require "moongate.json"
local sched = require "moongate._sched"
local process = require "moongate._process"

pcall(ffi.cdef, "void mg_log_write(const char *line, size_t len);")
local C = ffi.C

local type, pairs, tostring, next = type, pairs, tostring, next
local gsub, lower, find = string.gsub, string.lower, string.find

local M = {}

local LEVELS = { debug = 10, info = 20, warn = 30, error = 40 }
local threshold = LEVELS[lower(os.getenv("MOONGATE_LOG_LEVEL") or "info")] or LEVELS.info
local pid = process.pid()

--- log.set_level(name): drop lines below this level ("debug", "info", "warn", "error").
function M.set_level(name)
  local v = LEVELS[name]
  if not v then error("log.set_level: unknown level '" .. tostring(name) .. "'", 2) end
  threshold = v
end

-- Field names whose values are secrets, whatever they hold.
local function secret_key(k)
  k = lower(k)
  return find(k, "authorization", 1, true) or find(k, "api[_%-]?key") or find(k, "secret", 1, true)
    or find(k, "password", 1, true) or find(k, "token", 1, true) or find(k, "cookie", 1, true)
    or k == "x-api-key"
end

-- Secrets that slip into free text: bearer tokens and provider keys.
local function scrub(s)
  s = gsub(s, "([Bb]earer%s+)[%w%-%._~%+/]+=*", "%1[redacted]")
  s = gsub(s, "sk%-[%w%-_]+", "sk-[redacted]")
  return s
end
M.scrub = scrub

local function clean(v, depth)
  local t = type(v)
  if t == "string" then return scrub(v) end
  if t == "number" or t == "boolean" or v == json.null then return v end
  if t == "table" then
    if depth > 5 then return "[table]" end
    local out = {}
    for k, x in pairs(v) do
      if type(k) == "string" and secret_key(k) then
        out[k] = "[redacted]"
      elseif type(k) == "string" or type(k) == "number" then
        out[k] = clean(x, depth + 1)
      end
    end
    return out
  end
  return tostring(v)
end

-- The JSON line for one entry (without the newline).
local function format(level, msg, fields)
  local entry = {}
  if fields ~= nil then
    if type(fields) ~= "table" then fields = { value = fields } end
    for k, v in pairs(fields) do
      if type(k) == "string" then
        entry[k] = secret_key(k) and "[redacted]" or clean(v, 1)
      end
    end
  end
  entry.time = sched.now()
  entry.level = level
  entry.pid = pid
  entry.msg = scrub(tostring(msg))
  if entry.request_id == nil and sched.current() then
    local ctx = sched.context()
    if ctx and ctx.request_id then entry.request_id = ctx.request_id end
  end
  local line, err = json.encode(entry)
  if not line then
    line = json.encode({ time = entry.time, level = level, pid = pid, msg = entry.msg,
      request_id = entry.request_id, log_error = err })
  end
  return line
end
M.format = format

local function write(level, msg, fields)
  if LEVELS[level] < threshold then return end
  local line = format(level, msg, fields)
  C.mg_log_write(line, #line)
end

--- log.info(msg, fields?) / log.warn / log.error / log.debug: one JSON line on stderr:
--- {"time":..., "level":..., "pid":..., "request_id":..., "msg":..., <fields>}.
function M.debug(msg, fields) return write("debug", msg, fields) end
function M.info(msg, fields) return write("info", msg, fields) end
function M.warn(msg, fields) return write("warn", msg, fields) end
function M.error(msg, fields) return write("error", msg, fields) end

return M
