-- moongate.redis against a real redis-server started on a loopback port: replies, errors, eval,
-- concurrency in one worker, the task's deadline, a dropped connection and reconnecting.
local mg = require "moongate"
local home = require("moongate.base").home
local server = require "redis_server"
server.skip_unless_available()

local redis = require "moongate.redis"

describe("moongate.redis", function()
  local srv, r

  setup(function()
    srv = server.start("--requirepass s3cret --enable-debug-command local")
    r = assert(redis.connect(("redis://:s3cret@127.0.0.1:%d/3"):format(srv.port)))
  end)
  teardown(function() if srv then srv.stop() end end)

  it("parses urls and refuses bad ones with a clear error", function()
    assert.are.same({ host = "10.0.0.5", port = 6380, db = 2, password = "p@ss" },
      redis.parse("redis://:p%40ss@10.0.0.5:6380/2"))
    assert.are.same({ host = "::1", port = 6379, db = 0, user = "app", password = "pw" },
      redis.parse("redis://app:pw@[::1]"))
    assert.are.same({ path = "/run/redis.sock", db = 4 }, redis.parse("unix:///run/redis.sock?db=4"))
    assert.are.same({ nil, "redis url must start with redis:// or unix:// (got 'http://x')" }, { redis.parse("http://x") })
    assert.are.same({ nil, "redis url database must be a number: redis://h/x" }, { redis.connect("redis://h/x") })
    assert.are.same({ nil, "redis url port out of range: redis://h:70000" }, { redis.parse("redis://h:70000") })
  end)

  it("converts replies: status, bulk, integer, nil, array, error", function()
    assert.are.equal("OK", r:call("SET", "k", "v1"))
    assert.are.equal("v1", r:call("GET", "k"))
    assert.are.equal(false, r:call("GET", "missing"))
    assert.are.equal(7, r:call("INCRBY", "n", 7))
    assert.are.equal(3, r:call("RPUSH", "l", "a", "b", 3))
    assert.are.same({ "a", "b", "3" }, r:call("LRANGE", "l", 0, -1))
    assert.are.same({ nil, "WRONGTYPE Operation against a key holding the wrong kind of value" }, { r:call("INCR", "l") })
    -- the url's database was selected: db 3 holds the keys, db 0 does not
    assert.are.equal("1", srv.cli("-a s3cret --no-auth-warning -n 3 exists k"))
    assert.are.equal("0", srv.cli("-a s3cret --no-auth-warning -n 0 exists k"))
    local big = string.rep("x", 1024 * 1024)
    assert.are.equal("OK", r:call("SET", "big", big))
    assert.are.equal(big, r:call("GET", "big"))
  end)

  it("evaluates scripts (loaded once, again after SCRIPT FLUSH)", function()
    local script = "return redis.call('INCRBY', KEYS[1], ARGV[1]) + tonumber(ARGV[2])"
    assert.are.equal(15, r:eval(script, { "e" }, { 5, 10 }))
    assert.are.equal("OK", r:call("SCRIPT", "FLUSH"))
    assert.are.equal(20, r:eval(script, { "e" }, { 5, 10 }))
    assert.are.same({ nil, "ERR Error compiling script (new function): user_script:1: '=' expected near 'is'" },
      { r:eval("this is bad", {}, {}) })
  end)

  it("runs many calls at once from many tasks on one connection", function()
    local tasks = {}
    for i = 1, 200 do
      tasks[i] = mg.spawn(function() return r:call("INCR", "c") end)
    end
    local seen = {}
    for i = 1, 200 do seen[assert(tasks[i]:wait())] = true end
    for i = 1, 200 do assert.is_true(seen[i]) end
    assert.are.equal(1, r:stats().connects)
  end)

  it("ends a call at the task's deadline while the server is busy", function()
    local blocker = assert(redis.connect(("redis://:s3cret@127.0.0.1:%d/3"):format(srv.port), { timeout = 5 }))
    local t = mg.spawn(function() return blocker:call("DEBUG", "SLEEP", "0.5") end)
    mg.sleep(0.05)
    local other = assert(redis.connect(("redis://:s3cret@127.0.0.1:%d/3"):format(srv.port), { timeout = 5 }))
    local t0 = mg.now()
    local late = mg.spawn(function()
      mg.timeout(0.1)
      return other:call("GET", "k")
    end)
    assert.are.same({ nil, "timeout" }, { late:wait() })
    assert.is_true(mg.now() - t0 < 0.3)
    assert.are.equal("OK", t:wait())
    assert.are.equal("v1", other:call("GET", "k"))   -- the late reply was dropped, the next one is right
    assert.are.equal(0, redis.live())                -- and its command freed
  end)

  it("fails a wrong password with the server's error", function()
    local bad = assert(redis.connect(("redis://:nope@127.0.0.1:%d/0"):format(srv.port)))
    local v, err = bad:call("PING")
    assert.is_nil(v)
    assert.are.equal("redis: WRONGPASS invalid username-password pair or user is disabled.", err)
  end)

  it("reports a dropped connection and reconnects once the server is back", function()
    assert.are.equal("v1", r:call("GET", "k"))
    srv.kill()
    local v, err = r:call("GET", "k")
    assert.is_nil(v)
    assert.is_truthy(err == "redis: Server closed the connection" or err == "redis: Connection reset by peer", err)
    assert.are.same({ nil, "redis: Connection refused" }, { r:call("GET", "k") })
    srv.launch()
    assert.are.equal(false, r:call("GET", "k"))   -- a new server: no data, but answering
    assert.are.equal("OK", r:call("SET", "k", "v2"))
    assert.are.equal("v2", r:call("GET", "k"))
    assert.is_true(r:stats().connected)
    assert.are.equal(0, redis.live())
  end)

  it("connects over a unix socket, with the database from the url", function()
    local sock = srv.dir .. "/redis.sock"
    local u = server.start("--unixsocket " .. sock .. " --unixsocketperm 700")
    local c = assert(redis.connect("unix://" .. sock .. "?db=2"))
    assert.are.equal("OK", c:call("SET", "via", "socket"))
    assert.are.equal("socket", c:call("GET", "via"))
    assert.are.equal("1", u.cli("-n 2 exists via"))
    c:close()
    c:close()   -- idempotent
    u.stop()
    assert.are.same({ nil, "redis: No such file or directory" }, { c:call("GET", "via") })
  end)

  it("refuses a call outside a task and bad arguments", function()
    assert.has_error(function() r:call({}) end)
  end)
end)

describe("docs/redis.md's example", function()
  it("prints what the page says", function()
    local srv = server.start()
    local f = assert(io.popen(("REDIS_URL=%s %s run %s/examples/redis/demo.lua 2>&1"):format(srv.url,
      os.getenv("MOONGATE") or (home .. "/build/moongate"), home)))
    local out = f:read("*a")
    f:close()
    srv.stop()
    assert.are.equal(table.concat({ "OK", "hello", "false", "1", "100", "30", "-1",
      "nil\tERR wrong number of arguments for 'incr' command" }, "\n") .. "\n", out)
  end)
end)
