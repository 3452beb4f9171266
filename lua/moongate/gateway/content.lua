-- moongate.gateway.content: the text of a chat message's content, in either of the shapes
-- OpenAI's API gives it (a string, or an array of typed parts).
local M = {}

local concat = table.concat

--- content.text(content) -> a string as it is, an array of text parts joined by "\n"; nil when
--- it is neither or a part is not text (an image, a file, audio)
function M.text(content)
  if type(content) == "string" then return content end
  if type(content) ~= "table" then return nil end
  local parts = {}
  for i, p in ipairs(content) do
    if type(p) ~= "table" or p.type ~= "text" or type(p.text) ~= "string" then return nil end
    parts[i] = p.text
  end
  return concat(parts, "\n")
end

return M
