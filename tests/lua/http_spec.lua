-- moongate.http against real local servers: nginx (volume, keep-alive, large bodies) and a
-- small Python upstream that stalls, resets, closes early and streams (http_upstream.py).
local mg = require "moongate"
local http = require "moongate.http"
local json = require "moongate.json"

local home = require("moongate.base").home

local tmp, UP, NGX, NGX2, TLS, TLS11
local pids = {}

local function sh(cmd)
  local f = assert(io.popen(cmd))
  local out = f:read("*a")
  f:close()
  return (out:gsub("%s+$", ""))
end

local function read_file(path)
  local f = io.open(path)
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

local function wait_for(what, fn)
  local t0 = mg.now()
  while mg.now() - t0 < 10 do
    local v = fn()
    if v then return v end
    mg.sleep(0.02)
  end
  error("timed out waiting for " .. what)
end

local function free_port()
  return tonumber(sh([[python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])']]))
end

local function spawn_bg(cmd, pidfile)
  os.execute(cmd .. " & echo $! > " .. pidfile)
  pids[#pids + 1] = tonumber(read_file(pidfile))
end

local function quiet()   -- no transfer or handle left behind by the previous test
  local s = http.stats()
  return s.active == 0 and s.handles == 0 and s.streams == 0
end

setup(function()
  tmp = sh("mktemp -d /tmp/mg-http-spec.XXXXXX")
  spawn_bg(("python3 %s/tests/lua/http_upstream.py %s/port >%s/upstream.log 2>&1"):format(home, tmp, tmp),
    tmp .. "/upstream.pid")
  UP = "http://127.0.0.1:" .. wait_for("the python upstream", function() return read_file(tmp .. "/port") end)

  local port, second, tls, tls11 = free_port(), free_port(), free_port(), free_port()
  assert(os.execute(("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost "
    .. "-addext subjectAltName=IP:127.0.0.1 -keyout %s/key.pem -out %s/cert.pem 2>/dev/null"):format(tmp, tmp)) == 0)
  os.execute(("mkdir -p %s/www && head -c 16777216 /dev/zero | tr '\\0' x > %s/www/big.bin"):format(tmp, tmp))
  local conf = assert(io.open(tmp .. "/nginx.conf", "w"))
  local text = (([[
daemon off;
master_process off;
worker_processes 1;
pid TMP/nginx.pid;
error_log TMP/nginx.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path TMP/body;
  proxy_temp_path TMP/proxy;
  fastcgi_temp_path TMP/fcgi;
  uwsgi_temp_path TMP/uwsgi;
  scgi_temp_path TMP/scgi;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:PORT backlog=4096;
    listen 127.0.0.1:SECOND;
    location = /hello { default_type text/plain; return 200 "hello\n"; }
    location /files/ { alias TMP/www/; }
    location /gz/ { alias TMP/www/; gzip on; gzip_types *; gzip_min_length 0; }
    location = /short-keepalive { keepalive_timeout 200ms; default_type text/plain; return 200 "short\n"; }
  }
  server {
    listen 127.0.0.1:TLS ssl http2;
    ssl_certificate TMP/cert.pem;
    ssl_certificate_key TMP/key.pem;
    location = /hello { default_type text/plain; return 200 "hello over tls\n"; }
    location /files/ { alias TMP/www/; }
  }
  server {
    listen 127.0.0.1:TLS11 ssl;
    ssl_certificate TMP/cert.pem;
    ssl_certificate_key TMP/key.pem;
    keepalive_timeout 0;
    ssl_session_cache shared:SSL:1m;
    location = /session { default_type text/plain; return 200 "$ssl_session_reused"; }
  }
}
]]):gsub("TMP", tmp):gsub("PORT", port):gsub("SECOND", second):gsub("TLS11", tls11):gsub("TLS", tls))
  conf:write(text)
  conf:close()
  spawn_bg(("nginx -e %s/nginx.log -p %s -c %s/nginx.conf"):format(tmp, tmp, tmp), tmp .. "/nginx.spawn.pid")
  NGX = "http://127.0.0.1:" .. port
  NGX2 = "http://127.0.0.1:" .. second   -- a connection pool of its own
  TLS = "https://127.0.0.1:" .. tls
  TLS11 = "https://127.0.0.1:" .. tls11   -- HTTP/1.1 only, one request per connection
  wait_for("nginx", function()
    local res = http.request{ url = NGX .. "/hello", timeout = 1 }
    return res and res.status == 200
  end)
end)

teardown(function()
  for _, pid in ipairs(pids) do os.execute("kill " .. pid .. " 2>/dev/null") end
  if tmp then os.execute("rm -rf " .. tmp) end
end)

describe("http.request", function()
  after_each(function()
    assert.is_true(quiet(), "a transfer was left behind")
  end)

  it("returns status, lower-case headers and body", function()
    local res, err = http.request{ url = NGX .. "/hello" }
    assert.is_nil(err)
    assert.are.equal(200, res.status)
    assert.are.equal("hello\n", res.body)
    assert.are.equal("text/plain", res.headers["content-type"])
    assert.are.equal("6", res.headers["content-length"])
    assert.are.equal("keep-alive", res.headers["connection"])
    local info = res.info
    assert.are.equal("1.1", info.http_version)
    assert.is_true(info.connect <= info.first_byte and info.first_byte <= info.total, "timings in order")
    assert.are.equal(0, info.tls)
  end)

  it("sends the method, headers and body exactly, without Expect or a default content type", function()
    local res = assert(http.request{
      method = "POST", url = UP .. "/echo?x=1", body = '{"a":1}',
      headers = { ["content-type"] = "application/json", authorization = "Bearer k", ["X-Num"] = 7 },
    })
    assert.are.equal(200, res.status)
    local got = json.decode(res.body)
    assert.are.equal("POST", got.method)
    assert.are.equal("/echo?x=1", got.path)
    assert.are.equal('{"a":1}', got.body)
    assert.are.same({
      accept = "*/*", authorization = "Bearer k", ["content-length"] = "7",
      ["content-type"] = "application/json", host = UP:sub(8), ["user-agent"] = "moongate/" .. mg.version,
      ["x-num"] = "7",
    }, got.headers)

    got = json.decode(assert(http.request{ method = "POST", url = UP .. "/echo", body = "a=b" }).body)
    assert.is_nil(got.headers["content-type"])
  end)

  it("sends a 2 MiB body at once (no 100-continue round trip)", function()
    local body = ("0123456789abcdef"):rep(131072)
    local res = assert(http.request{ method = "PUT", url = UP .. "/echo", body = body, timeout = 10 })
    local got = json.decode(res.body)
    assert.are.equal("PUT", got.method)
    assert.are.equal(#body, #got.body)
    assert.are.equal(body, got.body)
    assert.is_nil(got.headers.expect)
  end)

  it("sends a string.buffer body's bytes as they are, and leaves the buffer as it was", function()
    local b = require("string.buffer").new()
    b:put('{"n":', 1, ',"s":"', ("x\\\""):rep(3), '"}')
    local got = json.decode(assert(http.post(UP .. "/echo", b)).body)
    assert.are.equal('{"n":1,"s":"' .. ("x\\\""):rep(3) .. '"}', got.body)
    assert.are.equal('{"n":1,"s":"' .. ("x\\\""):rep(3) .. '"}', b:tostring())
    got = json.decode(assert(http.post(UP .. "/echo", require("string.buffer").new())).body)
    assert.are.equal("", got.body)
    assert.error_matches(function() http.post(UP .. "/echo", {}) end, "body must be a string or a string.buffer", 1, true)
  end)

  it("gives a body-less PUT or DELETE the right framing", function()
    local got = json.decode(assert(http.request{ method = "PUT", url = UP .. "/echo" }).body)
    assert.are.equal("PUT", got.method)
    assert.are.equal("0", got.headers["content-length"])
    got = json.decode(assert(http.request{ method = "DELETE", url = UP .. "/echo" }).body)
    assert.are.equal("DELETE", got.method)
    assert.is_nil(got.headers["content-length"])
  end)

  it("HEAD has no body and leaves the connection usable", function()
    local res = assert(http.request{ method = "HEAD", url = NGX .. "/hello" })
    assert.are.equal(200, res.status)
    assert.are.equal("", res.body)
    assert.are.equal("6", res.headers["content-length"])
    assert.are.equal("hello\n", assert(http.request{ url = NGX .. "/hello" }).body)
  end)

  it("an HTTP error status is a response, not an error", function()
    local res, err = http.request{ url = UP .. "/status/503" }
    assert.is_nil(err)
    assert.are.equal(503, res.status)
    assert.are.equal("status 503", res.body)
  end)

  it("joins repeated headers with a comma and trims values", function()
    local res = assert(http.request{ url = UP .. "/headers" })
    assert.are.equal("a, b", res.headers["x-multi"])
    assert.are.equal("v", res.headers["x-spaced"])
    assert.are.equal("c=1, d=2", res.headers["set-cookie"])
    assert.are.equal("ok", res.body)
  end)

  it("get and post shorthands", function()
    assert.are.equal("hello\n", assert(http.get(NGX .. "/hello")).body)
    local got = json.decode(assert(http.post(UP .. "/echo", "b", { headers = { ["x-y"] = "z" } })).body)
    assert.are.same({ "POST", "b", "z" }, { got.method, got.body, got.headers["x-y"] })
  end)

  it("completes 1,000 concurrent requests", function()
    local n, ok, hs, peak = 1000, 0, {}, 0
    local t0 = mg.now()
    for i = 1, n do
      hs[i] = mg.spawn(function()
        peak = math.max(peak, http.stats().active + 1)
        local res, err = http.request{ url = NGX .. "/hello", timeout = 20 }
        assert(res, err)
        return res.status, res.body
      end)
    end
    for i = 1, n do
      local status, body = hs[i]:wait()
      if status == 200 and body == "hello\n" then ok = ok + 1 end
    end
    assert.are.equal(n, ok)
    assert.are.equal(n, peak)   -- all in flight at once: one loop, no thread per request
    assert.is_true(mg.now() - t0 < 10, "took " .. (mg.now() - t0))
  end)

  it("reuses a kept-alive connection for sequential requests", function()
    assert(http.request{ url = NGX .. "/hello" })
    local before = http.stats().connects
    for _ = 1, 50 do
      local res = assert(http.request{ url = NGX .. "/hello" })
      assert.are.same({ 200, true, 0 }, { res.status, res.info.reused, res.info.connect })
    end
    assert.are.equal(before, http.stats().connects)
  end)

  it("reconnects when the server closed the idle kept-alive connection", function()
    assert.are.equal("short\n", assert(http.request{ url = NGX2 .. "/short-keepalive" }).body)
    mg.sleep(0.4)   -- nginx closes the connection after 200 ms idle
    local before = http.stats().connects
    local res, err = http.request{ url = NGX2 .. "/short-keepalive" }
    assert.is_nil(err)
    assert.are.equal("short\n", res.body)
    assert.are.equal(before + 1, http.stats().connects)
    assert.is_false(res.info.reused)
    assert.is_true(res.info.connect > 0)
  end)

  it("configure bounds the connections per host; transfers over it wait their turn", function()
    assert.are.same({ max_host_connections = 2, max_connections = 0, max_idle = 0 },
      http.configure{ max_host_connections = 2 })
    local ok, hs = 0, {}
    local t0 = mg.now()
    for i = 1, 20 do
      hs[i] = mg.spawn(function()
        -- "localhost": a host name of its own, so no connection from other tests is reused
        local res = http.request{ url = UP:gsub("127%.0%.0%.1", "localhost") .. "/stream?n=2&gap=0.05" }
        return res and res.body
      end)
    end
    for i = 1, 20 do if hs[i]:wait() == "chunk 1\nchunk 2\n" then ok = ok + 1 end end
    local took = mg.now() - t0
    assert.are.equal(20, ok)
    -- each request takes 50 ms upstream: two at a time, 20 take >= 0.5 s (at once: ~0.05 s)
    assert.is_true(took >= 0.45, "took " .. took)
    assert.are.same({ max_host_connections = 0, max_connections = 0, max_idle = 0 },
      http.configure{ max_host_connections = 0 })
    -- reuse still works with the defaults back
    assert(http.request{ url = NGX .. "/hello" })
    local before = http.stats().connects
    assert(http.request{ url = NGX .. "/hello" })
    assert.are.equal(before, http.stats().connects)
    assert.error_matches(function() http.configure{ max_idle = -1 } end, "max_idle must be an integer >= 0", 1, true)
    assert.error_matches(function() http.configure{ max = 1 } end, "unknown option max", 1, true)
  end)

  it("a stalled server triggers the timeout and frees the transfer", function()
    local t0 = mg.now()
    local res, err = http.request{ url = UP .. "/stall?s=5", timeout = 0.3 }
    local took = mg.now() - t0
    assert.is_nil(res)
    assert.are.equal("timeout", err)
    assert.is_true(took >= 0.29 and took < 1, "took " .. took)
    assert.are.same({ 0, 0 }, { http.stats().active, http.stats().handles })
  end)

  it("200 stalled requests time out together and leave nothing behind", function()
    local hs, timeouts = {}, 0
    local t0 = mg.now()
    for i = 1, 200 do
      hs[i] = mg.spawn(function() return http.request{ url = UP .. "/stall?s=3", timeout = 0.5 } end)
    end
    mg.sleep(0.2)
    assert.are.equal(200, http.stats().active)
    -- half are cancelled by their owner, the other half reach their timeout
    for i = 1, 100 do assert.is_true(hs[i]:cancel()) end
    assert.are.equal(100, http.stats().active)
    for i = 101, 200 do
      local res, err = hs[i]:wait()
      if res == nil and err == "timeout" then timeouts = timeouts + 1 end
    end
    assert.are.equal(100, timeouts)
    assert.is_true(mg.now() - t0 < 3, "took " .. (mg.now() - t0))
    local s = http.stats()
    assert.are.same({ 0, 0 }, { s.active, s.handles })
  end)

  it("times out a body that stops half way (timeout covers the whole body)", function()
    assert.are.same({ nil, "timeout" }, { http.request{ url = UP .. "/stall-body?s=5", timeout = 0.3 } })
  end)

  it("a budget of zero or less times out at once, without a request", function()
    local requests = http.stats().requests
    assert.are.same({ nil, "timeout" }, { http.request{ url = NGX .. "/hello", timeout = -0.5 } })
    assert.are.same({ nil, "timeout" }, { http.request{ url = NGX .. "/hello", timeout = 0 } })
    assert.are.equal(requests, http.stats().requests)
  end)

  it("honours the task's deadline when it is shorter than timeout", function()
    local h = mg.spawn(function()
      mg.timeout(0.2)
      local t0 = mg.now()
      local res, err = http.request{ url = UP .. "/stall?s=5", timeout = 5 }
      return res, err, mg.now() - t0
    end)
    local res, err, took = h:wait()
    assert.is_nil(res)
    assert.are.equal("timeout", err)
    assert.is_true(took >= 0.19 and took < 1, "took " .. took)
  end)

  it("a cancelled request leaks no handle and closes its connection", function()
    local sockets = http.stats().sockets
    local h = mg.spawn(function() return http.request{ url = UP .. "/stall?s=5", timeout = 10 } end)
    mg.sleep(0.1)
    local s = http.stats()
    assert.are.same({ 1, 1 }, { s.active, s.handles })
    assert.is_true(h:cancel())
    s = http.stats()
    assert.are.same({ 0, 0 }, { s.active, s.handles })
    assert.is_true(s.sockets <= sockets, s.sockets .. " sockets, " .. sockets .. " before")
    assert.are.same({ nil, "cancelled" }, { h:wait() })
  end)

  it("connection refused gives nil, \"connect failed\"", function()
    local res, err, detail = http.request{ url = "http://127.0.0.1:" .. free_port() .. "/" }
    assert.is_nil(res)
    assert.are.equal("connect failed", err)
    assert.matches("Couldn't connect to server", detail, 1, true)
  end)

  it("an unknown host gives nil, \"resolve failed\"", function()
    assert.are.same({ nil, "resolve failed", "Could not resolve host: nonexistent.invalid" },
      { http.request{ url = "http://nonexistent.invalid/", timeout = 5 } })
  end)

  it("a reset gives nil, \"reset\", before or during the response", function()
    local res, err, detail = http.request{ url = UP .. "/reset" }
    assert.are.same({ nil, "reset" }, { res, err })
    assert.are.equal("Recv failure: Connection reset by peer", detail)
    res, err = http.request{ url = UP .. "/reset-mid" }
    assert.are.same({ nil, "reset" }, { res, err })
  end)

  it("does not resend a request with a body when its reused connection dies unanswered", function()
    local function hits()
      return tonumber(assert(http.request{ url = UP .. "/hits?path=/reset-reused" }).body)
    end
    assert(http.request{ url = UP .. "/echo" })   -- leaves a kept-alive connection to reuse
    local before = hits()
    assert.are.same({ nil, "reset", "connection lost before any response (not resent)" },
      { http.request{ method = "POST", url = UP .. "/reset-reused", body = "x" } })
    assert.are.equal(before + 1, hits())
    -- without a body, libcurl's resend on a fresh connection stands (GET is idempotent)
    local res = assert(http.request{ url = UP .. "/reset-reused" })
    assert.are.equal("first", res.body)
    assert.are.equal(before + 3, hits())
  end)

  it("a server that closes early gives nil, \"closed\"", function()
    assert.are.same({ nil, "closed", "Empty reply from server" }, { http.request{ url = UP .. "/close" } })
    assert.are.same({ nil, "closed", "transfer closed with 90 bytes remaining to read" },
      { http.request{ url = UP .. "/truncated" } })
  end)

  it("does not follow redirects unless asked, and bounds them", function()
    local res = assert(http.request{ url = UP .. "/redirect?n=1" })
    assert.are.equal(302, res.status)
    assert.are.equal("/echo", res.headers.location)
    res = assert(http.request{ url = UP .. "/redirect?n=2", redirects = 3 })
    assert.are.equal(200, res.status)
    assert.are.equal("/echo", json.decode(res.body).path)
    local got = json.decode(assert(http.request{ method = "POST", url = UP .. "/redirect307", body = "again",
      redirects = 1 }).body)
    assert.are.same({ "POST", "/echo", "again" }, { got.method, got.path, got.body })
    local r2, err = http.request{ url = UP .. "/redirect?n=5", redirects = 2 }
    assert.are.same({ nil, "too many redirects" }, { r2, err })
  end)

  it("refuses a header block over 256 KiB", function()
    assert.are.same({ nil, "bad response", "response headers larger than 262144 bytes" },
      { http.request{ url = UP .. "/huge-headers" } })
  end)

  it("decompress = true asks for gzip and decodes it, streamed or not", function()
    local res = assert(http.request{ url = NGX .. "/gz/big.bin", decompress = true, timeout = 20 })
    assert.are.equal("gzip", res.headers["content-encoding"])
    assert.are.equal(16777216, #res.body)
    assert.is_nil(res.body:find("[^x]"))
    local s = assert(http.request{ url = NGX .. "/gz/big.bin", decompress = true, stream = true })
    assert.are.equal(16777216, #assert(s:read_all()))
    s:close()
    res = assert(http.request{ url = NGX .. "/gz/big.bin", timeout = 20 })   -- not asked: identity
    assert.is_nil(res.headers["content-encoding"])
    assert.are.equal(16777216, #res.body)
  end)

  it("max_body caps a buffered body", function()
    assert.are.same({ nil, "body too large", "body larger than 1000 bytes" },
      { http.request{ url = UP .. "/big?mb=1", max_body = 1000 } })
  end)

  it("raises for bad arguments", function()
    assert.error_matches(function() http.request("http://x/") end, "expects a table of options", 1, true)
    assert.error_matches(function() http.request{} end, "url must be a string", 1, true)
    assert.error_matches(function() http.request{ url = "ftp://x/" } end, "url scheme must be http or https", 1, true)
    assert.error_matches(function() http.request{ url = "http//x" } end, "invalid url", 1, true)
    assert.error_matches(function() http.request{ url = UP, timout = 1 } end, "unknown option timout", 1, true)
    assert.error_matches(function() http.request{ url = UP, timeout = "1" } end,
      "timeout must be a number of seconds", 1, true)
    assert.error_matches(function() http.request{ url = UP, connect_timeout = 0 / 0 } end,
      "connect_timeout must be a number of seconds", 1, true)
    assert.error_matches(function() http.request{ url = UP, method = "get" } end, "upper-case HTTP method", 1, true)
    assert.error_matches(function() http.request{ url = UP, headers = { ["bad name"] = "x" } } end,
      "bad header name bad name", 1, true)
    for _, v in ipairs{ "a\r\nInjected: 1", "a\rb", "a\nb", "a\0b" } do
      assert.error_matches(function() http.request{ url = UP, headers = { x = v } } end,
        "header x holds CR, LF or NUL", 1, true)
    end
    assert.error_matches(function() http.request{ url = UP, headers = { ["Content-Length"] = "1" } } end,
      "header Content-Length is set by the client itself", 1, true)
    assert.error_matches(function() http.request{ url = UP, body = 5 } end, "body must be a string", 1, true)
    assert.error_matches(function() http.request{ url = UP, method = "HEAD", body = "x" } end,
      "HEAD cannot carry a body", 1, true)
  end)
end)

describe("http.request over TLS", function()
  after_each(function()
    assert.is_true(quiet(), "a transfer was left behind")
  end)

  it("verifies the certificate: an unknown issuer gives nil, \"tls failed\"", function()
    local res, err = http.request{ url = TLS .. "/hello" }
    assert.are.same({ nil, "tls failed" }, { res, err })
  end)

  it("trusts a given CA file, or nothing with insecure = true", function()
    local res = assert(http.request{ url = TLS .. "/hello", ca_file = tmp .. "/cert.pem" })
    assert.are.same({ 200, "hello over tls\n", "2" }, { res.status, res.body, res.info.http_version })
    res = assert(http.request{ url = TLS .. "/hello", insecure = true })
    assert.are.same({ 200, "hello over tls\n" }, { res.status, res.body })
  end)

  it("resumes the TLS session on a new connection", function()
    -- this server closes each connection; "r" means the handshake resumed a session
    local first = assert(http.request{ url = TLS11 .. "/session", insecure = true })
    assert.are.equal(".", first.body)
    local connects = http.stats().connects
    local again = assert(http.request{ url = TLS11 .. "/session", insecure = true })
    assert.are.equal(connects + 1, http.stats().connects)
    assert.are.equal("r", again.body)
  end)

  it("multiplexes a burst of 100 requests onto one HTTP/2 connection", function()
    assert(http.request{ url = TLS .. "/hello", insecure = true })   -- the connection, known as h2
    local before = http.stats().connects
    local hs, ok = {}, 0
    for i = 1, 100 do
      hs[i] = mg.spawn(function()
        local res = http.request{ url = TLS .. "/hello", insecure = true }
        return res and res.status
      end)
    end
    for i = 1, 100 do if hs[i]:wait() == 200 then ok = ok + 1 end end
    assert.are.equal(100, ok)
    assert.are.equal(before, http.stats().connects)
  end)

  it("streams 16 MiB over HTTP/2 with backpressure", function()
    local res = assert(http.request{ url = TLS .. "/files/big.bin", insecure = true, stream = true })
    mg.sleep(0.3)
    assert.are.equal(1, http.stats().paused)
    local body = assert(res:read_all())
    assert.are.equal(16777216, #body)
    res:close()
  end)
end)

describe("http.request{stream = true}", function()
  after_each(function()
    assert.is_true(quiet(), "a transfer was left behind")
  end)

  it("returns at the headers and reads chunks as they arrive", function()
    local t0 = mg.now()
    local res = assert(http.request{ url = UP .. "/stream?n=3&gap=0.4", stream = true })
    assert.are.equal(200, res.status)
    assert.are.equal("text/event-stream", res.headers["content-type"])
    assert.is_nil(res.body)
    assert.is_nil(res.info.total)   -- a stream's info stops at its headers
    assert.is_true(res.info.first_byte > 0)
    local chunks, times = {}, {}
    while true do
      local chunk, err = res:read()
      assert.is_nil(err)
      if not chunk then break end
      chunks[#chunks + 1] = chunk
      times[#times + 1] = mg.now() - t0
    end
    assert.are.same({ "chunk 1\n", "chunk 2\n", "chunk 3\n" }, chunks)
    assert.is_true(times[1] < 0.3, "first chunk at " .. times[1])
    assert.is_true(times[2] - times[1] > 0.3 and times[3] - times[2] > 0.3, table.concat(times, " "))
    assert.is_nil(res:read())   -- stays at the end
    res:close()
    res:close()                 -- idempotent
    assert.are.same({ nil, "closed" }, { res:read() })
  end)

  it("an idle timeout leaves the stream open", function()
    local res = assert(http.request{ url = UP .. "/stream?n=2&gap=0.5", stream = true })
    assert.are.equal("chunk 1\n", res:read())
    assert.are.same({ nil, "timeout" }, { res:read(0.1) })
    assert.are.equal("chunk 2\n", res:read(2))
    assert.is_nil(res:read())
    res:close()
  end)

  it("close cancels a running transfer and frees it", function()
    local res = assert(http.request{ url = UP .. "/stream?n=100&gap=1", stream = true })
    assert.are.equal("chunk 1\n", res:read())
    local s = http.stats()
    assert.are.same({ 1, 1, 1 }, { s.active, s.handles, s.streams })
    res:close()
    s = http.stats()
    assert.are.same({ 0, 0, 0 }, { s.active, s.handles, s.streams })
  end)

  it("a task blocked in read gets nil, \"closed\" when another task closes the stream", function()
    local res = assert(http.request{ url = UP .. "/stream?n=2&gap=5", stream = true })
    assert.are.equal("chunk 1\n", res:read())
    local reader = mg.spawn(function() return res:read() end)
    mg.sleep(0.05)
    res:close()
    assert.are.same({ nil, "closed" }, { reader:wait() })
  end)

  it("cancelling the reading task aborts the transfer", function()
    local hs = {}
    for i = 1, 50 do
      hs[i] = mg.spawn(function()
        local res = assert(http.request{ url = UP .. "/stream?n=100&gap=0.05", stream = true })
        while res:read() do end
      end)
    end
    wait_for("50 streams", function() return http.stats().streams == 50 end)
    for i = 1, 50 do assert.is_true(hs[i]:cancel()) end
    local s = http.stats()
    assert.are.same({ 0, 0, 0, 0 }, { s.active, s.handles, s.streams, s.buffered })
  end)

  it("pauses the transfer while the reader is behind (backpressure), then reads it all", function()
    local res = assert(http.request{ url = NGX .. "/files/big.bin", stream = true })
    assert.are.equal("16777216", res.headers["content-length"])
    mg.sleep(0.3)
    local s = http.stats()
    assert.are.equal(1, s.paused)
    assert.is_true(s.buffered >= 1048576 and s.buffered < 1048576 + 65536, "buffered " .. s.buffered)
    local body = assert(res:read_all())
    assert.are.equal(16777216, #body)
    assert.is_nil(body:find("[^x]"))
    s = http.stats()
    assert.are.same({ 0, 0 }, { s.paused, s.buffered })
    res:close()
  end)

  it("gives the data received, then nil, \"reset\", when the upstream resets mid-body", function()
    local res = assert(http.request{ url = UP .. "/reset-mid", stream = true })
    assert.are.equal(200, res.status)
    assert.are.equal(("x"):rep(10), res:read())
    assert.are.same({ nil, "reset", "Recv failure: Connection reset by peer" }, { res:read() })
    res:close()
  end)

  it("headers timeout applies to a stream; the body is then bounded by read's idle timeout", function()
    assert.are.same({ nil, "timeout" }, { http.request{ url = UP .. "/stall?s=5", stream = true, timeout = 0.2 } })
    local res = assert(http.request{ url = UP .. "/stall-body?s=5", stream = true, timeout = 0.2 })
    assert.are.equal("01234", res:read())
    assert.are.same({ nil, "timeout" }, { res:read(0.2) })
    res:close()
  end)
end)
