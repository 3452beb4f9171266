-- moongate.config: the server's configuration, a Lua file returning a table. Relative paths in
-- it resolve against the file's own folder; the app reads it with config.get().
local M = {}

local DEFAULT_LIMITS = {
  header_bytes = 65536,        -- request line + headers
  headers = 100,               -- header fields
  body_bytes = 20 * 2 ^ 20,    -- request body
  header_timeout = 10,         -- seconds for the whole head, however slowly it trickles
  body_timeout = 60,           -- seconds between two reads of the body
  keepalive_timeout = 75,      -- idle seconds between requests
  handler_timeout = 60,        -- the handler's deadline, until its response starts
  stream_idle_timeout = 60,    -- a started (streamed) response: longest pause between writes
  connections = 10000,         -- open connections per worker; more wait in the listen backlog
}
M.DEFAULT_LIMITS = DEFAULT_LIMITS

local current

local ffi = require "ffi"
pcall(ffi.cdef, "char *getcwd(char *buf, size_t size);")

local function cwd()
  local b = ffi.new("char[?]", 4096)
  local p = ffi.C.getcwd(b, 4096)
  return p ~= nil and ffi.string(p) or "."
end

-- Lexically clean an absolute path: "a/./b" -> "a/b", "a/x/../b" -> "a/b" (no symlinks
-- are followed), so paths shown to users (citations, logs) read as they should.
local function clean(path)
  local out = {}
  for part in path:gmatch("[^/]+") do
    if part == ".." then
      if #out > 0 then out[#out] = nil end
    elseif part ~= "." then
      out[#out + 1] = part
    end
  end
  return "/" .. table.concat(out, "/")
end

local function absolute(path, base)
  if path:sub(1, 1) ~= "/" then path = (base or cwd()) .. "/" .. path end
  return clean(path)
end

local function normalize(cfg)
  if type(cfg) ~= "table" then return nil, "the config must return a table" end
  local limits = {}
  for k, v in pairs(DEFAULT_LIMITS) do limits[k] = v end
  if cfg.limits ~= nil then
    if type(cfg.limits) ~= "table" then return nil, "limits must be a table" end
    for k, v in pairs(cfg.limits) do
      if DEFAULT_LIMITS[k] == nil then return nil, "unknown limit '" .. tostring(k) .. "'" end
      if type(v) ~= "number" or v <= 0 then
        return nil, "limits." .. k .. " must be a positive number"
      end
      limits[k] = v
    end
  end
  cfg.limits = limits
  if cfg.grace == nil then cfg.grace = 30 end
  if type(cfg.grace) ~= "number" or cfg.grace < 0 then return nil, "grace must be a number of seconds" end
  if cfg.listen ~= nil and type(cfg.listen) ~= "string" then return nil, "listen must be a string HOST:PORT" end
  if cfg.app == nil then cfg.app = "moongate.app" end
  local ta = type(cfg.app)
  if ta ~= "string" and ta ~= "table" and ta ~= "function" then
    return nil, "app must be a module name, a table with handle(), or a function"
  end
  if ta == "table" and type(cfg.app.handle) ~= "function" then return nil, "app.handle must be a function" end
  return cfg
end

--- config.load(path) -> cfg | nil, err. The chunk gets (dir, path) as `...`; <dir>/?.lua is
--- appended to package.path so that `app = "myapp"` finds myapp.lua next to the config (last,
--- so that a file there never shadows a moongate module).
function M.load(path)
  path = absolute(path)
  local dir = path:match("^(.*)/[^/]*$") or "."
  local chunk, err = loadfile(path)
  if not chunk then return nil, err end
  local ok, cfg = pcall(chunk, dir, path)
  if not ok then return nil, path .. ": " .. tostring(cfg) end
  local c, err2 = normalize(cfg)
  if not c then return nil, path .. ": " .. err2 end
  c.path, c.dir = path, dir
  local entry = ";" .. dir .. "/?.lua"
  if not package.path:find(entry, 1, true) then package.path = package.path .. entry end
  return c
end

--- config.default() -> the configuration used when `moongate serve` gets no file.
function M.default()
  local c = assert(normalize({}))
  c.dir = cwd()
  return c
end

--- config.set(cfg): make cfg the one config.get() returns (the server does this).
function M.set(cfg) current = cfg end

--- config.get() -> the loaded config table (with .path and .dir), or nil outside a server.
function M.get() return current end

--- config.resolve(p) -> p made absolute against the config file's folder.
--- config.absolute(path[, base]) -> path made absolute against base (default: the working
--- folder), with . and .. cleaned out
M.absolute = absolute

function M.resolve(p)
  if type(p) ~= "string" then error("config.resolve: expected a path string", 2) end
  return absolute(p, current and current.dir)
end

return M
