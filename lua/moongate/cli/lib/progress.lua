-- Progress of a long command on stderr: a redrawn bar on a terminal, one plain line per step
-- otherwise (CI logs keep every line; a bar there would be one unreadable line).
local ffi = require "ffi"
pcall(ffi.cdef, "int isatty(int fd);")

local M = {}

--- progress.new{ quiet = bool } -> p; p:step(done, total, label), p:done()
function M.new(o)
  o = o or {}
  local p = { tty = ffi.C.isatty(2) == 1, quiet = o.quiet, last = 0 }
  function p:step(done, total, label)
    if self.quiet then return end
    if not self.tty then
      io.stderr:write(("%d/%d %s\n"):format(done, total, label or ""))
      return
    end
    local t = os.clock()
    if t - self.last < 0.05 and done < total then return end
    self.last = t
    local width = 30
    local frac = total > 0 and done / total or 1
    local fill = math.floor(frac * width)
    io.stderr:write(("\r[%s%s] %3d%% %d/%d %-40s"):format(("#"):rep(fill), ("-"):rep(width - fill),
      math.floor(frac * 100), done, total, (label or ""):sub(1, 40)))
    io.stderr:flush()
  end
  function p:done()
    if self.tty and not self.quiet then io.stderr:write("\r", (" "):rep(100), "\r") end
  end
  return p
end

return M
