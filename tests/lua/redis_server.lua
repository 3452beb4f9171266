-- tests/lua/redis_server.lua: a throwaway redis-server on a free loopback port for specs
-- (no persistence), started and stopped by the spec. Exits 77 (skipped) without redis-server.
local mg = require "moongate"

local M = {}

local function sh(cmd)
  local f = assert(io.popen(cmd))
  local out = f:read("*a")
  f:close()
  return (out:gsub("%s+$", ""))
end

function M.available() return sh("command -v redis-server || true") ~= "" end

function M.skip_unless_available()
  if not M.available() then
    io.stderr:write("skip: redis-server is not installed\n")
    os.exit(77)
  end
end

local function free_port()
  return tonumber(sh([[python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])']]))
end

--- start(extra_args?) -> server { port, url, dir, stop(), pid } (waits until it answers PING)
function M.start(extra)
  local dir = sh("mktemp -d /tmp/mg-redis.XXXXXX")
  local port = free_port()
  local s = { port = port, dir = dir, url = "redis://127.0.0.1:" .. port .. "/0" }
  function s.launch()
    os.execute(("redis-server --port %d --bind 127.0.0.1 --save '' --appendonly no --dir %s %s >%s/redis.log 2>&1 & echo $! >%s/pid")
      :format(port, dir, extra or "", dir, dir))
    s.pid = tonumber(sh("cat " .. dir .. "/pid"))
    local t0 = mg.now()
    while mg.now() - t0 < 10 do
      local pong = sh(("redis-cli -p %d ping 2>/dev/null || true"):format(port))
      if pong == "PONG" or pong:match("^NOAUTH") then return s end   -- NOAUTH: up, with a password
      mg.sleep(0.02)
    end
    error("redis-server did not start: " .. sh("cat " .. dir .. "/redis.log"))
  end
  function s.kill()   -- stops this server (its data goes with it)
    if s.pid then os.execute(("kill %d; while kill -0 %d 2>/dev/null; do sleep 0.02; done"):format(s.pid, s.pid)) end
    s.pid = nil
  end
  function s.stop()
    s.kill()
    os.execute("rm -rf " .. dir)
  end
  function s.cli(args) return sh(("redis-cli -p %d %s"):format(port, args)) end
  return s.launch()
end

return M
