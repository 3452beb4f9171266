-- moongate.gateway.sse: reads server-sent events from an upstream streaming response.
-- reader:next(timeout) -> data, event | nil (end of stream) | nil, err
local M = {}

local find, sub, gsub = string.find, string.sub, string.gsub

local Reader = {}
Reader.__index = Reader

-- res: a moongate.http streaming response (res:read(timeout) -> chunk | nil | nil, err)
function M.reader(res)
  return setmetatable({ res = res, buf = "", done = false }, Reader)
end

-- One event from the front of the buffer, or nil when none is complete yet.
local function take(self)
  local buf = self.buf
  local s, e = find(buf, "\r?\n\r?\n")
  if not s then return nil end
  local block = sub(buf, 1, s - 1)
  self.buf = sub(buf, e + 1)
  local data, event
  for line in gsub(block, "\r", ""):gmatch("[^\n]+") do
    if sub(line, 1, 5) == "data:" then
      local v = sub(line, 6)
      if sub(v, 1, 1) == " " then v = sub(v, 2) end
      data = data and (data .. "\n" .. v) or v
    elseif sub(line, 1, 6) == "event:" then
      event = (gsub(sub(line, 7), "^%s+", ""))
    end
  end
  return data or false, event
end

function Reader:next(timeout)
  while true do
    local data, event = take(self)
    if data then return data, event end
    if data == nil then
      if self.done then
        if find(self.buf, "%S") then
          self.buf = ""
          return nil, "truncated event"
        end
        return nil
      end
      local chunk, err = self.res:read(timeout)
      if chunk == nil then
        if err then return nil, err end
        self.done = true
        self.buf = self.buf .. "\n\n"   -- a last event without its blank line still counts
        local d, ev = take(self)
        self.buf = ""
        if d then return d, ev end
        return nil
      end
      self.buf = self.buf .. chunk
    end
    -- data == false: an event without data (a comment or a bare event line): keep reading
  end
end

function Reader:close()
  if self.res then self.res:close() end
end

return M
