-- moongate.base: the C ABI's return codes and version, mirrored from core/mg.h.
-- Refuses to load against a core built for another ABI.
local ffi = require "ffi"

ffi.cdef [[
int mg_abi_version(void);
const char *mg_version(void);
const char *mg_home(void);
]]

local C = ffi.C
local ABI = 1

if C.mg_abi_version() ~= ABI then
  error(string.format("moongate Lua modules expect core ABI %d, the binary has %d",
    ABI, C.mg_abi_version()))
end

return {
  OK = 0,
  ERROR = -1,
  AGAIN = -2,
  BUSY = -3,
  DECLINED = -5,
  version = ffi.string(C.mg_version()),
  home = ffi.string(C.mg_home()),
}
