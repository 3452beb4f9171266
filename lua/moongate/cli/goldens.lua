-- `moongate goldens generate --index DIR`: golden-set candidates proposed from an index's
-- documents, offline, for a person to curate (JSONL on stdout or -o FILE).
local usage = [==[
usage: moongate goldens generate --index DIR [--tenant T] [-o|--out FILE]

Proposes one golden-set case per section of each indexed document: the question asks what the
document says about the section's heading, the answer must contain the section's first key
sentence (6 to 40 words of prose), and the citation is the document and section. The lines
have the shape { id, question, doc, section, key, tags = ["generated"] }, which `moongate eval`
reads. Curate them: reword the questions, drop the weak ones, shorten the keys.
]==]

local json = require "moongate.json"
local generate = require "moongate.eval.generate"
local args_lib = require "moongate.cli.lib.args"

local fail = args_lib.failer("goldens")

return function(args)
  local o, words = args_lib.parse(args, { index = true, tenant = true, out = true })
  if not o then return fail(words .. " (see --help)") end
  if o.help then io.write(usage); return 0 end
  if words[1] ~= "generate" or words[2] then return fail("usage: moongate goldens generate --index DIR (see --help)") end
  if not o.index then return fail("generate needs --index DIR") end
  local cases, err = generate.from_index(o.index, { tenant = o.tenant })
  if not cases then return fail(err, 1) end
  local out, done = args_lib.output(o.out)
  if not out then return fail(done, 1) end
  for _, c in ipairs(cases) do out:write(json.encode_sorted(c), "\n") end
  done()
  io.stderr:write(#cases, " candidates\n")
  return 0
end
