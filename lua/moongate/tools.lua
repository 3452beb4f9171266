-- moongate.tools: tools the model may call, run by moongate itself: plugins/<name>.lua declare a
-- name, a JSON schema, a timeout and whether they are idempotent; the tool-call loop runs them with
-- per-call timeouts, idempotency keys (a repeated call with the same key does not repeat its side
-- effect) and a hard cap on iterations.
local json = require "moongate.json"
local moongate = require "moongate"
local trace = require "moongate.trace"

local M = {}

local digest
do
  local ok, watch = pcall(require, "moongate._watch")
  if ok and watch.hash then digest = watch.hash else digest = function(s) return s end end
end

M.RESULT_TTL = 600   -- seconds a tool result is remembered under its idempotency key

-- validate(tool) -> true | nil, err: what a plugin must declare.
function M.validate(t)
  if type(t) ~= "table" then return nil, "a tool must return a table" end
  if type(t.name) ~= "string" or not t.name:match("^[%w_%-]+$") then
    return nil, "a tool needs a name of letters, digits, _ or -"
  end
  if type(t.parameters) ~= "table" then return nil, "tool " .. t.name .. ": parameters must be a JSON schema table" end
  if type(t.run) ~= "function" then return nil, "tool " .. t.name .. ": run(args, ctx) is missing" end
  if t.timeout ~= nil and (type(t.timeout) ~= "number" or t.timeout <= 0) then
    return nil, "tool " .. t.name .. ": timeout must be a positive number of seconds"
  end
  if t.idempotent ~= nil and type(t.idempotent) ~= "boolean" then
    return nil, "tool " .. t.name .. ": idempotent must be a boolean"
  end
  return true
end

local function plugin_path(name, dirs)
  for _, d in ipairs(dirs or {}) do
    local p = d .. "/" .. name .. ".lua"
    local f = io.open(p, "rb")
    if f then f:close(); return p end
  end
  return require("moongate.base").home .. "/plugins/" .. name .. ".lua"
end

-- load(name[, dirs]) -> tool | nil, err: plugins/<name>.lua, hot-reloaded.
function M.load(name, dirs)
  if type(name) ~= "string" or not name:match("^[%w_%-]+$") then return nil, "bad tool name" end
  local path = plugin_path(name, dirs)
  local f = io.open(path, "rb")
  if not f then return nil, "no tool " .. name end
  f:close()
  local ok, reload = pcall(require, "moongate.reload")
  local tool, err
  if ok then
    local rok, mod = pcall(reload.require, path, M.validate)
    if rok then tool = mod else err = tostring(mod) end
  else
    local dok, mod = pcall(dofile, path)
    if dok then tool = mod else err = tostring(mod) end
  end
  if not tool then return nil, err or ("cannot load tool " .. name) end
  local vok, verr = M.validate(tool)
  if not vok then return nil, verr end
  return tool
end

-- definitions(tools) -> the OpenAI `tools` array describing them
function M.definitions(tools)
  local out = json.array()
  for _, t in ipairs(tools) do
    out[#out + 1] = { type = "function", ["function"] = {
      name = t.name, description = t.description or "", parameters = t.parameters } }
  end
  return out
end

local store
local function results()
  if store then return store end
  local ok, shared = pcall(require, "moongate.shared")
  if ok and shared then
    store = shared.dict("tools")
  else
    local data = {}
    store = { get = function(k) return data[k] end, set = function(k, v) data[k] = v; return true end,
              add = function(k, v) if data[k] ~= nil then return nil, "exists" end data[k] = v; return true end,
              delete = function(k) data[k] = nil end }
  end
  return store
end
M._results = results

-- call(tool, arguments_json, key[, ctx]) -> result string, cached (bool) | nil, err
-- Runs tool.run(args, ctx) in its own task under tool.timeout (default 10 s). With a key, a result
-- is stored under it, and a call with the same key returns that result without running again;
-- for a non-idempotent tool a call in flight under the key makes a second one wait for it.
function M.call(tool, arguments, key, ctx)
  local args = json.decode(arguments or "{}")
  if type(args) ~= "table" or json.is_array(args) then return nil, "invalid arguments: not a JSON object" end
  local s = results()
  local rkey = key and ("tool:" .. tool.name .. ":" .. key)
  if rkey then
    local prev = s.get(rkey)
    if prev ~= nil then return prev, true end
    if not tool.idempotent then
      -- claim the key; a concurrent duplicate waits for the first call's result
      local claimed = s.add(rkey .. ":running", true, (tool.timeout or 10) + 1)
      if not claimed then
        local until_t = moongate.now() + (tool.timeout or 10) + 1
        while moongate.now() < until_t do
          moongate.sleep(0.01)
          local r = s.get(rkey)
          if r ~= nil then return r, true end
        end
        return nil, "tool call in progress elsewhere"
      end
    end
  end
  local h = moongate.spawn(function()
    local r, err = tool.run(args, ctx or {})
    if r == nil then return nil, err or "tool failed" end
    if type(r) ~= "string" then r = assert(json.encode(r)) end
    return r
  end)
  local r, err = h:wait(tool.timeout or 10)
  if r == nil and err == "timeout" then h:cancel() end
  if rkey and not tool.idempotent then s.delete(rkey .. ":running") end
  if r == nil then return nil, err end
  if rkey then s.set(rkey, r, M.RESULT_TTL) end
  return r, false
end

-- loop{ messages =, tools = {tool...}, call_model = fn(messages) -> completion doc | nil, err,
--       max_iterations = 4, key = idempotency key base (string or nil), ctx = }
-- -> final completion doc, iterations | nil, err
-- Each model answer whose tool calls all name known tools gets them run and answered; an answer
-- without tool calls (or naming a tool moongate does not have: the client's own) ends the loop.
function M.loop(o)
  local by_name = {}
  for _, t in ipairs(o.tools) do by_name[t.name] = t end
  local messages = o.messages
  local max = o.max_iterations or 4
  for i = 1, max + 1 do
    local doc, err = o.call_model(messages)
    if not doc then return nil, err end
    local choice = doc.choices and doc.choices[1]
    local msg = choice and choice.message
    local calls = msg and msg.tool_calls
    if type(calls) ~= "table" or #calls == 0 then return doc, i - 1 end
    for _, c in ipairs(calls) do
      if not by_name[c["function"] and c["function"].name] then return doc, i - 1 end
    end
    if i > max then return nil, "tool loop limit", max end
    messages[#messages + 1] = msg
    for _, c in ipairs(calls) do
      local fn = c["function"]
      -- the key names the call by what it does, not by the model's (random) call id: the same
      -- request retried with the same Idempotency-Key repeats no side effect
      local key = o.key and (o.key .. ":" .. i .. ":" .. fn.name .. ":" .. digest(fn.arguments or "")) or nil
      local sp = trace.start("execute_tool " .. fn.name, nil, trace.INTERNAL, "tool")
      sp:set("gen_ai.operation.name", "execute_tool"):set("gen_ai.tool.name", fn.name)
      if type(c.id) == "string" then sp:set("gen_ai.tool.call.id", c.id) end
      local result, cerr = M.call(by_name[fn.name], fn.arguments, key, o.ctx)
      if result == nil then sp:fail(cerr) elseif cerr == true then sp:set("moongate.tool.replayed", true) end
      sp:finish()
      if result == nil then result = assert(json.encode({ error = tostring(cerr) })) end
      messages[#messages + 1] = { role = "tool", tool_call_id = c.id, content = result }
    end
  end
  return nil, "tool loop limit", max
end

return M
