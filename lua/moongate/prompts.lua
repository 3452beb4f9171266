-- moongate.prompts: prompt templates as files next to their pipelines, hot-reloaded and versioned
-- like any unit (the version is the file's content hash), rendered once per version and values.
--
--   local p = assert(prompts.load("pipelines/rag_qa.system.txt", { style = "brief" }))
--   p.text      -- the rendered prompt; p.version -- 16 hex digits; p.name -- "rag_qa.system"
local reload = require "moongate.reload"

local M = {}

local format = string.format

-- A template is text with {{name}} placeholders (letters, digits, _); one final newline is dropped.
local function compile(src)
  local parts, names, seen = {}, {}, {}
  local i = 1
  while true do
    local a, b, name = src:find("{{%s*([%w_]*)%s*}}", i)
    if not a then parts[#parts + 1] = src:sub(i); break end
    parts[#parts + 1] = src:sub(i, a - 1)
    if name == "" then return nil, format("empty placeholder {{}} at byte %d", a) end
    parts[#parts + 1] = { name }
    if not seen[name] then seen[name] = true; names[#names + 1] = name end
    i = b + 1
  end
  return { parts = parts, names = names }
end

-- reload's validator: a template that does not compile never swaps in.
local function validate(mod)
  -- the newline an editor ends the file with is not part of the prompt
  local t, err = compile((mod.text:gsub("\r?\n$", "")))
  if not t then return nil, err end
  mod.template = t
  mod.renders, mod.n_renders = {}, 0
  return true
end

local function render(t, vars)
  local out = {}
  for i, p in ipairs(t.parts) do
    if type(p) == "table" then
      local v = vars and vars[p[1]]
      if v == nil then return nil, format("no value for {{%s}}", p[1]) end
      out[i] = tostring(v)
    else
      out[i] = p
    end
  end
  return table.concat(out)
end

local function key_of(vars)
  if not vars then return "" end
  local ks = {}
  for k in pairs(vars) do ks[#ks + 1] = k end
  table.sort(ks)
  local parts = {}
  for i, k in ipairs(ks) do parts[i] = k .. "\0" .. tostring(vars[k]) end
  return table.concat(parts, "\1")
end

--- prompts.load(path[, vars]) -> { text =, version =, name =, path = } | nil, err
--- The newest version of the template file that compiled, rendered with vars (each
--- {{placeholder}} needs a value); the same version and values render once.
function M.load(path, vars)
  if type(path) ~= "string" then error("prompts.load: path must be a string", 2) end
  local mod, version = reload.require(path, validate, { text = true })
  if not mod then return nil, version end
  local k = key_of(vars)
  local p = mod.renders[k]
  if p then return p end
  local text, err = render(mod.template, vars)
  if not text then return nil, path .. ": " .. err end
  p = { text = text, version = version, path = path, name = (path:match("([^/]+)$"):gsub("%.[^.]*$", "")),
        placeholders = mod.template.names }
  -- values that change per request would grow this without end: keep the last 64 renders
  if mod.n_renders >= 64 then mod.renders, mod.n_renders = {}, 0 end
  mod.renders[k], mod.n_renders = p, mod.n_renders + 1
  return p
end

--- prompts.next_to(file, name) -> the path of template `name` next to a pipeline file:
--- next_to("/srv/pipelines/rag_qa.lua", "system") -> "/srv/pipelines/rag_qa.system.txt"
function M.next_to(file, name)
  return (file:gsub("%.lua$", "")) .. "." .. name .. ".txt"
end

return M
