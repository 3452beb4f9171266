-- `moongate goldens generate --index DIR`: golden-set candidates proposed from an index's
-- documents, offline, for a person to curate (JSONL on stdout or -o FILE).
local usage = [==[
usage: moongate goldens generate --index DIR [--tenant T] [-o FILE]

Proposes one golden-set case per section of each indexed document: the question asks what the
document says about the section's heading, the answer must contain the section's first key
sentence (6 to 40 words of prose), and the citation is the document and section. The lines
have the shape { id, question, doc, section, key, tags = ["generated"] }, which `moongate eval`
reads. Curate them: reword the questions, drop the weak ones, shorten the keys.
]==]

local json = require "moongate.json"
local generate = require "moongate.eval.generate"

local function fail(msg, code)
  io.stderr:write("moongate goldens: ", msg, "\n")
  return code or 2
end

return function(args)
  local o, words = {}, {}
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "--help" or a == "-h" then io.write(usage); return 0
    elseif a == "--index" or a == "--tenant" or a == "-o" then
      i = i + 1
      if args[i] == nil then return fail(a .. " needs a value") end
      o[a:gsub("^%-+", "")] = args[i]
    elseif a:sub(1, 1) == "-" then return fail("unknown option " .. a .. " (see --help)")
    else words[#words + 1] = a end
    i = i + 1
  end
  if words[1] ~= "generate" or words[2] then return fail("usage: moongate goldens generate --index DIR (see --help)") end
  if not o.index then return fail("generate needs --index DIR") end
  local cases, err = generate.from_index(o.index, { tenant = o.tenant })
  if not cases then return fail(err, 1) end
  local out = io.stdout
  if o.o then
    local e
    out, e = io.open(o.o, "wb")
    if not out then return fail("cannot write " .. o.o .. ": " .. tostring(e), 1) end
  end
  for _, c in ipairs(cases) do out:write(json.encode_sorted(c), "\n") end
  if o.o then out:close() end
  io.stderr:write(#cases, " candidates\n")
  return 0
end
