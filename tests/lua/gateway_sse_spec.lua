-- Server-sent events read from an upstream stream, whatever the chunk boundaries.
local sse = require "moongate.gateway.sse"

local function res_of(chunks, final_err)
  local i = 0
  return {
    read = function()
      i = i + 1
      if chunks[i] then return chunks[i] end
      if final_err then return nil, final_err end
      return nil
    end,
    close = function() end,
  }
end

local function all(r)
  local out = {}
  while true do
    local d, ev = r:next(1)
    if not d then out.err = ev; break end
    out[#out + 1] = ev and (ev .. "|" .. d) or d
  end
  return out
end

describe("gateway.sse", function()
  it("splits events across arbitrary chunk boundaries", function()
    local r = sse.reader(res_of{ 'data: {"a":', '1}\n', '\ndata: {"b":2}\n\n: keep-alive\n\nda', 'ta: [DONE]\n\n' })
    assert.are.same({ '{"a":1}', '{"b":2}', "[DONE]" }, all(r))
  end)

  it("reads event names, CRLF line ends and multi-line data", function()
    local r = sse.reader(res_of{ "event: message_start\r\ndata: {}\r\n\r\ndata: a\ndata: b\n\n" })
    assert.are.same({ "message_start|{}", "a\nb" }, all(r))
  end)

  it("keeps a last event that has no blank line after it", function()
    assert.are.same({ "x", "y" }, all(sse.reader(res_of{ "data: x\n\ndata: y" })))
  end)

  it("returns the transfer's error", function()
    local out = all(sse.reader(res_of({ "data: x\n\ndata: partial" }, "reset")))
    assert.are.same({ "x" }, { out[1] })
    assert.are.equal("reset", out.err)
  end)
end)
