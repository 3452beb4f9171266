-- moongate.gateway.sse: reads server-sent events from an upstream streaming response.
-- reader:next(timeout) -> data, event | nil (end of stream) | nil, err
-- Linear in the stream's size: events are cut from a read position, the buffer is only
-- compacted when a new chunk arrives.
local M = {}

local find, sub, byte = string.find, string.sub, string.byte

local Reader = {}
Reader.__index = Reader

-- res: a moongate.http streaming response (res:read(timeout) -> chunk | nil | nil, err)
function M.reader(res)
  return setmetatable({ res = res, buf = "", pos = 1, done = false }, Reader)
end

-- Parse one event block (without its blank line): data (lines joined by \n) or false, event name.
local function parse(block)
  -- the common case: a single "data: ..." line
  if sub(block, 1, 6) == "data: " and not find(block, "\n", 7, true) then
    if byte(block, -1) == 13 then block = sub(block, 1, -2) end
    return sub(block, 7), nil
  end
  local data, event
  local i, n = 1, #block
  while i <= n do
    local e = find(block, "\n", i, true) or n + 1
    local line = sub(block, i, e - 1)
    if byte(line, -1) == 13 then line = sub(line, 1, -2) end
    if sub(line, 1, 5) == "data:" then
      local v = sub(line, 6)
      if byte(v, 1) == 32 then v = sub(v, 2) end
      data = data and (data .. "\n" .. v) or v
    elseif sub(line, 1, 6) == "event:" then
      event = (sub(line, 7):gsub("^%s+", ""))
    end
    i = e + 1
  end
  return data or false, event
end
M.parse = parse

-- One event from the buffer at the read position, or nil when none is complete yet.
local function take(self)
  local s, e = find(self.buf, "\r?\n\r?\n", self.pos)
  if not s then return nil end
  local block = sub(self.buf, self.pos, s - 1)
  self.pos = e + 1
  return parse(block)
end

function Reader:next(timeout)
  while true do
    local data, event = take(self)
    if data then return data, event end
    if data == nil then
      if self.done then return nil end
      local chunk, err = self.res:read(timeout)
      if chunk == nil then
        if err then return nil, err end
        self.done = true
        -- a last event without its blank line still counts
        local rest = sub(self.buf, self.pos)
        self.buf, self.pos = "", 1
        if find(rest, "%S") then
          local d, ev = parse((rest:gsub("\r?\n$", "")))
          if d then return d, ev end
        end
        return nil
      end
      if self.pos > 1 then
        self.buf = sub(self.buf, self.pos) .. chunk
        self.pos = 1
      else
        self.buf = self.buf .. chunk
      end
    end
    -- data == false: an event without data (a comment or a bare event line): keep reading
  end
end

-- pending() -> true when a complete event is already buffered (next() will not wait)
function Reader:pending()
  return find(self.buf, "\r?\n\r?\n", self.pos) ~= nil
end

function Reader:close()
  if self.res then self.res:close() end
end

return M
