-- moongate.gateway.request: what every OpenAI-style POST starts with: a JSON object body that
-- names a model, and the routing config of that model.
local json = require "moongate.json"
local errors = require "moongate.gateway.errors"

local M = {}

--- request.decode(req) -> doc, model name | nil, 400 response. The edge may have decoded the
--- body already (req.doc, kept in step with req.body when a stage changed it).
function M.decode(req)
  local doc, jerr = rawget(req, "doc"), nil
  if doc == nil then doc, jerr = json.decode(req.body) end
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

--- request.model(gw, name) -> the model's config (or the catch-all "*") | nil, 404 response
function M.model(gw, name)
  local mcfg = gw.models[name] or gw.models["*"]
  if not mcfg then
    return nil, errors.response(404, string.format("the model '%s' does not exist", name), "model_not_found")
  end
  return mcfg
end

return M
