-- moongate.cache.key, .lru, .exact and the gateway's cache step helpers: canonical keys, the
-- reproducibility rule, Cache-Control, LRU bounds and TTL, the two tiers and the tenant flush,
-- a stream's chunks assembled into one completion, config errors.
local key = require "moongate.cache.key"
local lru = require "moongate.cache.lru"
local exact = require "moongate.cache.exact"
local gcache = require "moongate.gateway.cache"
local json = require "moongate.json"
local moongate = require "moongate"

local function wait(s)
  local deadline = moongate.now() + s
  repeat moongate.sleep(math.max(deadline - moongate.now(), 0.001)) until moongate.now() >= deadline
end

describe("moongate.cache.key", function()
  local ctx = { tenant = "a", policy = "v1" }
  it("is independent of key order and of delivery fields", function()
    local a = json.decode('{"model":"m","temperature":0,"messages":[{"role":"user","content":"hi"}]}')
    local b = json.decode('{"messages":[{"content":"hi","role":"user"}],"stream":true,"user":"u1","temperature":0,"model":"m"}')
    assert.equal(key.hash(a, ctx), key.hash(b, ctx))
    assert.equal(64, #key.hash(a, ctx))
  end)
  it("changes with every answer-changing field and with the context", function()
    local base = { model = "m", temperature = 0, messages = { { role = "user", content = "hi" } } }
    local h = key.hash(base, ctx)
    for field, v in pairs({ top_p = 0.5, seed = 1, max_tokens = 5, max_completion_tokens = 5, stop = "x",
                            response_format = { type = "json_object" }, n = 2, tool_choice = "none",
                            tools = { { type = "function" } }, frequency_penalty = 1, some_new_param = true }) do
      local d = {}
      for k, x in pairs(base) do d[k] = x end
      d[field] = v
      assert.are_not.equal(h, key.hash(d, ctx), field)
    end
    assert.are_not.equal(h, key.hash(base, { tenant = "b", policy = "v1" }))
    assert.are_not.equal(h, key.hash(base, { tenant = "a", policy = "v2" }))
  end)
  it("caches only reproducible requests", function()
    assert.is_true(key.reproducible({ temperature = 0 }))
    assert.is_true(key.reproducible({ temperature = 1, seed = 7 }))
    assert.is_true(key.reproducible({}, true))
    assert.same({ false, "not reproducible" }, { key.reproducible({ temperature = 0.2 }) })
    assert.same({ false, "not reproducible" }, { key.reproducible({}) })
  end)
  it("reads Cache-Control directives", function()
    assert.same({ true, false }, { key.cache_control("no-cache") })
    assert.same({ false, true }, { key.cache_control("max-age=0, No-Store") })
    assert.same({ true, true }, { key.cache_control("no-cache,no-store") })
    assert.same({ false, false }, { key.cache_control(nil) })
    assert.same({ false, false }, { key.cache_control("no-cachex") })
  end)
  it("gives each tenant its own namespace", function()
    assert.are_not.equal(key.namespace("a"), key.namespace("b"))
    assert.equal(16, #key.namespace("a"))
  end)
end)

describe("moongate.cache.lru", function()
  it("evicts the least recently used entry past max_entries", function()
    local c = lru.new { max_entries = 2 }
    c:set("a", "1"); c:set("b", "2")
    assert.equal("1", c:get("a"))        -- a is now the most recent
    c:set("c", "3")
    assert.is_nil(c:get("b"))
    assert.equal("1", c:get("a"))
    assert.equal("3", c:get("c"))
    assert.equal(1, c.evictions)
  end)
  it("is bounded by bytes and refuses a value larger than the bound", function()
    local c = lru.new { max_entries = 100, max_bytes = 30 }
    assert.is_true(c:set("a", string.rep("x", 10)))
    assert.is_true(c:set("b", string.rep("y", 10)))
    assert.is_true(c:set("c", string.rep("z", 10)))
    assert.is_nil(c:get("a"))
    assert.equal(22, c.bytes)
    assert.same({ nil, "too large" }, { c:set("d", string.rep("w", 40)) })
  end)
  it("drops an entry once its TTL has passed", function()
    local c = lru.new {}
    c:set("a", "1", 0.05)
    assert.equal("1", c:get("a"))
    wait(0.08)
    assert.is_nil(c:get("a"))
    assert.equal(0, c.count)
  end)
end)

describe("the hit path compiles", function()
  it("an LRU hit and a shared-tier read run as compiled traces (no NYI, no stitch)", function()
    local jit_check = require "moongate.jit_check"
    local c = exact.new {}
    local ns = key.namespace("jit-" .. tostring(moongate.now()))
    c:set(ns, "h", "answer")
    local n = 0
    local log = jit_check.trace_log(function()
      for _ = 1, 2000 do
        local v = c:get(ns, "h")
        n = n + #v
      end
    end)
    assert.equal(12000, n)
    assert.matches("cache_spec.lua:%d+ loop%]", log)
    assert.is_nil(log:find("NYI", 1, true), log)
    assert.is_nil(log:find("stitch", 1, true), log)
  end)
end)

describe("moongate.cache.exact", function()
  it("reads the shared tier when this worker's LRU lacks the entry", function()
    local c1 = exact.new { ttl = 30 }
    local c2 = exact.new { ttl = 30 }      -- another worker: its own LRU, the same shared dict
    local ns = key.namespace("spec-" .. tostring(moongate.now()))
    assert.is_true(c1:set(ns, "h1", "answer"))
    assert.same({ "answer", "local" }, { c1:get(ns, "h1") })
    assert.same({ "answer", "shared" }, { c2:get(ns, "h1") })
    assert.same({ "answer", "local" }, { c2:get(ns, "h1") })
  end)
  it("flushes one namespace for every worker and leaves the others", function()
    local c1, c2 = exact.new {}, exact.new {}
    local t = tostring(moongate.now())
    local a, b = key.namespace("a" .. t), key.namespace("b" .. t)
    c1:set(a, "h", "for a"); c1:set(b, "h", "for b")
    assert.equal("for a", (c2:get(a, "h")))
    assert.equal(1, c1:flush(a))
    assert.is_nil(c1:get(a, "h"))
    assert.is_nil(c2:get(a, "h"))     -- c2's LRU copy carries the old generation
    assert.equal("for b", (c2:get(b, "h")))
  end)
  it("with shared = false keeps to this worker's LRU", function()
    local ns = key.namespace("solo-" .. tostring(moongate.now()))
    local c1, c2 = exact.new { shared = false }, exact.new { shared = false }
    assert.is_true(c1:set(ns, "h", "mine"))
    assert.same({ "mine", "local" }, { c1:get(ns, "h") })
    assert.is_nil(c2:get(ns, "h"))
    assert.is_nil((exact.new {}):get(ns, "h"))
  end)
  it("does not keep an answer over max_entry_bytes", function()
    local c = exact.new { max_entry_bytes = 10 }
    assert.same({ nil, "too large" }, { c:set("ns", "h", string.rep("x", 11)) })
  end)
end)

describe("moongate.gateway.cache", function()
  it("adds a stream's chunks up to one completion", function()
    local ev = {
      '{"id":"c1","object":"chat.completion.chunk","created":5,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"}}]}',
      '{"id":"c1","choices":[{"index":0,"delta":{"content":"lo"}}]}',
      '{"id":"c1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"t1","type":"function","function":{"name":"get","arguments":"{\\"a\\""}}]}}]}',
      '{"id":"c1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":":1}"}}]}}]}',
      '{"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}',
      '{"id":"c1","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}',
    }
    local out = gcache.completion_of_stream(ev)
    assert.equal("c1", out.id)
    assert.equal("chat.completion", out.object)
    assert.equal("Hello", out.choices[1].message.content)
    assert.equal("tool_calls", out.choices[1].finish_reason)
    assert.same({ id = "t1", type = "function", ["function"] = { name = "get", arguments = '{"a":1}' } },
      out.choices[1].message.tool_calls[1])
    assert.equal(5, out.usage.total_tokens)
  end)
  it("adds up nothing for a stream without a finish or with several choices", function()
    assert.is_nil(gcache.completion_of_stream({ '{"choices":[{"index":0,"delta":{"content":"x"}}]}' }))
    assert.is_nil(gcache.completion_of_stream({ '{"choices":[{"index":1,"delta":{"content":"x"},"finish_reason":"stop"}]}' }))
  end)
  it("refuses bad cache configs with the field's name", function()
    assert.same({ nil, "config: cache must be a table or false" }, { gcache.check_config("yes") })
    assert.same({ nil, "config: cache.exact.ttl must be a number > 0" }, { gcache.check_config({ exact = { ttl = -1 } }) })
    assert.same({ nil, "config: cache.semantic.threshold must be a number in (0, 1]" },
      { gcache.check_config({ semantic = { threshold = 2 } }) })
    assert.same({ nil, "config: model m: cache.idempotent must be true or false" },
      { gcache.check_model("m", { idempotent = "yes" }) })
    assert.is_true(gcache.check_config({ exact = { ttl = 5 } }))
    local gw, err = require("moongate.gateway").new({ providers = { p = { kind = "mock" } },
      models = { m = { route = { { provider = "p" } }, cache = { ttl = 0 } } } })
    assert.is_nil(gw)
    assert.equal("config: model m: cache.ttl must be a number of seconds > 0", err)
  end)
end)
