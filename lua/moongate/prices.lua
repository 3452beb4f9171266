-- moongate.prices: the config's price table (per million tokens, input and output), looked up one
-- way by everything that reports or limits spend (metrics, spans, quotas, releases, cache
-- savings): the upstream model's own price, else the price of the alias the client asked for,
-- else "*".
local M = {}

M.UNIT = 1e6   -- prices are per million tokens

--- prices.of(prices, upstream_model?, alias?) -> the price entry { input =, output = } | nil
function M.of(prices, model, alias)
  if not prices then return nil end
  return (model and prices[model]) or (alias and prices[alias]) or prices["*"]
end

--- prices.cost(price, tokens_in, tokens_out) -> what the tokens cost, in the table's units
function M.cost(p, tin, tout)
  return ((p.input or 0) * tin + (p.output or 0) * tout) / M.UNIT
end

return M
