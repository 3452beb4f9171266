-- The gateway's non-streamed hot path, without the network: the upstream's bytes come back as
-- they were, and the handler's loop compiles (no NYI trace aborts in gateway code).
local json = require "moongate.json"

local BODY = '{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"m-up",' ..
  '"choices":[{"index":0,"message":{"role":"assistant","content":"Hi!"},"finish_reason":"stop"}],' ..
  '"usage":{"prompt_tokens":12,"completion_tokens":2,"total_tokens":14}}'

local function gateway()
  package.loaded["moongate.app"] = nil
  local app = require "moongate.app"
  local gw = app.init({
    providers = { up = { kind = "openai", base_url = "http://127.0.0.1:9/v1", api_key = "sk-up" } },
    models = { bench = { route = { { provider = "up", model = "m-up", timeout = 5 } }, deadline = 10 } },
    breaker = { failures = 1000 },
  })
  local sent = {}
  gw.providers.up.post = function(self, url, payload, req, budget, stream)
    sent.url, sent.payload, sent.headers = url, payload, req.forward_headers
    return { status = 200, headers = {}, body = BODY }
  end
  return app, sent
end

local REQ_BODY = '{"model":"bench","messages":[{"role":"user","content":"Say hello."}],"max_tokens":16}'
local function request()
  return { method = "POST", path = "/v1/chat/completions", id = "req-1", body = REQ_BODY,
           headers = { ["content-type"] = "application/json", authorization = "Bearer client", ["x-trace"] = "t1" } }
end

describe("gateway hot path", function()
  it("relays the upstream's bytes and sets the moongate headers", function()
    local app, sent = gateway()
    local r = app.handle(request(), {})
    assert.are.equal(200, r.status)
    assert.are.equal(BODY, r.body)
    assert.are.equal("up", r.headers["x-moongate-provider"])
    assert.are.equal("m-up", r.headers["x-moongate-model"])
    assert.are.equal("1", r.headers["x-moongate-attempts"])
    assert.truthy(tonumber(r.headers["x-moongate-overhead-ms"]))
    assert.are.equal("http://127.0.0.1:9/v1/chat/completions", sent.url)
    assert.are.equal('{"model":"m-up","messages":[{"role":"user","content":"Say hello."}],"max_tokens":16}', sent.payload)
    -- the upstream joins the request's trace: the parent is the attempt's span
    local tp = sent.headers.traceparent
    assert.truthy(tp and tp:match("^00%-%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%-01$"), tp)
    sent.headers.traceparent = nil
    assert.are.same({ ["x-trace"] = "t1", ["x-request-id"] = "req-1" }, sent.headers)
  end)

  it("compiles: no NYI aborts in gateway code over many requests", function()
    local app = gateway()
    local req = request()
    local log = require("moongate.jit_check").trace_log(function()
      for _ = 1, 3000 do app.handle(req, {}) end
    end)
    local bad = {}
    for line in log:gmatch("[^\n]+") do
      if line:find("NYI", 1, true) and (line:find("gateway/", 1, true) or line:find("router.lua", 1, true)
          or line:find("app.lua", 1, true) or line:find("providers/", 1, true)) then
        bad[#bad + 1] = line
      end
    end
    assert.are.same({}, bad)
  end)
end)
