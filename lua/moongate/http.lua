-- moongate.http: a non-blocking HTTP client for tasks (libcurl multi on the worker's loop).
-- Validates arguments (raising for caller bugs) and shapes the response object.
local core = require "moongate._http"
local ffi = require "ffi"
local C = ffi.C

local type, pairs, tostring, error, setmetatable = type, pairs, tostring, error, setmetatable
local math_floor = math.floor
local concat = table.concat
local find = string.find
local BUFFER_MT = getmetatable(require("string.buffer").new())

local M = {}

local DEFAULT_TIMEOUT = 60        -- seconds until the response (headers, and body unless stream)
local DEFAULT_IDLE = 30           -- seconds res:read() waits for the next chunk

local USER_AGENT = "moongate/" .. require("moongate.base").version

local OPTIONS = {
  method = true, url = true, headers = true, body = true, timeout = true,
  connect_timeout = true, stream = true, redirects = true, max_body = true, buffer = true,
  ca_file = true, insecure = true, decompress = true,
}

-- level 3: the caller of http.request; helpers of request pass 4
local function bad(msg, level)
  error("http.request: " .. msg, level or 3)
end

-- Budgets computed from deadlines may come out negative: that means no time left, not a bug.
local function check_seconds(opts, k)
  local v = opts[k]
  if v == nil then return nil end
  if type(v) ~= "number" or v ~= v then bad(k .. " must be a number of seconds", 4) end
  return v > 0 and v or 0
end

local function check_count(opts, k, min)
  local v = opts[k]
  if v == nil then return nil end
  if type(v) ~= "number" or v ~= math_floor(v) or v < min then
    bad(k .. " must be an integer >= " .. min, 4)
  end
  return v
end

-- Header names already checked, to their lower case: the same few go out on every call. Bounded,
-- so names from clients (forwarded x-* headers) cannot grow it for ever.
local valid_names, nvalid = {}, 0

-- {name = value} -> {"Name: value", ...} for curl, plus our defaults. Names are RFC 9110 tokens;
-- values may not hold CR, LF or NUL (header injection).
local function header_lines(headers, has_body)
  local lines, seen = {}, {}
  if headers ~= nil then
    if type(headers) ~= "table" then bad("headers must be a table", 4) end
    for name, value in pairs(headers) do
      local lname = valid_names[name]
      if lname == nil then
        if type(name) ~= "string" or not name:match("^[%w!#$%%&'*+%-.^_`|~]+$") then
          bad("bad header name " .. tostring(name), 4)
        end
        lname = name:lower()
        if nvalid < 1024 then valid_names[name] = lname; nvalid = nvalid + 1 end
      end
      local tv = type(value)
      if tv == "number" then
        value = tostring(value)
      elseif tv ~= "string" then
        bad("header " .. name .. " must be a string or a number", 4)
      end
      -- three plain searches: compiled, where a character class runs the pattern matcher per byte
      if find(value, "\n", 1, true) or find(value, "\r", 1, true) or find(value, "\0", 1, true) then
        bad("header " .. name .. " holds CR, LF or NUL", 4)
      end
      if lname == "content-length" or lname == "transfer-encoding" or lname == "host" then
        bad("header " .. name .. " is set by the client itself", 4)
      end
      seen[lname] = true
      -- curl drops "Name:" (empty value) unless written "Name;"
      lines[#lines + 1] = value == "" and (name .. ";") or (name .. ": " .. value)
    end
  end
  if not seen["user-agent"] then lines[#lines + 1] = "User-Agent: " .. USER_AGENT end
  -- curl would send Expect: 100-continue for large bodies and wait for the server's go-ahead
  if not seen["expect"] then lines[#lines + 1] = "Expect:" end
  -- and would label a body application/x-www-form-urlencoded
  if has_body and not seen["content-type"] then lines[#lines + 1] = "Content-Type:" end
  return lines
end

-- A streamed response: res.status, res.headers, res:read(), res:close().
local Stream = {}
Stream.__index = Stream

-- res:read([idle_timeout = 30]) -> chunk | nil (end of body) | nil, err
-- An idle timeout leaves the stream open (read again, or close); the task's deadline or its
-- cancellation aborts the transfer.
function Stream:read(idle_timeout)
  if idle_timeout == nil then
    idle_timeout = DEFAULT_IDLE
  elseif type(idle_timeout) ~= "number" or idle_timeout ~= idle_timeout then
    error("res:read: idle_timeout must be a number of seconds", 2)
  elseif idle_timeout < 0 then
    idle_timeout = 0
  end
  return core.read(self._s, idle_timeout)
end

-- res:read_all([idle_timeout = 30]) -> the rest of the body | nil, err
function Stream:read_all(idle_timeout)
  local parts = {}
  while true do
    local chunk, err = self:read(idle_timeout)
    if chunk == nil then
      if err then return nil, err end
      return concat(parts)
    end
    parts[#parts + 1] = chunk
  end
end

-- res:close(): abort the transfer if it still runs; idempotent (the GC does it too).
function Stream:close()
  core.close(self._s)
end

--[[ http.request{method, url, headers, body, timeout, connect_timeout, stream, redirects,
  max_body, buffer, ca_file, insecure, decompress} -> res | nil, err, detail
  res.status (integer), res.headers (lower-case names -> string), res.body (unless stream),
  res.info {reused, http_version, connect, tls, first_byte, total (unless stream)}. ]]
function M.request(opts)
  if type(opts) ~= "table" then error("http.request: expects a table of options", 2) end
  for k in pairs(opts) do
    if not OPTIONS[k] then bad("unknown option " .. tostring(k)) end
  end
  local url = opts.url
  if type(url) ~= "string" then bad("url must be a string") end
  local method = opts.method or "GET"
  if type(method) ~= "string" or not method:match("^[A-Z]+$") then
    bad("method must be an upper-case HTTP method such as \"GET\"")
  end
  local body = opts.body
  if body ~= nil and type(body) ~= "string" and getmetatable(body) ~= BUFFER_MT then
    bad("body must be a string or a string.buffer")
  end
  if body == nil and (method == "POST" or method == "PUT" or method == "PATCH") then body = "" end
  if body ~= nil and method == "HEAD" then bad("HEAD cannot carry a body") end
  local stream = opts.stream
  if stream ~= nil and type(stream) ~= "boolean" then bad("stream must be a boolean") end
  local timeout = check_seconds(opts, "timeout") or DEFAULT_TIMEOUT
  local connect_timeout = check_seconds(opts, "connect_timeout")
  if connect_timeout == 0 then connect_timeout = 0.001 end   -- curl reads 0 as its default
  local redirects = check_count(opts, "redirects", 0)
  local max_body = check_count(opts, "max_body", 1)
  local buffer = check_count(opts, "buffer", 1)
  local ca_file, insecure = opts.ca_file, opts.insecure
  if ca_file ~= nil and type(ca_file) ~= "string" then bad("ca_file must be a path") end
  if insecure ~= nil and type(insecure) ~= "boolean" then bad("insecure must be a boolean") end
  local decompress = opts.decompress
  if decompress ~= nil and type(decompress) ~= "boolean" then bad("decompress must be a boolean") end

  local lines = header_lines(opts.headers, body ~= nil)
  if body ~= nil and type(body) ~= "string" then
    -- a string.buffer: its bytes are handed over by pointer and copied by the client at once
    local p, n = body:ref()
    if n == 0 then
      body = ""
    else
      C.mg_http_stage_body(p, n)
      body = true
    end
  end
  local status, headers, b, info = core.request(method, url, lines,
    body, timeout, connect_timeout, stream, redirects, max_body, buffer, ca_file, insecure,
    decompress)
  if not status then
    if b == nil then return nil, headers end
    return nil, headers, b
  end
  if stream then
    return setmetatable({ status = status, headers = headers, info = info, _s = b }, Stream)
  end
  return { status = status, headers = headers, body = b, info = info }
end

-- http.get(url [, opts]) and http.post(url, body [, opts]): shorthands for request.
function M.get(url, opts)
  local o = {}
  if opts then for k, v in pairs(opts) do o[k] = v end end
  o.method, o.url = "GET", url
  return M.request(o)
end

function M.post(url, body, opts)
  local o = {}
  if opts then for k, v in pairs(opts) do o[k] = v end end
  o.method, o.url, o.body = "POST", url, body
  return M.request(o)
end

-- http.stats() -> {active, handles, streams, sockets, paused, buffered, connects, requests}
M.stats = core.stats

-- pcall: a second require after package.loaded was cleared must not fail on a cdef repeat
pcall(ffi.cdef, [[
int mg_http_configure(long max_host_connections, long max_connections, long max_idle);
void mg_http_stage_body(const char *p, size_t n);
]])

local LIMITS = { max_host_connections = 0, max_connections = 0, max_idle = 0 }

-- http.configure{max_host_connections, max_connections, max_idle}: this worker's connection
-- limits (0 = none / libcurl's default); keys left out keep their value. Returns the limits.
function M.configure(opts)
  if type(opts) ~= "table" then error("http.configure: expects a table", 2) end
  for k, v in pairs(opts) do
    if LIMITS[k] == nil then error("http.configure: unknown option " .. tostring(k), 2) end
    if type(v) ~= "number" or v ~= math_floor(v) or v < 0 then
      error("http.configure: " .. k .. " must be an integer >= 0", 2)
    end
  end
  for k in pairs(LIMITS) do
    if opts[k] ~= nil then LIMITS[k] = opts[k] end
  end
  C.mg_http_configure(LIMITS.max_host_connections, LIMITS.max_connections, LIMITS.max_idle)
  return { max_host_connections = LIMITS.max_host_connections,
           max_connections = LIMITS.max_connections, max_idle = LIMITS.max_idle }
end

return M
