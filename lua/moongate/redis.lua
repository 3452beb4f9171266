-- moongate.redis: a non-blocking Redis client. A call waits in the calling task (other requests
-- run meanwhile) and ends at the client's timeout or the task's deadline, whichever comes first.
-- Backed by core/redis_client.c (hiredis's async API on the worker's libev loop).
--
--   local r = assert(moongate.redis.connect("redis://:secret@127.0.0.1:6379/2"))
--   r:call("SET", "k", 1)                      --> "OK"
--   r:call("GET", "missing")                   --> false  (a nil reply, as Redis's Lua sees it)
--   r:eval("return redis.call('INCRBY', KEYS[1], ARGV[1])", { "n" }, { 5 })   --> 5
--   r:call("GET", "k")                         --> nil, "redis: Connection refused" when it is down
--
-- The client connects on its first call and again after its connection dropped; a forked worker
-- opens its own connection.
local _redis = require "moongate._redis"

local M = {}

local Client = {}
Client.__index = Client

local type, tonumber = type, tonumber

local function unescape(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

--- redis.parse(url) -> { host, port, path, user, password, db } | nil, err
--- redis://[[user]:password@]host[:port][/db], unix://[[user]:password@]/path/to/redis.sock[?db=N]
function M.parse(url)
  if type(url) ~= "string" then return nil, "redis url must be a string" end
  local scheme, rest = url:match("^(%a[%w+]*)://(.*)$")
  if scheme ~= "redis" and scheme ~= "unix" then
    return nil, "redis url must start with redis:// or unix:// (got '" .. url .. "')"
  end
  local o = {}
  local auth, after = rest:match("^([^@/]*)@(.*)$")
  if auth then
    local user, pass = auth:match("^([^:]*):(.*)$")
    if user then
      o.user = user ~= "" and unescape(user) or nil
      o.password = unescape(pass)
    else
      o.password = unescape(auth)
    end
    rest = after
  end
  if scheme == "unix" then
    local path, q = rest:match("^([^?]+)%??(.*)$")
    if not path or path:sub(1, 1) ~= "/" then return nil, "unix redis url needs an absolute socket path: " .. url end
    o.path = path
    local db = q and q:match("db=(%d+)")
    o.db = tonumber(db or 0)
    return o
  end
  local hostport, db = rest:match("^([^/]*)/?(.*)$")
  local host, port = hostport:match("^%[(.+)%]:?(%d*)$")   -- [::1]:6379
  if not host then host, port = hostport:match("^([^:]+):?(%d*)$") end
  if not host then return nil, "redis url has no host: " .. url end
  o.host = host
  o.port = tonumber(port ~= "" and port or 6379)
  if o.port < 1 or o.port > 65535 then return nil, "redis url port out of range: " .. url end
  if db ~= "" then
    o.db = tonumber(db:match("^(%d+)$"))
    if not o.db then return nil, "redis url database must be a number: " .. url end
  else
    o.db = 0
  end
  return o
end

--- redis.connect(url, opts?) -> client | nil, err. opts: timeout (seconds per call, 1),
--- connect_timeout (1). Nothing is sent until the first call.
function M.connect(url, opts)
  opts = opts or {}
  local o, err = M.parse(url)
  if not o then return nil, err end
  local timeout = opts.timeout or 1
  if type(timeout) ~= "number" or timeout <= 0 then return nil, "redis timeout must be a positive number of seconds" end
  local h = _redis.new(o.host, o.port, o.path, o.user, o.password, o.db, opts.connect_timeout or 1)
  return setmetatable({ h = h, url = url, timeout = timeout, shas = {} }, Client)
end

--- client:call(cmd, ...) -> reply | nil, err. Replies: status and bulk strings as strings,
--- integers as numbers, a nil bulk as false, arrays as tables; an error reply is nil, "ERR ...".
function Client:call(...)
  local v, err = _redis.call(self.h, self.timeout, ...)
  if v == nil then return nil, err end
  return v
end

--- client:eval(script, keys?, args?) -> reply | nil, err: EVALSHA of the script loaded once,
--- loaded again when the server lost it (a restart, SCRIPT FLUSH).
function Client:eval(script, keys, args)
  keys, args = keys or {}, args or {}
  local nk, na = #keys, #args
  local argv = { nil, nk }
  for i = 1, nk do argv[2 + i] = keys[i] end
  for i = 1, na do argv[2 + nk + i] = args[i] end
  local n = 2 + nk + na
  for _ = 1, 2 do
    local sha = self.shas[script]
    if not sha then
      local s, err = _redis.call(self.h, self.timeout, "SCRIPT", "LOAD", script)
      if not s then return nil, err end
      sha = s
      self.shas[script] = sha
    end
    argv[1] = sha
    local v, err = _redis.call(self.h, self.timeout, "EVALSHA", unpack(argv, 1, n))
    if v ~= nil then return v end
    if type(err) ~= "string" or err:sub(1, 8) ~= "NOSCRIPT" then return nil, err end
    self.shas[script] = nil
  end
  return nil, "redis: NOSCRIPT after loading the script"
end

--- redis.live() -> commands in flight in this worker (0 when nothing is pending or leaked)
M.live = _redis.live

--- client:close(): drops the connection (a later call opens a new one).
function Client:close() _redis.close(self.h) end

--- client:stats() -> { connected = bool, connects = n, error = "last connection error" | nil }
function Client:stats() return _redis.stats(self.h) end

return M
