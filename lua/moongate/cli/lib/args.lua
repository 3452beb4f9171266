-- Shared by the CLI's commands: their error exit, their option parsing (--name VALUE, -o for
-- --out, bare flags; `eval`, `feedback`, `goldens`, and through lib/admin_db the tenants store's
-- commands), --since durations, and the output file (-o FILE or stdout).
local M = {}

--- failer(command) -> fail(msg, code?): writes "moongate COMMAND: msg" to stderr and returns the
--- exit code (default 2, a usage error)
function M.failer(command)
  local prefix = "moongate " .. command .. ": "
  return function(msg, code)
    io.stderr:write(prefix, msg, "\n")
    return code or 2
  end
end

--- parse(args, valued, flags) -> o, words | nil, err. valued: options taking a value; flags: options
--- that take none. -o is --out. --help / -h set o.help.
function M.parse(args, valued, flags)
  local o, words = {}, {}
  local i = 1
  while i <= #args do
    local a = args[i]
    local name = a == "-o" and "out" or a:match("^%-%-([%w%-]+)$")
    if a == "--help" or a == "-h" then o.help = true
    elseif name and flags and flags[name] then o[name] = true
    elseif name and valued[name] then
      i = i + 1
      if args[i] == nil then return nil, a .. " needs a value" end
      o[name] = args[i]
    elseif a:sub(1, 1) == "-" and a ~= "-" then return nil, "unknown option " .. a
    else words[#words + 1] = a end
    i = i + 1
  end
  return o, words
end

--- since(text) -> Unix time D ago (0 without one) | nil, err
function M.since(text)
  if not text then return 0 end
  local d = require("moongate.trace.store").duration(text)
  if not d then return nil, "--since takes a duration such as 30s, 10m, 2h, 1d; got " .. text end
  return os.time() - d
end

--- trace_store(path, option) -> path | nil, err: the gateway's store, which must exist
function M.trace_store(path, option)
  path = path or require("moongate.trace.store").default_path()
  local f = io.open(path, "rb")
  if not f then return nil, "no trace store at " .. path .. " (the gateway writes one; " .. option .. " FILE names another)" end
  f:close()
  return path
end

--- output(path) -> file, done() | nil, err: path, or stdout when path is nil or "-"
function M.output(path)
  if not path or path == "-" then return io.stdout, function() end end
  local f, err = io.open(path, "wb")
  if not f then return nil, "cannot write " .. path .. ": " .. tostring(err) end
  return f, function() f:close() end
end

return M
