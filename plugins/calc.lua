-- plugins/calc.lua: exact arithmetic on + - * / ^ and parentheses, so the model need not guess.
local function parse(expr)
  local pos = 1
  local function skip() pos = expr:find("[^%s]", pos) or #expr + 1 end
  local sum
  local function atom()
    skip()
    local c = expr:sub(pos, pos)
    if c == "(" then
      pos = pos + 1
      local v = sum()
      skip()
      if expr:sub(pos, pos) ~= ")" then error("expected )", 0) end
      pos = pos + 1
      return v
    elseif c == "-" then
      pos = pos + 1
      return -atom()
    end
    local num = expr:match("^%d+%.?%d*", pos) or expr:match("^%.%d+", pos)
    if not num then error("expected a number at " .. pos, 0) end
    pos = pos + #num
    return tonumber(num)
  end
  local function power()
    local v = atom()
    skip()
    if expr:sub(pos, pos) == "^" then pos = pos + 1; return v ^ power() end
    return v
  end
  local function product()
    local v = power()
    while true do
      skip()
      local op = expr:sub(pos, pos)
      if op ~= "*" and op ~= "/" then return v end
      pos = pos + 1
      local r = power()
      if op == "*" then v = v * r else
        if r == 0 then error("division by zero", 0) end
        v = v / r
      end
    end
  end
  function sum()
    local v = product()
    while true do
      skip()
      local op = expr:sub(pos, pos)
      if op ~= "+" and op ~= "-" then return v end
      pos = pos + 1
      local r = product()
      v = op == "+" and v + r or v - r
    end
  end
  local v = sum()
  skip()
  if pos <= #expr then error("unexpected '" .. expr:sub(pos, pos) .. "'", 0) end
  return v
end

return {
  name = "calc",
  description = "Evaluate an arithmetic expression with + - * / ^ and parentheses.",
  parameters = { type = "object", required = { "expression" }, properties = {
    expression = { type = "string", description = "e.g. (2 + 3) * 4" },
  } },
  timeout = 1,
  idempotent = true,
  run = function(args)
    if type(args.expression) ~= "string" then return nil, "expression must be a string" end
    local ok, v = pcall(parse, args.expression)
    if not ok then return nil, v end
    return { result = v }
  end,
  parse = parse,
}
