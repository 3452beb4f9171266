-- Shared by `moongate tenants`, `moongate keys` and `moongate admin`: option parsing, the
-- tenants store (--db, else $MOONGATE_DB, else ./moongate.db), the admin-key check, and output.
local tenants = require "moongate.tenants"
local json = require "moongate.json"

local M = {}

--- parse(args, flags, valued) -> { words = {...}, [option] = value } | raises { msg = }
--- flags: option names that take no value; valued: those that take one (--db and --admin-key
--- always do); any other option is an error, so a mistyped one is not silently ignored
function M.parse(args, flags, valued)
  local v = { db = true, ["admin-key"] = true }
  for name in pairs(valued or {}) do v[name] = true end
  local o, words = require("moongate.cli.lib.args").parse(args, v, flags)
  if not o then error({ msg = words .. " (see --help)" }) end
  o.words = words
  return o
end

--- open(o, need_admin) -> store | nil, message, exit code
function M.open(o, need_admin)
  local path = o.db or os.getenv("MOONGATE_DB") or "moongate.db"
  local store, err = tenants.open(path)
  if not store then return nil, "cannot open " .. path .. ": " .. tostring(err), 1 end
  if need_admin then
    local key = o["admin-key"] or os.getenv("MOONGATE_ADMIN_KEY")
    if not key or key == "" then
      store:close()
      return nil, "this needs the admin key: --admin-key KEY or MOONGATE_ADMIN_KEY (see `moongate admin init`)", 2
    end
    if not store:check_admin(key) then
      store:close()
      return nil, "the admin key is not valid for " .. path, 2
    end
  end
  return store
end

function M.fail(msg, code)
  io.stderr:write("moongate: ", msg, "\n")
  return code or 1
end

--- table_out(rows, columns): a plain aligned table on stdout
function M.table_out(rows, columns)
  local width = {}
  for i, c in ipairs(columns) do width[i] = #c end
  local cells = {}
  for r, row in ipairs(rows) do
    cells[r] = {}
    for i, c in ipairs(columns) do
      local v = row[c]
      if v == nil then v = "-" end
      if type(v) == "boolean" then v = v and "yes" or "no" end
      if type(v) == "table" then v = json.encode_sorted(v) end
      v = tostring(v)
      cells[r][i] = v
      if #v > width[i] then width[i] = #v end
    end
  end
  local function line(vals)
    local parts = {}
    for i, v in ipairs(vals) do parts[i] = v .. string.rep(" ", width[i] - #v) end
    io.write((table.concat(parts, "  "):gsub("%s+$", "")), "\n")
  end
  line(columns)
  for _, c in ipairs(cells) do line(c) end
end

function M.json_out(v) io.write(json.encode_sorted(v), "\n") end

function M.date(t) return t and os.date("!%Y-%m-%d %H:%M:%SZ", math.floor(t)) or nil end

return M
