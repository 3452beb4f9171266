-- moongate.providers.mock: the OpenAI-compatible provider pointed at a `moongate mock` server
-- (default http://127.0.0.1:9000/v1); faults are chosen per request by the client's body field
-- "mock" or header x-mock-fault, both passed through untouched.
local openai = require "moongate.providers.openai"

local M = {}

function M.new(name, cfg)
  cfg = cfg or {}
  local c = {}
  for k, v in pairs(cfg) do c[k] = v end
  c.base_url = c.base_url or os.getenv("MOONGATE_MOCK_URL") or "http://127.0.0.1:9000/v1"
  if c.api_key == nil then c.api_key = false end   -- never send a real key to the mock
  local p = openai.new(name, c)
  p.kind = "mock"
  return p
end

return M
