-- moongate.gateway.request: what every OpenAI-style POST starts with: a JSON object body that
-- names a model, and the routing config of that model.
local json = require "moongate.json"
local errors = require "moongate.gateway.errors"

local M = {}

--- request.decode(req) -> doc, model name | nil, 400 response. The edge may have decoded the
--- body already (req.doc, kept in step with req.body when a stage changed it).
function M.decode(req)
  local doc, jerr = rawget(req, "doc"), nil
  if doc == nil then
    doc, jerr = json.decode(req.body)
    if type(doc) == "table" then req.doc = doc end
  end
  if type(doc) ~= "table" or json.is_array(doc) then
    return nil, errors.response(400, "the request body must be a JSON object" ..
      (jerr and (": " .. jerr) or ""), "invalid_json")
  end
  local name = doc.model
  if type(name) ~= "string" or name == "" then
    return nil, errors.response(400, "you must provide a model parameter", "invalid_request")
  end
  return doc, name
end

--- request.prompt_tokens(doc, model) -> the tokens of doc.messages as the model counts them
--- (its own encoding when the tokenizer knows the name, else o200k, gpt-4o's)
function M.prompt_tokens(doc, model)
  local ok, tok = pcall(require, "moongate.tokenizer")
  if ok and tok and tok.count_chat then
    local cok, n = pcall(tok.count_chat, doc.messages, model)
    if cok and n then return n end
    cok, n = pcall(tok.count_chat, doc.messages, "gpt-4o")
    if cok and n then return n end
  end
  -- no tokenizer: a conservative estimate of one token per 4 bytes of text
  local chars = 0
  for _, m in ipairs(doc.messages) do
    if type(m.content) == "string" then chars = chars + #m.content end
  end
  return math.ceil(chars / 4)
end

--- request.model(gw, name) -> the model's config (or the catch-all "*") | nil, 404 response
function M.model(gw, name)
  local mcfg = gw.models[name] or gw.models["*"]
  if not mcfg then
    return nil, errors.response(404, string.format("the model '%s' does not exist", name), "model_not_found")
  end
  return mcfg
end

return M
