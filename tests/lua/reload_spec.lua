-- Hot reload: same-size edits are seen, broken edits keep the old version, units get a fresh
-- environment, and the version id is the content hash.
local mg = require "moongate"
local reload = require "moongate.reload"

local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p " .. dir) == 0)

local function write(name, src)
  local f = assert(io.open(dir .. "/" .. name, "wb"))
  f:write(src)
  f:close()
end

-- Wait (bounded) until the unit's version differs from `old`.
local function changed(path, old)
  for _ = 1, 100 do
    local _, v = reload.require(path)
    if v ~= old then return v end
    mg.sleep(0.01)
  end
end

describe("reload", function()
  teardown(function() os.execute("rm -rf " .. dir) end)

  it("loads a unit and reports its content hash as version", function()
    write("a.lua", "return { answer = function() return 'v1' end }")
    local mod, v = reload.require(dir .. "/a.lua")
    assert.are.equal("v1", mod.answer())
    assert.are.equal(reload.hash("return { answer = function() return 'v1' end }"), v)
    assert.are.equal(16, #v)
  end)

  it("sees a same-size edit within the same second", function()
    local path = dir .. "/a.lua"
    local _, v1 = reload.require(path)
    write("a.lua", "return { answer = function() return 'v2' end }")
    local v2 = changed(path, v1)
    assert.is_not_nil(v2)
    assert.are.equal("v2", reload.require(path).answer())
  end)

  it("keeps the old version when the edit does not compile", function()
    local path = dir .. "/a.lua"
    local mod, v = reload.require(path)
    local failures = reload.stats.failures
    write("a.lua", "return { answer = function() return 'v3' end")   -- missing brace
    for _ = 1, 100 do
      if reload.stats.failures > failures then break end
      mg.sleep(0.01)
    end
    assert.are.equal(failures + 1, reload.stats.failures)
    local now, nv = reload.require(path)
    assert.are.equal(mod, now)
    assert.are.equal(v, nv)
    assert.are.equal("v2", now.answer())
  end)

  it("keeps the old version when validation fails, swaps when it passes", function()
    write("b.lua", "return { limit = 1 }")
    local validate = function(m)
      if type(m.limit) ~= "number" then return nil, "limit must be a number" end
      return true
    end
    local path = dir .. "/b.lua"
    local _, v1 = reload.require(path, validate)
    local failures = reload.stats.failures
    write("b.lua", "return { limit = 'x' }")
    for _ = 1, 100 do
      if reload.stats.failures > failures then break end
      mg.sleep(0.01)
    end
    assert.are.equal(1, reload.require(path).limit)
    write("b.lua", "return { limit = 2 }")
    assert.is_not_nil(changed(path, v1))
    assert.are.equal(2, reload.require(path).limit)
  end)

  it("reports each unit's last reload: failed with its error, then ok with the version it replaced", function()
    local path = dir .. "/e.lua"
    write("e.lua", "return { n = 1 }")
    local _, v1 = reload.require(path)
    local u = reload.units()[path]
    assert.are.equal(v1, u.version)
    assert.is_nil(u.last)
    assert.is_true(math.abs(u.loaded_at - os.time()) <= 1)
    write("e.lua", "return { n = ")
    for _ = 1, 100 do
      if reload.units()[path].last then break end
      mg.sleep(0.01)
    end
    u = reload.units()[path]
    assert.are.equal("failed", u.last.result)
    assert.are.equal(reload.hash("return { n = "), u.last.version)
    assert.matches("e.lua:1:", u.last.error)
    assert.are.equal(v1, u.version)
    write("e.lua", "return { n = 2 }")
    local v2 = changed(path, v1)
    u = reload.units()[path]
    assert.are.same({ result = "ok", at = u.last.at, version = v2, previous = v1 }, u.last)
    assert.is_nil(u.last_error)
  end)

  it("gives each unit a fresh environment", function()
    write("c.lua", "leaked_global = 1; return { ok = true }")
    assert.is_true(reload.require(dir .. "/c.lua").ok)
    assert.is_nil(rawget(_G, "leaked_global"))
  end)

  it("returns nil, err for a missing or broken first load", function()
    local m, err = reload.require(dir .. "/missing.lua")
    assert.is_nil(m)
    assert.matches("No such file", err)
    write("d.lua", "return (")
    m, err = reload.require(dir .. "/d.lua")
    assert.is_nil(m)
    assert.matches("d.lua:1:", err)
  end)
end)
