-- The runtime every command starts in (core/runtime.c): what each process gets before any module
-- is loaded.
local ffi = require "ffi"

pcall(ffi.cdef, "long readlink(const char *path, char *buf, size_t size);")

-- the binary running this spec (the sanitizer build's under ASan)
local function self_exe()
  local buf = ffi.new("char[4096]")
  local n = ffi.C.readlink("/proc/self/exe", buf, 4096)
  assert(n > 0, "readlink /proc/self/exe")
  return ffi.string(buf, n)
end

describe("the runtime", function()
  it("seeds math.random per process: two runs draw differently", function()
    local script = os.tmpname()
    local f = assert(io.open(script, "w"))
    f:write("print(math.random(1, 2^31 - 1), math.random(1, 2^31 - 1))\n")
    f:close()
    local exe = self_exe()
    local function draw()
      local p = assert(io.popen(("%q run %q 2>&1"):format(exe, script)))
      local out = p:read("*a")
      p:close()
      return out
    end
    local a, b = draw(), draw()
    os.remove(script)
    assert.matches("^%d+\t%d+\n$", a)
    assert.matches("^%d+\t%d+\n$", b)
    assert.are_not.equal(a, b)
  end)
end)
