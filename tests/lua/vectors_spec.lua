-- moongate.vectors: exact dot-product top-k, int8 accuracy, allow lists, save/load.
local ffi = require "ffi"
local jit_check = require "moongate.jit_check"
local vectors = require "moongate.vectors"
local bitset = require "moongate.bitset"

local function near(a, b, eps) return math.abs(a - b) < (eps or 1e-6) end

describe("vectors", function()
  it("finds the exact top-k by dot product, best first", function()
    local vs = assert(vectors.new(3))
    assert.are.equal(0, vs:add { 1, 0, 0 })
    assert.are.equal(1, vs:add { 0, 1, 0 })
    assert.are.equal(2, vs:add { 0.6, 0.8, 0 })
    local hits = vs:search({ 0.6, 0.8, 0 }, 2)
    assert.are.equal(2, #hits)
    assert.are.same({ 2, 1 }, { hits[1].row, hits[2].row })
    assert.is_true(near(1.0, hits[1].score))
    assert.is_true(near(0.8, hits[2].score))
    assert.are.equal(3, vs:count())
    assert.are.equal(3, vs:dim())
    assert.are.equal("f32", vs:quant())
    assert.are.same({}, vs:search({ 1, 0, 0 }, 0))
    assert.are.equal(3, #vs:search({ 1, 0, 0 }, 100))
  end)

  it("breaks ties by the lower row", function()
    local vs = vectors.new(2)
    for _ = 1, 5 do vs:add { 1, 1 } end
    local hits = vs:search({ 1, 0 }, 3)
    assert.are.same({ 0, 1, 2 }, { hits[1].row, hits[2].row, hits[3].row })
  end)

  it("int8 scores stay within the quantization error", function()
    local f, q = vectors.new(4), vectors.new(4, { quant = "i8" })
    local data = { { 0.1, -0.7, 0.3, 0.5 }, { -0.2, 0.2, 0.9, -0.1 }, { 0.5, 0.5, -0.5, 0.5 } }
    for _, v in ipairs(data) do f:add(v); q:add(v) end
    local query = { 0.3, -0.1, 0.8, 0.2 }
    local a, b = f:search(query, 3), q:search(query, 3)
    for i = 1, 3 do
      assert.are.equal(a[i].row, b[i].row)
      assert.is_true(near(a[i].score, b[i].score, 0.01))
    end
    assert.are.equal("i8", q:quant())
    local back = q:get(0)
    assert.is_true(near(-0.7, back[2], 0.7 / 127))
  end)

  it("scans only rows in the allow list", function()
    local vs = vectors.new(2)
    for i = 0, 199 do vs:add { i, 1 } end
    local allow = bitset.new(200):set(3):set(64):set(150)
    local hits = vs:search({ 1, 0 }, 10, allow)
    assert.are.same({ 150, 64, 3 }, { hits[1].row, hits[2].row, hits[3].row })
    assert.are.equal(3, #hits)
    assert.are.same({}, vs:search({ 1, 0 }, 10, bitset.new(200)))
  end)

  it("accepts float* cdata and bulk adds", function()
    local vs = vectors.new(2)
    local buf = ffi.new("float[6]", { 1, 0, 0, 1, 1, 1 })
    assert.are.equal(0, vs:add_many(buf, 3))
    local hits = vs:search(ffi.new("float[2]", { 0, 2 }), 1)
    assert.are.equal(1, hits[1].row)
    assert.is_true(near(2, hits[1].score))
  end)

  it("saves and loads", function()
    for _, quant in ipairs { "f32", "i8" } do
      local vs = vectors.new(3, { quant = quant })
      vs:add { 0.1, 0.2, 0.3 }
      vs:add { -0.3, 0.2, 0.1 }
      local path = os.tmpname()
      assert.is_true(vs:save(path))
      local re = assert(vectors.load(path))
      assert.are.same(vs:search({ 1, 1, 1 }, 2), re:search({ 1, 1, 1 }, 2))
      assert.are.equal(quant, re:quant())
      local f = io.open(path, "wb"); f:write("x"); f:close()
      assert.are.same({ nil, "not a vector file" }, { vectors.load(path) })
      os.remove(path)
    end
    assert.are.same({ nil, "cannot open" }, { vectors.load("/nonexistent/v") })
  end)

  it("uses a SIMD kernel when the CPU has one, and every kernel agrees", function()
    local name = vectors.kernel()
    assert.is_truthy(({ avx512 = true, avx2 = true, portable = true })[name])
    local vs = vectors.new(37)
    local v = {}
    for i = 1, 37 do v[i] = math.sin(i) end
    vs:add(v)
    local want
    for _, k in ipairs { "portable", "avx2", "avx512" } do
      if vectors.set_kernel(k) then
        local s = vs:search(v, 1)[1].score
        want = want or s
        assert.is_true(near(want, s, 1e-4))
      end
    end
    assert.is_true(vectors.set_kernel(name))
    assert.is_false(vectors.set_kernel("sse9"))
  end)

  it("refuses bad input", function()
    local vs = vectors.new(2)
    assert.are.same({ nil, "not a finite number" }, { vs:add { 0 / 0, 1 } })
    assert.are.same({ nil, "not a finite number" }, { vs:add { math.huge, 1 } })
    assert.has_error(function() vs:add { 1 } end, "vector must have 2 numbers, got 1")
    assert.has_error(function() vs:add { 1, "x" } end, "vector must hold numbers")
    assert.has_error(function() vs:search({ 1, 1 }, 10, {}) end, "allow must be a bitset")
    assert.has_error(function() vectors.new(2, { quant = "f16" }) end, 'quant must be "f32" or "i8"')
    assert.are.same({ nil, "dim must be within [1, 65536]" }, { vectors.new(0) })
    vs:close()
    vs:close()
    assert.has_error(function() vs:count() end, "vector store is closed")
  end)
end)

describe("vectors under the JIT", function()
  it("an add and search loop compiles to a trace without NYI or stitch", function()
    local dim = 100   -- the local embedder's size
    local vs = vectors.new(dim)
    local x, q = {}, {}
    for j = 1, dim do x[j] = 0; q[j] = 0 end
    q[1] = 1
    local sum = 0
    local log = jit_check.trace_log(function()
      for i = 1, 300 do
        x[1] = i
        vs:add(x)
        sum = sum + vs:search(q, 1)[1].row
      end
    end)
    assert.are.equal(300 * 299 / 2, sum)
    -- the copy loop is a trace of its own; the rest of each turn runs in side traces linked
    -- back to it, so compiled throughout
    assert.matches("vectors.lua:%d+ loop%]", log)
    assert.is_nil(log:find("fallback", 1, true), log)
    assert.is_nil(log:find("NYI", 1, true), log)
    assert.is_nil(log:find("stitch", 1, true), log)
  end)
end)
