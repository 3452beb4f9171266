-- `moongate tokens [--encoding NAME | --model MODEL] [--ids] [FILE...]`: count tokens of files
-- (or standard input) exactly as tiktoken does, printing `<count> <file>` lines like wc.
local usage = [[
usage: moongate tokens [--encoding cl100k_base|o200k_base] [--model MODEL] [--special]
                       [--ids] [FILE...]

Counts the tokens of each FILE, or of standard input when none is given, exactly as
OpenAI's tiktoken does, and prints `<count> <file>` per file (a `<total> total` line
follows when there are several), or `<count>` alone for standard input.

  --encoding NAME  cl100k_base or o200k_base (default: o200k_base)
  --model MODEL    the encoding of an OpenAI model (gpt-4o, gpt-4.1, o3 -> o200k_base;
                   gpt-4, gpt-3.5-turbo -> cl100k_base)
  --special        special-token text (<|endoftext|>, ...) counts as one token
                   (default: it is ordinary text)
  --ids            print the token ids (space-separated) instead of the count
]]

local tokenizer = require "moongate.tokenizer"

local function read_all(path)
  if path == nil then return io.stdin:read("*a") end
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local s = f:read("*a")
  f:close()
  if s == nil then return nil, path .. ": cannot read" end
  return s
end

return function(args)
  local encoding, ids, files, opts = tokenizer.default_encoding, false, {}, nil
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "--help" or a == "-h" then
      io.write(usage)
      return 0
    elseif a == "--encoding" or a == "--model" then
      local v = args[i + 1]
      if not v then
        io.stderr:write("moongate tokens: ", a, " needs a value\n")
        return 2
      end
      local enc, err = tokenizer.encoding_for_model(v)
      if not enc or (a == "--encoding" and enc ~= v) then
        io.stderr:write("moongate tokens: ", a == "--model" and (err or "unknown model")
          or "unknown encoding", ": ", v, "\n")
        return 2
      end
      encoding = enc
      i = i + 1
    elseif a == "--ids" then
      ids = true
    elseif a == "--special" then
      opts = { special = "all" }
    elseif a == "--" then
      for j = i + 1, #args do files[#files + 1] = args[j] end
      break
    elseif a:sub(1, 1) == "-" and a ~= "-" then
      io.stderr:write("moongate tokens: unknown option ", a, "\n", usage)
      return 2
    else
      files[#files + 1] = a
    end
    i = i + 1
  end

  local ok, err = tokenizer.load(encoding)
  if not ok then
    io.stderr:write("moongate tokens: ", err, "\n")
    return 1
  end

  local function one(path)
    local text, rerr = read_all(path ~= "-" and path or nil)
    if not text then return nil, rerr end
    if ids then
      local t = assert(tokenizer.encode(text, encoding, opts))
      return table.concat(t, " "), #t
    end
    local n = assert(tokenizer.count(text, encoding, opts))
    return tostring(n), n
  end

  if #files == 0 then
    local out, n = one(nil)
    if not out then
      io.stderr:write("moongate tokens: ", n, "\n")
      return 1
    end
    io.write(out, "\n")
    return 0
  end
  local total, status = 0, 0
  for _, path in ipairs(files) do
    local out, n = one(path)
    if out then
      io.write(out, ids and "\t" or " ", path, "\n")
      total = total + n
    else
      io.stderr:write("moongate tokens: ", tostring(n), "\n")
      status = 1
    end
  end
  if #files > 1 and not ids then io.write(total, " total\n") end
  return status
end
