-- `moongate feedback export`: rated answers from the trace store turned into golden-set
-- candidates (JSONL), for a person to curate into a golden set.
local usage = [==[
usage: moongate feedback export [--db FILE] [--tenant T] [--since D] [-o|--out FILE]

Reads the feedback sent to POST /v1/feedback, joined with the requests' traces, and writes one
golden-set case per rated answer (JSONL, the format `moongate eval` reads):
  a correction            -> expect.contains = the correction
  rated up (or 4-5), none -> expect.exact = the answer, citations = what it cited
  rated down, none        -> no expectation yet, tagged needs-expectation
Every case is tagged feedback and carries notes (the rating, the answer given). The question
and answer come from the stored request text, kept only for tenants whose policy has
log_raw = true: feedback on other requests is counted as skipped.

  --db FILE   the trace store (default $MOONGATE_TRACES, else ./moongate-traces.db)
  --tenant T  only tenant T's feedback
  --since D   only feedback from the last D (30s, 10m, 2h, 1d)
  -o FILE     write to FILE instead of stdout
]==]

local json = require "moongate.json"
local feedback = require "moongate.feedback"
local args_lib = require "moongate.cli.lib.args"

local fail = args_lib.failer("feedback")

return function(args)
  local o, words = args_lib.parse(args, { db = true, tenant = true, since = true, out = true })
  if not o then return fail(words .. " (see --help)") end
  if o.help then io.write(usage); return 0 end
  if words[1] ~= "export" or words[2] then return fail("usage: moongate feedback export [--db FILE] (see --help)") end
  local since, serr = args_lib.since(o.since)
  if not since then return fail(serr) end
  local path, perr = args_lib.trace_store(o.db, "--db")
  if not path then return fail(perr, 1) end
  local s, err = feedback.open(path)
  if not s then return fail(err, 1) end
  local rows, qerr = s:rated{ since = since, tenant = o.tenant }
  s:close()
  if not rows then return fail(tostring(qerr), 1) end
  local out, done = args_lib.output(o.out)
  if not out then return fail(done, 1) end
  local n, skipped = 0, 0
  for _, row in ipairs(rows) do
    local c = feedback.candidate(row)
    if c then
      n = n + 1
      out:write(json.encode_sorted(c), "\n")
    else
      skipped = skipped + 1
    end
  end
  done()
  io.stderr:write(string.format("%d candidates, %d skipped (no stored text: the tenant's policy keeps hashes only)\n", n, skipped))
  return 0
end
