-- `moongate flags show [FILE] [--tenant T [--user U]] [--json]`: what a flags file says — every
-- flag and its rule, what each evaluates to for a tenant/user, the kill list, the version hash.
local usage = [==[
usage: moongate flags show [FILE] [--tenant T [--user U]] [--json]

Loads the flags file FILE (default: flags.lua) exactly as the gateway does and prints its
version (the content hash), every flag with its rule, and the kill switch.

  --tenant T   also print what each flag evaluates to for tenant T
  --user U     ... and user U of that tenant (rollouts and variants hash both)
  --json       print the same as JSON (what GET /admin/flags answers)

Exit status: 0, or 2 when the file does not load (the message says why) or the
arguments are wrong. See docs/flags.md for the file format.
]==]

local flags = require "moongate.flags"
local json = require "moongate.json"

local fail = require("moongate.cli.lib.args").failer("flags")

local function parse(args)
  local o = {}
  local i = 1
  while i <= #args do
    local a = args[i]
    local function value()
      i = i + 1
      local v = args[i]
      if v == nil or v == "" then return nil, a .. " needs a value" end
      return v
    end
    local err
    if a == "--help" or a == "-h" then
      o.help = true
    elseif a == "--tenant" then
      o.tenant, err = value()
    elseif a == "--user" then
      o.user, err = value()
    elseif a == "--json" then
      o.json = true
    elseif a:sub(1, 1) == "-" then
      err = "unknown option " .. a
    elseif not o.cmd then
      o.cmd = a
    elseif not o.file then
      o.file = a
    else
      err = "only one flags file, got " .. o.file .. " and " .. a
    end
    if err then return nil, err end
    i = i + 1
  end
  return o
end

local function value_text(v)
  if type(v) == "string" then return v end
  return tostring(v)
end

local function print_text(path, set, d, o, values)
  local out = {}
  local function line(...) out[#out + 1] = table.concat({ ... }) end
  line("file     ", path)
  line("version  ", set.version)
  if o.tenant then line("tenant   ", o.tenant, o.user and ("  user " .. o.user) or "") end
  line("")
  if #d.flags == 0 then
    line("no flags")
  else
    local w1, w2 = #"FLAG", #"RULE"
    for _, f in ipairs(d.flags) do
      if #f.name > w1 then w1 = #f.name end
      if #f.rule > w2 then w2 = #f.rule end
    end
    local fmt = "%-" .. w1 .. "s  %-" .. w2 .. "s"
    local function row(name, rule, value)
      local s = string.format(fmt, name, rule)
      if value ~= nil then s = s .. "  " .. value else s = s:gsub("%s+$", "") end
      line(s)
    end
    row("FLAG", "RULE", values and "VALUE" or nil)
    for _, f in ipairs(d.flags) do row(f.name, f.rule, values and value_text(values[f.name]) or nil) end
  end
  line("")
  line("KILL SWITCH")
  for _, field in ipairs({ "providers", "pipelines", "tools", "models" }) do
    local items = {}
    for _, k in ipairs(d.kill[field]) do items[#items + 1] = k.name .. " (" .. k.reason .. ")" end
    line(string.format("%-10s %s", field, #items > 0 and table.concat(items, ", ") or "-"))
  end
  io.write(table.concat(out, "\n"), "\n")
end

return function(args)
  local o, perr = parse(args)
  if not o then return fail(perr .. " (see `moongate flags --help`)") end
  if o.help then io.write(usage); return 0 end
  if o.cmd == nil then io.stderr:write(usage); return 2 end
  if o.cmd ~= "show" then return fail("unknown subcommand '" .. o.cmd .. "' (see `moongate flags --help`)") end
  if o.user and not o.tenant then return fail("--user needs --tenant") end
  local path = require("moongate.config").absolute(o.file or "flags.lua")
  local set, err = flags.load(path)
  if not set then return fail(err) end
  local d = flags.describe(set)
  local values
  if o.tenant then values = flags.evaluate(set, { tenant = o.tenant, user = o.user }).values end
  if o.json then
    d.path = path
    if o.tenant then
      d.tenant, d.user = o.tenant, o.user
      for _, f in ipairs(d.flags) do f.value = values[f.name] end
    end
    io.write(assert(json.encode(d)), "\n")
  else
    print_text(path, set, d, o, values)
  end
  return 0
end
