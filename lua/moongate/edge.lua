-- moongate.edge: the ordered chain of stages every gateway route runs through — auth, quota, flags,
-- redaction, moderation, then the config's own — around the route handler.
--
-- A stage is a module whose new(config, gw) returns nil (nothing to do under this config, so it
-- costs nothing) or an object with any of:
--   before(ctx)      -> nil to go on, or a response table that answers the request now
--   response(ctx, r) -> r: a finished, non-streamed response on its way out (in reverse order)
--   finally(ctx)     runs when the request's task ends however it ends (answered, raised,
--                    client gone, deadline): release what before() took. It must not yield.
-- ctx is the request's edge context, also at moongate.context().edge for code deeper down
-- (usage accounting, spans): see M.context.
local moongate = require "moongate"
local json = require "moongate.json"
local trace = require "moongate.trace"
local observe = require "moongate.observe"

local M = {}

M.DEFAULT = { "auth", "quota", "flags", "releases", "redact", "moderate" }

local now, context, defer = moongate.now, moongate.context, moongate.defer
local rawget = rawget

-- ---- the per-request context --------------------------------------------------------------

local Ctx = {}
Ctx.__index = Ctx

--- ctx:doc() -> the request body decoded as a JSON object, or nil (the handler answers 400).
function Ctx:doc()
  local d = rawget(self, "_doc")
  if d == nil then
    local body = self.req.body
    d = body and body ~= "" and json.decode(body)
    if type(d) ~= "table" or json.is_array(d) then d = false end
    self._doc = d
    if d then self.req.doc = d end
  end
  return d or nil
end

--- ctx:set_doc(doc): the body changed (redaction, caps): what goes upstream is doc, re-encoded.
function Ctx:set_doc(doc)
  self._doc = doc
  local req = self.req
  req.doc = doc
  req.body = assert(json.encode(doc))
end

--- ctx:header(name, value): a header for the response, whichever way it is sent.
function Ctx:header(name, value)
  local h = self.headers
  if not h then h = {}; self.headers = h end
  h[name] = value
end

--- ctx:allows_tool(name) -> true | false, why: may this request's model run the server-side tool?
--- The tenant's policy lists the tools it may use (none listed: all); the kill switch turns one
--- off for everyone. A document or message that talks a model into calling a tool cannot get
--- past this: a tool that is not allowed is neither offered nor run.
function Ctx:allows_tool(name)
  local allowed = self.policy.tools
  if allowed then
    local ok = false
    for i = 1, #allowed do if allowed[i] == name then ok = true; break end end
    if not ok then return false, "not allowed for this tenant" end
  end
  local set = rawget(self, "flag_set")
  if set and require("moongate.flags").killed(set, "tool", name) then return false, "switched off" end
  return true
end

-- A response object that adds the edge's headers to a streamed answer's head.
local Res = {}
Res.__index = function(t, k)
  local real = rawget(t, "_res")
  local v = real[k]
  if type(v) == "function" then
    local f = function(_, ...) return v(real, ...) end
    rawset(t, k, f)
    return f
  end
  return v
end
local function start_with_headers(self, status, headers)
  local h = headers or {}
  for k, v in pairs(self._ctx.headers) do if h[k] == nil then h[k] = v end end
  return self._res:start(status, h)
end

-- M.context(req, res, route, gw, route_path) -> ctx, with the request's root span open; when the
-- request's task ends, the span is finished and the request reported (moongate.observe).
function M.context(req, res, route, gw, route_path)
  local ctx = setmetatable({ req = req, res = res, route = route, gw = gw, id = req.id,
                             t0 = req.start or now(), policy = M.NO_POLICY, route_path = route_path,
                             usage = { prompt_tokens = 0, completion_tokens = 0, calls = 0 } }, Ctx)
  context().edge = ctx
  observe.start(ctx, req)
  defer(observe.finish, ctx)   -- no closure per request: it would keep this path from compiling
  return ctx
end

M.NO_POLICY = setmetatable({}, { __newindex = function() error("the default policy is read-only", 2) end })

-- ---- the chain ------------------------------------------------------------------------------

-- A stage by name: built-in ("quota" -> moongate.edge.quota) or the config's own (a module on
-- package.path, the config's folder first, or a path to a .lua file).
local function load_stage(name, config)
  if type(name) == "table" then return name end
  if type(name) ~= "string" then return nil, "edge: a stage is a module name or a table" end
  if name:find("%.lua$") then
    local path = require("moongate.gateway").resolve(name, config)
    local chunk, err = loadfile(path)
    if not chunk then return nil, "edge: stage " .. name .. ": " .. tostring(err) end
    return chunk()
  end
  local builtin = "moongate.edge." .. name
  if package.searchpath(builtin, package.path) then return require(builtin) end
  local ok, mod = pcall(require, name)
  if not ok then return nil, "edge: stage " .. name .. ": " .. tostring(mod) end
  return mod
end

--- edge.new(config, gw) -> chain | nil, err. config.edge = { stages = {...}, extra = {...} }:
--- stages replaces the default list; extra adds the config's own after it.
function M.new(config, gw)
  local ecfg = config.edge or {}
  if type(ecfg) ~= "table" then return nil, "config: edge must be a table" end
  local names = {}
  for _, n in ipairs(ecfg.stages or M.DEFAULT) do names[#names + 1] = n end
  for _, n in ipairs(ecfg.extra or {}) do names[#names + 1] = n end
  local chain = { before = {}, response = {}, finally = {}, names = {}, stages = {}, settings = {} }
  for _, name in ipairs(names) do
    local mod, err = load_stage(name, config)
    if type(mod) ~= "table" or type(mod.new) ~= "function" then
      return nil, err or ("edge: stage " .. tostring(name) .. " must return a table with new(config, gw)")
    end
    for _, k in ipairs(mod.settings or {}) do chain.settings[k] = true end   -- top-level keys it reads
    local st, serr = mod.new(config, gw)
    if serr then return nil, "edge: stage " .. tostring(name) .. ": " .. tostring(serr) end
    if st then
      st.name = st.name or (type(name) == "string" and name) or "stage"
      st._pos = #chain.names + 1
      chain.names[#chain.names + 1] = st.name
      chain.stages[st.name] = st
      if st.before then chain.before[#chain.before + 1] = st end
      if st.response then table.insert(chain.response, 1, st) end
      if st.finally then chain.finally[#chain.finally + 1] = st end
    end
  end
  chain.nbefore, chain.nresponse, chain.nfinally = #chain.before, #chain.response, #chain.finally
  return chain
end

local function log_raise(what, st, err)
  local log = package.loaded["moongate.log"]
  if log then log.error(what, { stage = st.name, error = tostring(err) }) end
end

-- finally() of every stage the request reached, last first
local function run_finally(ctx)
  local fin, reached = ctx.chain.finally, ctx.reached
  for i = ctx.chain.nfinally, 1, -1 do
    local st = fin[i]
    if st._pos <= reached then
      local ok, err = pcall(st.finally, st, ctx)
      if not ok then log_raise("edge stage finally raised", st, err) end
    end
  end
end

local function finish_response(chain, ctx, r)
  if type(r) == "table" then
    local reached = ctx.reached
    for i = 1, chain.nresponse do
      local st = chain.response[i]
      if st._pos <= reached then r = st:response(ctx, r) or r end
    end
    local h = ctx.headers
    if h then
      local rh = r.headers
      if not rh then rh = {}; r.headers = rh end
      for k, v in pairs(h) do if rh[k] == nil then rh[k] = v end end
    end
    ctx.status = r.status or 200
  end
  return r
end

--- edge.run(chain, ctx, handler) -> the response (or nil once handler streamed it):
--- the stages' before() in order, the handler(ctx, res), the stages' response() in reverse;
--- finally() of each stage reached when the task ends.
function M.run(chain, ctx, handler)
  ctx.chain = chain
  ctx.reached = 0
  if chain.nfinally > 0 then defer(run_finally, ctx) end
  local before = chain.before
  local start = trace.start
  for i = 1, chain.nbefore do
    local st = before[i]
    ctx.reached = st._pos
    local sp = start(st.name)
    local r = st:before(ctx)
    if r then
      sp:set("http.response.status_code", r.status or 200):finish()
      return finish_response(chain, ctx, r)
    end
    sp:finish()
  end
  ctx.reached = math.huge
  local res = ctx.res
  if ctx.headers then res = setmetatable({ _res = res, _ctx = ctx, start = start_with_headers }, Res) end
  local r = handler(ctx, res)
  if r == nil then
    ctx.status = ctx.res.status
    return nil
  end
  return finish_response(chain, ctx, r)
end

return M
