-- The scheduler: spawn, wait, sleep, cancel, deadlines.
local mg = require "moongate"

describe("scheduler", function()
  it("spawn returns fn's results through wait", function()
    local h = mg.spawn(function(a, b) mg.sleep(0.01) return a + b, "x" end, 1, 2)
    local s, x = h:wait()
    assert.are.equal(3, s)
    assert.are.equal("x", x)
    assert.are.equal("done", h:status())
  end)

  it("wait times out and the task keeps running until cancelled", function()
    local h = mg.spawn(function() mg.sleep(10) end)
    assert.are.same({ nil, "timeout" }, { h:wait(0.02) })
    assert.are.equal("waiting", h:status())
    assert.is_true(h:cancel())
    assert.are.same({ nil, "cancelled" }, { h:wait() })
    assert.are.same({ nil, "done" }, { h:cancel() })
  end)

  it("defer runs when a task returns, raises or is cancelled, last registered first", function()
    local log = {}
    local function rec(tag) return function(ok, err) log[#log + 1] = tag .. ":" .. tostring(ok) .. ":" .. tostring(err) end end
    mg.spawn(function() mg.defer(rec("a1")); mg.defer(rec("a2")); return 1 end):wait()
    mg.spawn(function() mg.defer(rec("b")); error("boom", 0) end):wait()
    local h = mg.spawn(function() mg.defer(rec("c")); mg.sleep(10) end)
    mg.sleep(0.01)
    h:cancel()
    -- a deferred function that raises is logged; the others still run
    mg.spawn(function() mg.defer(rec("d")); mg.defer(function() error("bad defer") end) end):wait()
    assert.are.same({ "a2:true:nil", "a1:true:nil", "b:false:boom", "c:false:cancelled", "d:true:nil" }, log)
    assert.has_error(function() mg.defer(42) end)
  end)

  it("defer passes its argument first, nil and false included, in order with those without one", function()
    local log = {}
    local function rec(arg, ok, err) log[#log + 1] = tostring(arg) .. ":" .. tostring(ok) .. ":" .. tostring(err) end
    local t = { name = "ctx" }
    mg.spawn(function()
      mg.defer(rec, "a"); mg.defer(rec, nil); mg.defer(rec, false)
      mg.defer(function(ok) log[#log + 1] = "plain:" .. tostring(ok) end)
      mg.defer(function(x) log[#log + 1] = x.name end, t)
      error("boom", 0)
    end):wait()
    assert.are.same({ "ctx", "plain:false", "false:false:boom", "nil:false:boom", "a:false:boom" }, log)
  end)

  it("a task that raises gives nil, err to its waiter", function()
    local h = mg.spawn(function() error("boom", 0) end)
    assert.are.same({ nil, "boom" }, { h:wait() })
  end)

  it("sleep honours the task's deadline", function()
    local h = mg.spawn(function()
      mg.timeout(0.05)
      local t0 = mg.now()
      local ok, err = mg.sleep(5)
      return ok, err, mg.now() - t0
    end)
    local ok, err, took = h:wait()
    assert.is_nil(ok)
    assert.are.equal("timeout", err)
    assert.is_true(took >= 0.04 and took < 1, "took " .. took)
  end)

  it("a child inherits its parent's deadline and cannot extend it", function()
    local h = mg.spawn(function()
      mg.timeout(0.2)
      local d = mg.deadline()
      local child = mg.spawn(function()
        mg.set_deadline(mg.now() + 100)
        return mg.deadline()
      end)
      return d, child:wait()
    end)
    local d, cd = h:wait()
    assert.are.equal(d, cd)
  end)

  it("runs a thousand sleeping tasks concurrently", function()
    local n, hs = 0, {}
    local t0 = mg.now()
    for i = 1, 1000 do hs[i] = mg.spawn(function() mg.sleep(0.05) n = n + 1 end) end
    for i = 1, 1000 do hs[i]:wait() end
    assert.are.equal(1000, n)
    assert.is_true(mg.now() - t0 < 1)
  end)

  it("context is shared with spawned tasks", function()
    local h = mg.spawn(function()
      mg.context().request_id = "r-1"
      return mg.spawn(function() return mg.context().request_id end):wait()
    end)
    assert.are.equal("r-1", h:wait())
  end)

  it("yield lets other tasks run", function()
    local order = {}
    local a = mg.spawn(function() for i = 1, 3 do order[#order + 1] = "a" .. i; mg.yield() end end)
    local b = mg.spawn(function() for i = 1, 3 do order[#order + 1] = "b" .. i; mg.yield() end end)
    a:wait(); b:wait()
    assert.are.same({ "a1", "b1", "a2", "b2", "a3", "b3" }, order)
  end)
end)

describe("timers after CPU work", function()
  it("a sleep lasts its full length even after a long stretch without yielding", function()
    local h = mg.spawn(function()
      local t = mg.now()
      while mg.now() - t < 0.15 do end      -- busy: the loop's cached time goes stale
      local t0 = mg.now()
      mg.sleep(0.1)
      return mg.now() - t0
    end)
    local took = h:wait()
    assert.is_true(took >= 0.099, "slept only " .. took)
  end)
end)
