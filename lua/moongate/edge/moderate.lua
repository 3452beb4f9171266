-- moongate.edge.moderate: moderation before and after generation (local rules or a provider's
-- moderation endpoint). A flagged request gets a clear refusal — a normal completion whose
-- finish_reason is content_filter, with the reason code — not an error page.
local json = require "moongate.json"

local M = {}
local Stage = {}
Stage.__index = Stage

--- new(config, gw) -> stage | nil (no `moderation` in the config)
function M.new(config, gw)
  if config.moderation == nil then return nil end
  local m, err = require("moongate.moderation").new(config.moderation)
  if not m then return nil, err end
  return setmetatable({ m = m }, Stage)
end

-- the text a user sent: every user message's string content and text parts
local function user_text(doc)
  local parts = {}
  for _, msg in ipairs(type(doc.messages) == "table" and doc.messages or {}) do
    if type(msg) == "table" and msg.role == "user" then
      local c = msg.content
      if type(c) == "string" then parts[#parts + 1] = c
      elseif type(c) == "table" then
        for _, p in ipairs(c) do
          if type(p) == "table" and p.type == "text" and type(p.text) == "string" then parts[#parts + 1] = p.text end
        end
      end
    end
  end
  return table.concat(parts, "\n")
end

-- The refusal, as a completion (or its stream) the client's SDK reads like any answer.
local function refusal(ctx, doc, verdict)
  local id = "chatcmpl-" .. tostring(ctx.id)
  local created = os.time()
  local model = type(doc.model) == "string" and doc.model or "moongate"
  local info = { refused = true, category = verdict.category, reason_code = verdict.reason_code }
  local headers = { ["x-moongate-refusal"] = verdict.reason_code }
  if doc.stream == true then
    local function chunk(delta, finish)
      return "data: " .. assert(json.encode{ id = id, object = "chat.completion.chunk", created = created,
        model = model, choices = json.array{ { index = 0, delta = delta, finish_reason = finish or json.null } },
        moongate = finish and info or nil }) .. "\n\n"
    end
    headers["content-type"] = "text/event-stream"
    headers["cache-control"] = "no-cache"
    return { status = 200, headers = headers,
             body = chunk({ role = "assistant", content = verdict.message }) .. chunk(json.object(), "content_filter")
               .. "data: [DONE]\n\n" }
  end
  headers["content-type"] = "application/json"
  return { status = 200, headers = headers, body = assert(json.encode{
    id = id, object = "chat.completion", created = created, model = model,
    choices = json.array{ { index = 0, message = { role = "assistant", content = verdict.message, refusal = verdict.message },
                            finish_reason = "content_filter" } },
    usage = { prompt_tokens = 0, completion_tokens = 0, total_tokens = 0 },
    moongate = info }) }
end

function Stage:before(ctx)
  if ctx.route ~= "chat" then return nil end
  local doc = ctx:doc()
  if not doc then return nil end
  local verdict = self.m:check(user_text(doc), "input")
  if verdict then
    ctx.refused = verdict.reason_code
    return refusal(ctx, doc, verdict)
  end
  return nil
end

-- A non-streamed answer is checked before it reaches the client.
function Stage:response(ctx, r)
  if ctx.route ~= "chat" or r.status ~= 200 or ctx.refused or type(r.body) ~= "string" then return r end
  local out = json.decode(r.body)
  local c = type(out) == "table" and type(out.choices) == "table" and out.choices[1]
  local text = type(c) == "table" and type(c.message) == "table" and c.message.content
  if type(text) ~= "string" then return r end
  local verdict = self.m:check(text, "output")
  if not verdict then return r end
  ctx.refused = verdict.reason_code
  local doc = ctx:doc() or {}
  local refused = refusal(ctx, { model = out.model or doc.model }, verdict)
  for k, v in pairs(r.headers or {}) do if refused.headers[k] == nil then refused.headers[k] = v end end
  return refused
end

return M
