-- moongate.gateway.feedback: POST /v1/feedback — a rating or correction of an answer, for the
-- tenant that asked (another tenant's request id is unknown to it), stored next to its trace.
local json = require "moongate.json"
local errors = require "moongate.gateway.errors"
local feedback = require "moongate.feedback"
local metrics = require "moongate.metrics"

local rated = metrics.counter("moongate_release_feedback_total",
  "Feedback on the answers of a release's variant: positive (score >= 0.75), negative (<= 0.25), neutral, " ..
  "or correction (no rating).", { "release", "variant", "kind" })

local M = {}

local store, store_path   -- one connection per worker

local function open()
  local path = require("moongate.trace.export").settings.store
  if not path then return nil end
  if store and store_path == path then return store end
  if store then store:close() end
  local s, err = feedback.open(path)
  if not s then return nil, err end
  store, store_path = s, path
  return store
end

-- The request's trace: in the store, or still queued in this worker (traces are written in
-- batches, so feedback can come first).
local function find(s, id)
  local t = s:request(id)
  if t then return t end
  pcall(require("moongate.trace.export").drain)
  return s:request(id)
end

--- handle(ctx) -> response
function M.handle(ctx)
  local doc = ctx:doc()
  if not doc then return errors.response(400, "the body must be a JSON object", "invalid_request") end
  local f, err = feedback.check(doc)
  if not f then return errors.response(400, err, "invalid_request") end
  local s, oerr = open()
  if not s then
    if oerr then return errors.response(503, oerr, "feedback_unavailable") end
    return errors.response(404, "feedback is kept in the trace store, which is off (trace.store = false)", "not_found")
  end
  local t = find(s, f.request_id)
  -- another tenant's request is as unknown as one that never was
  if not t or (t.tenant or false) ~= (ctx.tenant or false) then
    return errors.response(404, "no request " .. f.request_id .. " in the trace store", "request_not_found")
  end
  local ok, serr = s:save(f, ctx.tenant)
  if not ok then return errors.response(503, "cannot store the feedback: " .. tostring(serr), "feedback_unavailable") end
  local release, variant = feedback.release_of(t.spans)
  if release then
    local kind = not f.score and "correction" or f.score >= 0.75 and "positive" or f.score <= 0.25 and "negative" or "neutral"
    rated:inc(1, release, variant or "", kind)
  end
  return { status = 201, headers = { ["content-type"] = "application/json" },
           body = assert(json.encode({ object = "feedback", request_id = f.request_id, rating = f.rating or json.null,
                                       score = f.score or json.null, tags = json.array(f.tags) })) }
end

return M
