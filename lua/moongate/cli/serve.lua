-- `moongate serve [--listen HOST:PORT] [--workers N] [CONFIG.lua]`: one worker's main task.
-- It listens, serves until SIGTERM, drains in-flight requests within `grace`, and exits 0.
local server = require "moongate.server"
local config = require "moongate.config"
local log = require "moongate.log"
local process = require "moongate._process"

local usage = [[
usage: moongate serve [--listen HOST:PORT] [--workers N] [--shared-mb N] [CONFIG.lua]

Runs the HTTP server. CONFIG.lua returns a table:
  listen = "127.0.0.1:8080",      -- --listen overrides it
  app = "moongate.app",           -- module name, table with handle(), or function(req, res)
  limits = { header_bytes = 65536, headers = 100, body_bytes = 20 * 2^20,
             header_timeout = 10, body_timeout = 60, keepalive_timeout = 75,
             handler_timeout = 60, stream_idle_timeout = 60, connections = 10000 },
  grace = 30,                     -- seconds SIGTERM waits for in-flight requests
  access_log = true,              -- one JSON line per request on stderr
Relative paths in the config resolve against its folder (config.resolve).
Without a config the default app answers GET /health.

--workers N runs N processes sharing the port (SO_REUSEPORT).
SIGTERM (or SIGINT): stop accepting, finish in-flight requests, exit 0;
a second one closes what is left at once.
SIGHUP: reload the config and the app for new requests.
]]

local function parse(args)
  local o = { workers = 1 }
  local i = 1
  while i <= #args do
    local a = args[i]
    local function value()
      i = i + 1
      if args[i] == nil then error({ usage = a .. " needs a value" }) end
      return args[i]
    end
    if a == "--help" or a == "-h" then
      o.help = true
    elseif a == "--listen" then
      o.listen = value()
    elseif a:match("^%-%-listen=") then
      o.listen = a:sub(10)
    elseif a == "--workers" then
      o.workers = tonumber(value())
    elseif a:match("^%-%-workers=") then
      o.workers = tonumber(a:sub(11))
    elseif a == "--shared-mb" then
      value()
    elseif a:match("^%-") then
      error({ usage = "unknown option " .. a })
    elseif o.config then
      error({ usage = "only one config file, got " .. o.config .. " and " .. a })
    else
      o.config = a
    end
    i = i + 1
  end
  return o
end

return function(args)
  local ok, o = pcall(parse, args)
  if not ok then
    if type(o) == "table" then
      io.stderr:write("moongate serve: ", o.usage, "\n", usage)
      return 2
    end
    error(o, 0)
  end
  if o.help then io.write(usage) return 0 end

  local cfg, err
  if o.config then cfg, err = config.load(o.config) else cfg = config.default() end
  if not cfg then
    io.stderr:write("moongate serve: ", err, "\n")
    return 1
  end
  if o.listen and not server.parse_listen(o.listen) then
    io.stderr:write("moongate serve: ", select(2, server.parse_listen(o.listen)), "\n")
    return 2
  end

  local listener, lerr = server.start(cfg, { listen = o.listen, reuseport = (o.workers or 1) > 1 })
  if not listener then
    io.stderr:write("moongate serve: ", lerr, "\n")
    return 1
  end
  local host, port = listener:address()
  local shown = host:find(":", 1, true) and "[" .. host .. "]" or host
  log.info("listening", { address = shown .. ":" .. port, worker = process.worker(),
    config = cfg.path })

  local function drain()
    if listener:stats().draining then
      -- a second SIGTERM / SIGINT: do not wait for the grace period
      log.warn("stopping now", { connections = listener:stats().connections })
      listener:close()
      return
    end
    log.info("draining", { grace = cfg.grace, connections = listener:stats().connections })
    listener:stop(config.get().grace)
  end
  process.on_signal("TERM", drain)
  process.on_signal("INT", drain)
  process.on_signal("HUP", function()
    local rok, rerr = server.reload(o.config, listener)
    require("moongate.reload").counter:inc(1, "config", rok and "ok" or "failed")
    if rok then
      log.info("reloaded", { config = o.config })
    else
      log.error("reload failed; the old config keeps serving", { error = rerr })
    end
  end)

  listener:wait()
  -- spans of the last requests: to the store and collector, bounded so a dead collector cannot hold the exit
  require("moongate.trace.export").shutdown(math.min(config.get().grace or 5, 5))
  log.info("stopped", { requests = listener:stats().requests })
  return 0
end
