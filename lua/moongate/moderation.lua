-- moongate.moderation: local moderation rules checked before generation (the user's text) and
-- after it (the answer). A rule is a category, a reason code and terms or Lua patterns; the first
-- rule that matches gives the verdict, which the edge turns into a refusal the client can read.
--
--   local m = moderation.new{ rules = {
--     { category = "self-harm", reason_code = "self_harm", terms = { "kill myself" },
--       message = "If you are thinking about harming yourself, please call your local emergency number." },
--     { category = "secrets", reason_code = "internal_codename", patterns = { "project%s+nightjar" }, phase = "output" },
--   } }
--   m:check("how do I kill myself", "input")  --> { category = "self-harm", reason_code = "self_harm", message = ... }
local M = {}

local Mod = {}
Mod.__index = Mod

M.MESSAGE = "I can't help with that request."

local PHASES = { input = true, output = true, both = true }
local FIELDS = { category = true, reason_code = true, terms = true, patterns = true, phase = true, message = true }

local function escape(s) return (s:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0")) end

--- moderation.new{ rules = { ... }, message = default refusal text } -> m | nil, err
function M.new(cfg)
  if type(cfg) ~= "table" or type(cfg.rules) ~= "table" then return nil, "moderation: rules must be a list" end
  local rules = {}
  for i, r in ipairs(cfg.rules) do
    local where = "moderation: rule " .. i
    if type(r) ~= "table" then return nil, where .. " must be a table" end
    for k in pairs(r) do if not FIELDS[k] then return nil, where .. ": unknown field '" .. tostring(k) .. "'" end end
    if type(r.category) ~= "string" or type(r.reason_code) ~= "string" then
      return nil, where .. " needs a category and a reason_code"
    end
    local phase = r.phase or "input"
    if not PHASES[phase] then return nil, where .. ": phase must be input, output or both" end
    local pats = {}
    for _, t in ipairs(r.terms or {}) do
      if type(t) ~= "string" or t == "" then return nil, where .. ": terms must be non-empty strings" end
      -- a whole word or phrase, any case, any run of spaces between its words
      pats[#pats + 1] = "%f[%w]" .. escape(t:lower()):gsub("%s+", "%%s+") .. "%f[%W]"
    end
    for _, p in ipairs(r.patterns or {}) do
      if type(p) ~= "string" or not pcall(string.find, "", p) then return nil, where .. ": bad pattern " .. tostring(p) end
      pats[#pats + 1] = p
    end
    if #pats == 0 then return nil, where .. " needs terms or patterns" end
    rules[#rules + 1] = { category = r.category, reason_code = r.reason_code, phase = phase, pats = pats,
                          message = r.message or cfg.message or M.MESSAGE }
  end
  return setmetatable({ rules = rules }, Mod)
end

--- m:check(text, phase) -> nil | { category, reason_code, message }; phase "input" or "output"
function Mod:check(text, phase)
  if type(text) ~= "string" or text == "" then return nil end
  local lower = text:lower()
  for _, r in ipairs(self.rules) do
    if r.phase == phase or r.phase == "both" then
      for _, p in ipairs(r.pats) do
        if lower:find(p) then return { category = r.category, reason_code = r.reason_code, message = r.message } end
      end
    end
  end
  return nil
end

return M
