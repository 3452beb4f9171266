-- The server's Lua layer: query decoding, listen addresses, config loading, the logger, and a
-- real listener in this process answered through moongate.http.
local mg = require "moongate"
local server = require "moongate.server"
local config = require "moongate.config"
local log = require "moongate.log"
local json = require "moongate.json"

local tmpdir = require "tmpdir"

local function write(path, text)
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
end

describe("server.decode_args", function()
  it("decodes, repeats become arrays, bare keys are true", function()
    assert.are.same({ a = { "1", "2" }, b = "x y", ["c d"] = "é", flag = true, e = "" },
      server.decode_args("a=1&b=x+y&a=2&c%20d=%C3%A9&flag&e="))
    assert.are.same({}, server.decode_args(""))
    assert.are.same({}, server.decode_args(nil))
  end)
end)

describe("server.parse_listen", function()
  it("accepts HOST:PORT, [v6]:PORT, :PORT and PORT", function()
    assert.are.same({ "127.0.0.1", 8080 }, { server.parse_listen("127.0.0.1:8080") })
    assert.are.same({ "::1", 9000 }, { server.parse_listen("[::1]:9000") })
    assert.are.same({ "0.0.0.0", 80 }, { server.parse_listen(":80") })
    assert.are.same({ "127.0.0.1", 8081 }, { server.parse_listen("8081") })
  end)
  it("rejects the rest", function()
    assert.are.same({ nil, "bad listen address 'localhost' (expected HOST:PORT)" },
      { server.parse_listen("localhost") })
    assert.are.same({ nil, "bad listen address 'h:70000' (expected HOST:PORT)" },
      { server.parse_listen("h:70000") })
  end)
end)

describe("config", function()
  it("loads a file, fills default limits, resolves paths against its folder", function()
    local d = tmpdir()
    write(d .. "/c.lua", [[
      local dir = ...
      return { listen = "127.0.0.1:1", limits = { body_bytes = 1024 }, seen_dir = dir, index = "data/idx" }
    ]])
    local c = assert(config.load(d .. "/c.lua"))
    assert.are.equal(d, c.dir)
    assert.are.equal(d, c.seen_dir)
    assert.are.equal(d .. "/c.lua", c.path)
    assert.are.equal(1024, c.limits.body_bytes)
    assert.are.equal(65536, c.limits.header_bytes)
    assert.are.equal(100, c.limits.headers)
    assert.are.equal(30, c.grace)
    assert.are.equal("moongate.app", c.app)
    local old = config.get()
    config.set(c)
    assert.are.equal(d .. "/data/idx", config.resolve(c.index))
    assert.are.equal("/abs/x", config.resolve("/abs/x"))
    assert.are.equal(d .. "/docs", config.resolve("./sub/../docs"))
    assert.are.equal("/a/c", config.resolve("/a/./b/../c/"))
    config.set(old)
  end)
  it("says what is wrong with a bad config", function()
    local d = tmpdir()
    write(d .. "/a.lua", "return { limits = { body_byte = 1 } }")
    assert.are.same({ nil, d .. "/a.lua: unknown limit 'body_byte'" }, { config.load(d .. "/a.lua") })
    write(d .. "/b.lua", "return { limits = { headers = -1 } }")
    assert.are.same({ nil, d .. "/b.lua: limits.headers must be a positive number" }, { config.load(d .. "/b.lua") })
    write(d .. "/c.lua", "return 42")
    assert.are.same({ nil, d .. "/c.lua: the config must return a table" }, { config.load(d .. "/c.lua") })
    write(d .. "/e.lua", "error('nope', 0)")
    assert.are.same({ nil, d .. "/e.lua: nope" }, { config.load(d .. "/e.lua") })
    local c, err = config.load(d .. "/missing.lua")
    assert.is_nil(c)
    assert.truthy(err:find("cannot open", 1, true))
  end)
end)

describe("log", function()
  it("formats one JSON object with level, pid, msg and fields; secrets redacted", function()
    local line = log.format("info", "calling Bearer abc.def-123 now",
      { authorization = "Bearer xyz", headers = { ["x-api-key"] = "k1", accept = "*/*" },
        api_key = "sk-123", note = "key sk-proj-abc_DEF", n = 3 })
    local e = assert(json.decode(line))
    assert.are.equal("info", e.level)
    assert.are.equal("number", type(e.pid))
    assert.are.equal("number", type(e.time))
    assert.are.equal("calling Bearer [redacted] now", e.msg)
    assert.are.equal("[redacted]", e.authorization)
    assert.are.equal("[redacted]", e.api_key)
    assert.are.same({ ["x-api-key"] = "[redacted]", accept = "*/*" }, e.headers)
    assert.are.equal("key sk-[redacted]", e.note)
    assert.are.equal(3, e.n)
    assert.is_nil(line:find("xyz", 1, true))
  end)
  it("adds the request id of the running task's context", function()
    mg.context().request_id = "rid-spec"
    local h = mg.spawn(function() return log.format("warn", "child") end)
    local e = json.decode(h:wait())
    assert.are.equal("rid-spec", e.request_id)
    assert.are.equal("warn", e.level)
  end)
end)

describe("a listener in this process", function()
  local listener, base
  setup(function()
    local cfg = assert(config.load((os.getenv("MOONGATE_HOME") or mg.home) .. "/tests/e2e/server_conf.lua"))
    cfg.access_log = false
    listener = assert(server.start(cfg, { listen = "127.0.0.1:0" }))
    local host, port = listener:address()
    assert.are.equal("127.0.0.1", host)
    assert.is_true(port > 0)
    base = "http://127.0.0.1:" .. port
  end)

  it("answers through moongate.http", function()
    local http = require "moongate.http"
    local res = assert(http.request { url = base .. "/hello", timeout = 5 })
    assert.are.equal(200, res.status)
    assert.are.equal("hello", res.body)
    assert.are.equal("text/plain", res.headers["content-type"])
    assert.truthy(res.headers["x-request-id"]:match("^%x+$"))
  end)

  it("gives the handler the request table", function()
    local http = require "moongate.http"
    local res = assert(http.request { method = "POST", url = base .. "/echo?x=1", timeout = 5,
      headers = { ["x-request-id"] = "spec-1", ["content-type"] = "text/plain" }, body = "abc" })
    local d = json.decode(res.body)
    assert.are.equal("POST", d.method)
    assert.are.equal("/echo", d.path)
    assert.are.same({ x = "1" }, d.args)
    assert.are.equal("spec-1", d.id)
    assert.are.equal("spec-1", d.ctx_id)
    assert.are.equal(3, d.body_len)
  end)

  it("answers 500 with the request id when the handler raises", function()
    local http = require "moongate.http"
    local res = assert(http.request { url = base .. "/raise", timeout = 5, headers = { ["x-request-id"] = "spec-500" } })
    assert.are.equal(500, res.status)
    assert.are.same({ error = { message = "internal server error", type = "server_error",
      code = "internal_error", request_id = "spec-500" } }, json.decode(res.body))
  end)

  it("counts requests and connections, then drains", function()
    local st = listener:stats()
    assert.is_true(st.requests >= 3)
    assert.is_false(st.draining)
    listener:stop(1)
    assert.is_true(listener:wait(2))
    assert.is_true(listener:stats().draining)
    assert.are.equal(0, listener:stats().connections)
  end)
end)
