-- moongate.flags: each kind of flag, stable and evenly spread buckets, variants, the kill switch,
-- tenant overrides, validation messages, hot reload, describe, and the /admin/flags handler.
local mg = require "moongate"
local flags = require "moongate.flags"
local reload = require "moongate.reload"
local json = require "moongate.json"

local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p " .. dir) == 0)

local function write(name, src)
  local f = assert(io.open(dir .. "/" .. name, "wb"))
  f:write(src)
  f:close()
  return dir .. "/" .. name
end

local function compile(fl, kill)
  return assert(flags.compile({ flags = fl, kill = kill }))
end

local function value(set, name, tenant, user, overrides)
  return flags.evaluate(set, { tenant = tenant, user = user, overrides = overrides }).values[name]
end

-- How many of tenant-1..tenant-10000 get each value of the flag.
local function spread(set, name, user_of)
  local n = {}
  for i = 1, 10000 do
    local tenant, user = "tenant-" .. i, nil
    if user_of then tenant, user = "acme", user_of(i) end
    local v = tostring(value(set, name, tenant, user))
    n[v] = (n[v] or 0) + 1
  end
  return n
end

describe("flags", function()
  teardown(function() os.execute("rm -rf " .. dir) end)

  describe("kinds", function()
    it("on/off", function()
      local set = compile({ on = { enabled = true }, off = { enabled = false } })
      assert.are.same({ on = true, off = false }, flags.evaluate(set, { tenant = "acme" }).values)
      assert.are.same({ on = true, off = false }, flags.evaluate(set, {}).values)
    end)

    it("tenant allow and deny lists", function()
      local set = compile({ pilot = { tenants = { "a", "b" }, deny = { "c" } },
                            not_c = { deny = { "c" } }, only_a = { tenants = { "a" } } })
      assert.are.same({ pilot = true, not_c = true, only_a = true }, flags.evaluate(set, { tenant = "a" }).values)
      assert.are.same({ pilot = true, not_c = true, only_a = false }, flags.evaluate(set, { tenant = "b" }).values)
      assert.are.same({ pilot = false, not_c = false, only_a = false }, flags.evaluate(set, { tenant = "c" }).values)
      assert.are.same({ pilot = false, not_c = true, only_a = false }, flags.evaluate(set, { tenant = "z" }).values)
      -- no tenant (auth off): not in any allow list, not denied
      assert.are.same({ pilot = false, not_c = true, only_a = false }, flags.evaluate(set, {}).values)
    end)

    it("enabled = false turns a flag off whatever else it says", function()
      local set = compile({ x = { enabled = false, tenants = { "a" }, rollout = 100 } })
      assert.is_false(value(set, "x", "a"))
    end)

    it("a percentage rollout by the stable hash of tenant and user", function()
      -- pinned: a change of hash or key would move every tenant
      assert.are.equal(940251, flags.bucket("beta", "acme"))
      assert.are.equal(524021, flags.bucket("beta", "globex"))
      assert.are.equal(416078, flags.bucket("beta", "acme", "alice"))
      assert.are.equal(376396, flags.bucket("rag", "acme", nil, "variants"))
      local set = compile({ beta = { rollout = 25 }, half = { rollout = 52.5 }, none = { rollout = 0 },
                            all = { rollout = 100 } })
      assert.is_false(value(set, "beta", "acme"))             -- 940251 >= 250000
      assert.is_false(value(set, "half", "globex"))           -- bucket of half, not of beta
      assert.are.equal(flags.bucket("half", "globex") < 525000, value(set, "half", "globex"))
      assert.is_false(value(set, "none", "acme"))
      assert.is_true(value(set, "all", "acme"))
      -- the user changes the key: acme/alice has another bucket than acme alone
      assert.are.equal(flags.bucket("beta", "acme", "alice") < 250000, value(set, "beta", "acme", "alice"))
      assert.are.equal(value(set, "beta", "acme"), value(set, "beta", "acme", ""))
    end)

    it("is stable: the same tenant/user lands on the same side every time and in every version", function()
      local a = compile({ beta = { rollout = 25 } })
      local b = compile({ beta = { rollout = 25 }, other = { enabled = true } })
      for i = 1, 500 do
        local t, u = "tenant-" .. i, "user-" .. (i % 7)
        local v = value(a, "beta", t, u)
        assert.are.equal(v, value(a, "beta", t, u))
        assert.are.equal(v, value(b, "beta", t, u))
      end
    end)

    it("spreads 10k tenants within 2% of the rollout, and raising it only adds tenants", function()
      local n25 = spread(compile({ beta = { rollout = 25 } }), "beta")
      assert.are.equal(2488, n25["true"])
      assert.is_true(math.abs(n25["true"] - 2500) <= 200)
      local n10 = spread(compile({ beta = { rollout = 10 } }), "beta")
      assert.are.equal(1001, n10["true"])
      local n50 = spread(compile({ other = { rollout = 50 } }), "other")
      assert.are.equal(4999, n50["true"])
      local s10, s20 = compile({ beta = { rollout = 10 } }), compile({ beta = { rollout = 20 } })
      for i = 1, 10000 do
        if value(s10, "beta", "tenant-" .. i) then assert.is_true(value(s20, "beta", "tenant-" .. i)) end
      end
    end)

    it("salts by flag name: two 50% rollouts overlap on about a quarter of tenants", function()
      local set = compile({ a = { rollout = 50 }, b = { rollout = 50 } })
      local both = 0
      for i = 1, 10000 do
        local v = flags.evaluate(set, { tenant = "tenant-" .. i }).values
        if v.a and v.b then both = both + 1 end
      end
      assert.are.equal(2464, both)
      assert.is_true(math.abs(both - 2500) <= 200)
    end)

    it("picks variants by weight, stable and spread within 2%", function()
      local set = compile({
        rag = { variants = { { name = "rag_qa", weight = 90 }, { name = "rag_qa_v2", weight = 10 } } },
        three = { variants = { { name = "x", weight = 1 }, { name = "y", weight = 1 }, { name = "z", weight = 2 } } },
        zero = { variants = { { name = "never", weight = 0 }, { name = "always", weight = 3 } } },
      })
      assert.are.same({ rag = "rag_qa", three = "z", zero = "always" }, flags.evaluate(set, { tenant = "acme" }).values)
      assert.are.equal("rag_qa_v2", value(set, "rag", "umbrella"))
      assert.are.equal("x", value(set, "three", "initech"))
      assert.are.same({ rag_qa = 8932, rag_qa_v2 = 1068 }, spread(set, "rag"))
      assert.are.same({ x = 2496, y = 2467, z = 5037 }, spread(set, "three"))
      assert.are.same({ always = 10000 }, spread(set, "zero"))
      -- by user within one tenant
      local by_user = spread(set, "rag", function(i) return "user-" .. i end)
      assert.are.same({ rag_qa = 9021, rag_qa_v2 = 979 }, by_user)
      assert.is_true(math.abs(by_user.rag_qa_v2 - 1000) <= 200)
    end)

    it("combines lists, rollout and variants in that order", function()
      local set = compile({ canary = { tenants = { "acme", "umbrella", "hooli", "initech" }, rollout = 50,
        variants = { { name = "v1", weight = 1 }, { name = "v2", weight = 1 } } } })
      assert.are.equal(208548, flags.bucket("canary", "acme"))
      assert.are.equal(688575, flags.bucket("canary", "acme", nil, "variants"))
      assert.are.equal("v2", value(set, "canary", "acme"))        -- in the rollout, upper half
      assert.are.equal(156117, flags.bucket("canary", "umbrella", nil, "variants"))
      assert.are.equal("v1", value(set, "canary", "umbrella"))
      assert.are.equal(851385, flags.bucket("canary", "initech"))
      assert.is_false(value(set, "canary", "initech"))            -- listed, outside the rollout
      assert.are.equal(101219, flags.bucket("canary", "globex"))
      assert.is_false(value(set, "canary", "globex"))             -- in the rollout, not listed
    end)
  end)

  describe("overrides", function()
    local set = compile({ beta = { rollout = 0 }, pilot = { tenants = { "a" } },
      rag = { variants = { { name = "rag_qa", weight = 100 }, { name = "rag_qa_v2", weight = 0 } } } })

    it("a tenant's policy pins flags", function()
      assert.are.same({ beta = true, pilot = false, rag = "rag_qa_v2" },
        flags.evaluate(set, { tenant = "a", overrides = { beta = true, pilot = false, rag = "rag_qa_v2" } }).values)
      assert.is_false(value(set, "rag", "a", nil, { rag = false }))
    end)

    it("ignores values a flag cannot take and flags the file does not have", function()
      local r = flags.evaluate(set, { tenant = "a", overrides = { beta = "yes", rag = "nope", ghost = true } })
      assert.are.same({ beta = false, pilot = true, rag = "rag_qa" }, r.values)
    end)

    it("check_overrides says what is wrong", function()
      assert.is_true(flags.check_overrides(set, { beta = true, rag = "rag_qa" }))
      assert.is_true(flags.check_overrides(set, nil))
      assert.are.same({ nil, "override of unknown flag 'ghost'" }, { flags.check_overrides(set, { ghost = true }) })
      assert.are.same({ nil, "override of flag 'beta' must be true or false" },
        { flags.check_overrides(set, { beta = "yes" }) })
      assert.are.same({ nil, "override of flag 'rag' must be false or one of its variants (rag_qa, rag_qa_v2)" },
        { flags.check_overrides(set, { rag = true }) })
    end)
  end)

  describe("kill switch", function()
    local set = compile({}, { providers = { "openai" }, models = { ["gpt-4"] = "incident 7" },
                              tools = { "search", web = true }, pipelines = { "rag_qa_v2" } })

    it("turns off providers, pipelines, tools and models, with the reason", function()
      assert.are.same({ true, "switched off by the kill switch" }, { flags.killed(set, "provider", "openai") })
      assert.are.same({ true, "incident 7" }, { flags.killed(set, "model", "gpt-4") })
      assert.are.same({ true, "switched off by the kill switch" }, { flags.killed(set, "tool", "web") })
      assert.are.same({ true, "switched off by the kill switch" }, { flags.killed(set, "pipeline", "rag_qa_v2") })
      assert.are.same({ false }, { flags.killed(set, "provider", "anthropic") })
      assert.are.same({ false }, { flags.killed(set, "model", "openai") })   -- kinds are separate
      assert.are.same({ false }, { flags.killed(compile({}), "tool", "search") })
    end)

    it("raises for a kind it does not know (a caller's bug)", function()
      assert.has_error(function() flags.killed(set, "providers", "openai") end,
        "flags.killed: kind must be provider, pipeline, tool or model, not 'providers'")
    end)
  end)

  describe("validation", function()
    local function err(t) return select(2, flags.compile(t)) end

    it("refuses what it does not understand, by name", function()
      assert.are.equal("the flags file must return a table { flags =, kill = }", err(42))
      assert.are.equal("unknown field 'flag' (expected flags, kill)", err({ flag = {} }))
      assert.are.equal("flag 'x': unknown field 'rollot' (expected enabled, rollout, tenants, deny, variants, description)",
        err({ flags = { x = { rollot = 5 } } }))
      assert.are.equal("flag 'x': no rule (give enabled, rollout, tenants, deny or variants)", err({ flags = { x = {} } }))
      assert.are.equal("flag 'x' must be a table", err({ flags = { x = true } }))
      assert.are.equal("flag name 'a b' must be letters, digits, _, . or -", err({ flags = { ["a b"] = { enabled = true } } }))
      assert.are.equal("flag 'x': enabled must be true or false", err({ flags = { x = { enabled = "yes" } } }))
      assert.are.equal("flag 'x': rollout must be a percentage from 0 to 100", err({ flags = { x = { rollout = 101 } } }))
      assert.are.equal("flag 'x': rollout must be a percentage from 0 to 100", err({ flags = { x = { rollout = "25" } } }))
      assert.are.equal("flag 'x': tenants must be a list of names", err({ flags = { x = { tenants = "a" } } }))
      assert.are.equal("flag 'x': deny[2] must be a non-empty string", err({ flags = { x = { deny = { "a", 3 } } } }))
      assert.are.equal("flag 'x': tenant 'a' is both in tenants and in deny",
        err({ flags = { x = { tenants = { "a" }, deny = { "a" } } } }))
      assert.are.equal("flag 'x': description must be a string", err({ flags = { x = { enabled = true, description = 1 } } }))
    end)

    it("checks variants", function()
      local function v(list) return err({ flags = { x = { variants = list } } }) end
      assert.are.equal("flag 'x': variants must be a non-empty list of { name =, weight = }", v({}))
      assert.are.equal("flag 'x': variants: the weights must sum to more than 0",
        v({ { name = "a", weight = 0 }, { name = "b", weight = 0 } }))
      assert.are.equal("flag 'x': variants[1]: weight must be a number >= 0", v({ { name = "a", weight = -1 } }))
      assert.are.equal("flag 'x': variants[1]: weight must be a number >= 0", v({ { name = "a" } }))
      assert.are.equal("flag 'x': variants[2]: variant 'a' is listed twice",
        v({ { name = "a", weight = 1 }, { name = "a", weight = 1 } }))
      assert.are.equal("flag 'x': variants[1]: unknown field 'wieght' (expected name, weight)",
        v({ { name = "a", wieght = 1 } }))
      assert.are.equal("flag 'x': variants[1]: name must be a non-empty string", v({ { weight = 1 } }))
    end)

    it("takes a decoded JSON document, and refuses its nulls by name", function()
      local set = assert(flags.compile(json.decode([[{ "flags": { "beta": { "rollout": 25 },
        "pipeline": { "variants": [ { "name": "rag_qa", "weight": 90 }, { "name": "rag_qa_v2", "weight": 10 } ] } },
        "kill": { "providers": [ "openai" ], "models": [] } }]])))
      assert.are.same({ beta = false, pipeline = "rag_qa" }, flags.evaluate(set, { tenant = "acme" }).values)
      assert.is_true((flags.killed(set, "provider", "openai")))
      assert.are.equal("flag 'x': enabled must be true or false", err(json.decode('{"flags":{"x":{"enabled":null}}}')))
    end)

    it("checks the kill switch", function()
      assert.are.equal("kill: unknown field 'provider' (expected providers, pipelines, tools, models)",
        err({ kill = { provider = { "a" } } }))
      assert.are.equal("kill.models must be a list of names", err({ kill = { models = "gpt-4" } }))
      assert.are.equal("kill.tools[1] must be a non-empty string", err({ kill = { tools = { 5 } } }))
      assert.are.equal("kill.tools.web: give a reason string or true", err({ kill = { tools = { web = 1 } } }))
    end)
  end)

  describe("load and hot reload", function()
    it("loads a file; its version is the content hash", function()
      local src = "return { flags = { beta = { rollout = 25 } }, kill = { providers = { 'openai' } } }"
      local path = write("a.lua", src)
      local set = assert(flags.load(path))
      assert.are.equal(reload.hash(src), set.version)
      assert.are.equal(16, #set.version)
      assert.are.equal(set, flags.load(path))                  -- compiled once per version
      local r = flags.evaluate(set, { tenant = "acme" })
      assert.are.same({ version = set.version, values = { beta = false } }, r)
      assert.is_true((flags.killed(set, "provider", "openai")))
    end)

    it("reports a file that does not load, with its path", function()
      local path = write("bad.lua", "return { flags = { x = { rollout = 200 } } }")
      assert.are.same({ nil, path .. ": flag 'x': rollout must be a percentage from 0 to 100" }, { flags.load(path) })
      local set, err = flags.load(dir .. "/missing.lua")
      assert.is_nil(set)
      assert.are.equal(dir .. "/missing.lua: No such file or directory", err)
    end)

    it("serves an edit as the new version; a broken edit keeps the old one", function()
      local src1 = "return { flags = { beta = { enabled = false } } }"
      local path = write("hot.lua", src1)
      local set1 = assert(flags.load(path))
      assert.are.equal(reload.hash(src1), set1.version)
      local src2 = "return { flags = { beta = { enabled = true } }, kill = { models = { 'gpt-4' } } }"
      write("hot.lua", src2)
      local set2
      for _ = 1, 200 do
        set2 = flags.load(path)
        if set2.version ~= set1.version then break end
        mg.sleep(0.01)
      end
      assert.are.equal(reload.hash(src2), set2.version)
      assert.is_true(value(set2, "beta", "acme"))
      assert.is_true((flags.killed(set2, "model", "gpt-4")))
      assert.is_false(value(set1, "beta", "acme"))             -- a request keeps what it was given

      local failures = reload.stats.failures
      write("hot.lua", "return { flags = { beta = { enabled = 'yes' } } }")
      for _ = 1, 200 do
        if reload.stats.failures > failures then break end
        mg.sleep(0.01)
      end
      assert.are.equal(failures + 1, reload.stats.failures)
      assert.are.equal(set2, flags.load(path))
      local st = flags.status(path)
      assert.are.equal(set2.version, st.version)
      assert.are.equal(path .. ": flag 'beta': enabled must be true or false", st.error)

      write("hot.lua", "return { flags = { beta = { enabled = true } } ")   -- does not compile
      for _ = 1, 200 do
        if reload.stats.failures > failures + 1 then break end
        mg.sleep(0.01)
      end
      assert.are.equal(failures + 2, reload.stats.failures)
      assert.are.equal(set2, flags.load(path))
    end)
  end)

  describe("a file other code loaded first, without the flags validator", function()
    it("keeps serving the last good set when a reloaded version does not validate", function()
      local path = write("shared.lua", "return { flags = { beta = { enabled = true } } }")
      assert(reload.require(path))
      local set = assert(flags.load(path))
      assert.is_true(value(set, "beta", "acme"))
      local reloads = reload.stats.reloads
      write("shared.lua", "return { flags = { beta = { enabled = 1 } } }")
      for _ = 1, 200 do
        if reload.stats.reloads > reloads then break end
        mg.sleep(0.01)
      end
      assert.are.equal(reloads + 1, reload.stats.reloads)     -- swapped in: nothing validated it
      assert.are.equal(set, flags.load(path))
    end)
  end)

  describe("describe", function()
    it("lists every flag with its rule, and the kill list, as JSON-ready tables", function()
      local path = write("d.lua", [[return {
        flags = {
          new_ui = { enabled = true, description = "the new chat UI" },
          beta = { rollout = 25 },
          pilot = { tenants = { "b", "a" }, deny = { "c" } },
          rag = { variants = { { name = "rag_qa", weight = 90 }, { name = "rag_qa_v2", weight = 10 } } },
          old = { enabled = false },
        },
        kill = { providers = { "openai" }, models = { ["gpt-4"] = "incident 7" } },
      }]])
      local set = assert(flags.load(path))
      local d = flags.describe(set)
      assert.are.same(json.decode(json.encode(d)), {
        version = set.version,
        flags = {
          { name = "beta", kind = "rollout", rule = "rollout 25%", rollout = 25 },
          { name = "new_ui", kind = "switch", rule = "on", enabled = true, description = "the new chat UI" },
          { name = "old", kind = "switch", rule = "off (enabled = false)", enabled = false },
          { name = "pilot", kind = "tenants", rule = "deny c; tenants a, b", tenants = { "a", "b" }, deny = { "c" } },
          { name = "rag", kind = "variants", rule = "variants rag_qa 90, rag_qa_v2 10",
            variants = { { name = "rag_qa", weight = 90 }, { name = "rag_qa_v2", weight = 10 } } },
        },
        kill = { providers = { { name = "openai", reason = "switched off by the kill switch" } },
                 models = { { name = "gpt-4", reason = "incident 7" } }, pipelines = {}, tools = {} },
      })
      assert.are.equal('"pipelines":[]', json.encode(d):match('"pipelines":%[%]'))
    end)
  end)

  describe("per request", function()
    it("evaluate compiles: no NYI, abort or stitch in flags.lua over many requests", function()
      local set = assert(flags.load(require("moongate.base").home .. "/tests/bench/flags/flags20.lua"))
      assert.are.equal(20, set.n)
      local log = require("moongate.jit_check").trace_log(function()
        for i = 1, 20000 do
          flags.evaluate(set, { tenant = "tenant-" .. (i % 100), user = "u", overrides = { dark_mode = true } })
        end
      end)
      local bad = {}
      for line in log:gmatch("[^\n]+") do
        if line:find("flags.lua", 1, true) and (line:find("NYI", 1, true) or line:find("abort", 1, true)
            or line:find("stitch", 1, true)) then
          bad[#bad + 1] = line
        end
      end
      assert.are.same({}, bad)
      assert.truthy(log:find("flags.lua", 1, true))              -- it was traced at all
    end)
  end)

  describe("GET /admin/flags", function()
    local show = require("moongate.gateway.flags").show

    it("answers the description, version and last reload", function()
      local src = "return { flags = { beta = { rollout = 25 } }, kill = { tools = { 'web' } } }"
      local path = write("admin.lua", src)
      local r = show({ config = { flags = path } })
      assert.are.equal(200, r.status)
      assert.are.equal("application/json", r.headers["content-type"])
      local body = json.decode(r.body)
      assert.are.equal(reload.hash(src), body.version)
      assert.are.same({ ok = true, file_version = reload.hash(src), failures = reload.stats.failures }, body.reload)
      assert.are.equal(path, body.path)
      assert.are.same({ { name = "beta", kind = "rollout", rule = "rollout 25%", rollout = 25 } }, body.flags)
      assert.are.same({ { name = "web", reason = "switched off by the kill switch" } }, body.kill.tools)

      -- a refused edit: the old version still serves and the error says why
      local failures = reload.stats.failures
      write("admin.lua", "return { flags = { beta = { rollout = -1 } } }")
      for _ = 1, 200 do
        if reload.stats.failures > failures then break end
        mg.sleep(0.01)
      end
      body = json.decode(show({ config = { flags = path } }).body)
      assert.are.equal(reload.hash(src), body.version)
      assert.is_false(body.reload.ok)
      assert.are.equal(path .. ": flag 'beta': rollout must be a percentage from 0 to 100", body.reload.error)
    end)

    it("answers 404 without a flags file and 503 when it never loaded", function()
      local r = show({ config = {} })
      assert.are.equal(404, r.status)
      assert.are.equal("flags_not_configured", json.decode(r.body).error.code)
      r = show({ config = { flags = dir .. "/nope.lua" } })
      assert.are.equal(503, r.status)
      assert.are.equal("the flags file does not load: " .. dir .. "/nope.lua: No such file or directory",
        json.decode(r.body).error.message)
    end)
  end)
end)
