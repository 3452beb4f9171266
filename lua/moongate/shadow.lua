-- moongate.shadow: a sampled copy of a release's control traffic answered by its candidate in the
-- background — recorded next to what was served (and traced), never returned to anyone — for
-- `moongate eval --shadow` to compare.
local moongate = require "moongate"
local json = require "moongate.json"
local sqlite = require "moongate.sqlite"
local metrics = require "moongate.metrics"

local M = {}

local now = moongate.now

M.QUEUE = 256   -- copies waiting per worker; beyond it they are dropped (and counted)

local shadows = metrics.counter("moongate_shadow_requests_total",
  "Copies of requests answered by a release's candidate in the background, by outcome (ok, error, dropped).",
  { "release", "outcome" })

local SCHEMA = [[
CREATE TABLE IF NOT EXISTS shadow (
  request_id        TEXT PRIMARY KEY,   -- the served request
  release           TEXT NOT NULL,
  candidate_version TEXT NOT NULL,
  created           REAL NOT NULL,
  tenant            TEXT,
  model             TEXT,
  question          TEXT,               -- the last user message (NULL unless the tenant keeps raw text)
  served            TEXT,               -- the answer sent (NULL unless the tenant keeps raw text)
  served_hash       TEXT,
  served_ms         REAL,
  served_tokens_in  INTEGER,
  served_tokens_out INTEGER,
  shadow            TEXT,               -- the candidate's answer (NULL unless the tenant keeps raw text)
  shadow_hash       TEXT,
  shadow_status     INTEGER,            -- 200, or the failure's status
  shadow_error      TEXT,
  shadow_ms         REAL,
  shadow_tokens_in  INTEGER,
  shadow_tokens_out INTEGER,
  shadow_provider   TEXT
);
CREATE INDEX IF NOT EXISTS shadow_created ON shadow(created);
]]

--- shadow.open(path[, readonly]) -> db | nil, err: the shadow table in the store at path
function M.open(path, readonly)
  local db, err = sqlite.open(path, { readonly = readonly, busy_timeout = 2 })
  if not db then return nil, err end
  if not readonly then
    local ok, serr = db:exec(SCHEMA)
    if not ok then db:close(); return nil, serr end
  end
  return db
end

local function answer_of(doc)
  local c = type(doc) == "table" and type(doc.choices) == "table" and doc.choices[1]
  local t = type(c) == "table" and type(c.message) == "table" and c.message.content
  return type(t) == "string" and t or nil
end
M.answer_of = answer_of

local function last_user(doc)
  for i = #(doc.messages or {}), 1, -1 do
    local m = doc.messages[i]
    if type(m) == "table" and m.role == "user" and type(m.content) == "string" then return m.content end
  end
end

local queue, head, tail = {}, 1, 0
local worker, store, store_path

--- shadow.offer(rel, ctx, r): a served, finished chat answer; copied to the candidate when the
--- release's shadow share samples it.
function M.offer(rel, ctx, r)
  if not rel.shadow or math.random() >= rel.shadow then return end
  if r.status ~= 200 or type(r.body) ~= "string" then return end
  if tail - head + 1 >= M.QUEUE then shadows:inc(1, rel.name, "dropped"); return end
  local u = ctx.usage
  tail = tail + 1
  queue[tail] = {
    rel = rel, doc = ctx.req.doc, model = ctx.req.doc and ctx.req.doc.model, tenant = ctx.tenant, id = ctx.id,
    raw = ctx.policy and ctx.policy.log_raw == true, served = answer_of(json.decode(r.body)),
    served_ms = (now() - ctx.t0) * 1000, tin = u.prompt_tokens, tout = u.completion_tokens,
  }
end

local function record(item, res)
  if not store_path then return end
  if not store then
    local err
    store, err = M.open(store_path)
    if not store then
      local log = package.loaded["moongate.log"]
      if log then log.warn("shadow store unavailable", { error = tostring(err) }) end
      store_path = nil
      return
    end
  end
  local hash = require("moongate.reload").hash
  local keep = item.raw
  store:query("INSERT OR REPLACE INTO shadow VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
    item.id, item.rel.name, item.rel.version, os.time(), item.tenant, item.model,
    keep and last_user(item.doc) or nil, keep and item.served or nil, item.served and hash(item.served) or nil,
    item.served_ms, item.tin, item.tout,
    keep and res.answer or nil, res.answer and hash(res.answer) or nil, res.status, res.error, res.ms,
    res.tin, res.tout, res.provider)
end

-- One copy through the candidate, in its own trace (route "shadow", request id shadow-<id>).
local function run_one(gw, item)
  local trace = require "moongate.trace"
  local chat = require "moongate.gateway.chat"
  local reload = require "moongate.reload"
  local c = moongate.context()
  local saved = c.span
  local root = trace.request({ headers = {} }, "shadow chat")
  if not root.noop then
    root:set("moongate.release", item.rel.name):set("moongate.release.variant", "shadow")
      :set("moongate.release.version", item.rel.version):set("moongate.shadow.of", item.id)
  end
  local policy = reload.require(item.rel.candidate, chat.validate_policy)
  local t0 = now()
  local ok, result, info = pcall(chat.call_with_policy, gw, item.doc, item.model, policy, item.tenant)
  local res = { ms = (now() - t0) * 1000 }
  if ok and result then
    res.status = 200
    res.answer = answer_of(result.doc or json.decode(result.body or ""))
    local u = result.usage or {}
    res.tin, res.tout = tonumber(u.prompt_tokens), tonumber(u.completion_tokens)
    res.provider = info and info.tier and info.tier.provider
  else
    local f = ok and info or { message = tostring(result) }
    res.status = tonumber(f.status) or 502
    if res.status < 500 and res.status ~= 400 then res.status = 502 end
    res.error = tostring(f.message or f.reason or "failed")
    if not root.noop then root:fail(res.error) end
  end
  trace.finish_request(root, { request_id = "shadow-" .. tostring(item.id), route = "shadow", tenant = item.tenant,
    model = item.model, status = res.status, upstream = res.provider, tokens_in = res.tin, tokens_out = res.tout })
  c.span = saved
  shadows:inc(1, item.rel.name, res.status == 200 and "ok" or "error")
  local rok, rerr = pcall(record, item, res)
  if not rok then
    local log = package.loaded["moongate.log"]
    if log then log.warn("shadow record failed", { error = tostring(rerr) }) end
  end
end

--- shadow.start(gw, path): this worker's background task that answers the queued copies, one
--- at a time (a copy never competes with served traffic for more than one upstream call).
function M.start(gw, path)
  store_path = path
  if worker then return end
  worker = moongate.spawn(function()
    while true do
      if head > tail then
        moongate.sleep(0.02)
      else
        local item = queue[head]
        queue[head] = nil
        head = head + 1
        local ok, err = pcall(run_one, gw, item)
        if not ok then
          local log = package.loaded["moongate.log"]
          if log then log.warn("shadow request failed", { error = tostring(err) }) end
        end
      end
    end
  end)
end

--- shadow.pending() -> copies waiting in this worker
function M.pending() return tail - head + 1 end

return M
