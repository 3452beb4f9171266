-- `moongate index [--index DIR] PATH...`: ingest Markdown, text, HTML and JSONL (BEIR) into a
-- retrieval index (BM25 with English stemming and local vectors), publishing a new version.
local usage = [[
usage: moongate index [--index DIR] [OPTIONS] PATH...

Ingests files and folders (Markdown .md, plain text .txt, HTML .html, JSONL .jsonl in the
BEIR layout: _id, title, text, any other field kept as metadata; "tenant" and "labels"
fields set access) into the index at DIR (default ./moongate-index). Running it again
re-indexes changed documents and drops documents whose file is gone; readers keep the
previous version until the new one is complete.

options:
  --index DIR            index folder (created if missing)
  --tenant T             tenant of documents that do not name one
  --labels A,B           access labels of documents that do not name any
  --redact mask          mask personal data and secrets (emails, cards, ...) before indexing
  --max-tokens N         chunk size limit (800)          } fixed when the index
  --min-tokens N         merge sections smaller than N (400)  } is created
  --overlap N            tokens repeated between chunks of a section (80)
  --dedupe-distance N    SimHash bits within which chunks are near-duplicates (3; -1: off)
  --k1 X, --b X          BM25 parameters (1.2, 0.75)
  --no-stem              BM25 without English stemming
  --stopwords            drop English stop words in BM25
  --embedder NAME        glove (default, offline), hash, openai (any /v1/embeddings
                         API), or none
  --embedder-url URL     the /v1/embeddings URL (openai)
  --embedder-model M     the model name sent (openai)
  --embedder-key-env V   environment variable holding the API key (openai)
  --quant f32|i8         vector storage (f32)
  --quiet                no progress bar
]]

local NUM = { ["--max-tokens"] = "max_tokens", ["--min-tokens"] = "min_tokens", ["--overlap"] = "overlap",
  ["--dedupe-distance"] = "dedupe_distance", ["--k1"] = "k1", ["--b"] = "b" }

local function fmt_int(n)
  local s = tostring(math.floor(n))
  local out = s:reverse():gsub("(%d%d%d)", "%1,"):reverse()
  return (out:gsub("^,", ""))
end

return function(args)
  local ffi = require "ffi"
  pcall(ffi.cdef, "int isatty(int fd);")
  local opts = { index = "moongate-index" }
  local paths = {}
  local i = 1
  while i <= #args do
    local a = args[i]
    local function value()
      i = i + 1
      if args[i] == nil then error({ msg = a .. " needs a value" }) end
      return args[i]
    end
    local ok, err = pcall(function()
      if a == "--help" or a == "-h" then
        opts.help = true
      elseif a == "--index" then opts.index = value()
      elseif a == "--tenant" then opts.tenant = value()
      elseif a == "--labels" then opts.labels = value()
      elseif a == "--redact" then
        local mode = value()
        if mode ~= "mask" then error({ msg = "--redact takes mask" }) end
        opts.redact = { mode = mode }
      elseif NUM[a] then
        local v = tonumber(value())
        if not v then error({ msg = a .. " needs a number" }) end
        opts[NUM[a]] = v
      elseif a == "--no-stem" then opts.stem = false
      elseif a == "--stem" then opts.stem = value()
      elseif a == "--stopwords" then opts.stopwords = true
      elseif a == "--embedder" then opts.embedder = value()
      elseif a == "--embedder-url" then opts.embedder_url = value()
      elseif a == "--embedder-model" then opts.embedder_model = value()
      elseif a == "--embedder-key-env" then opts.embedder_key_env = value()
      elseif a == "--quant" then opts.quant = value()
      elseif a == "--quiet" or a == "-q" then opts.quiet = true
      elseif a:sub(1, 2) == "--" then error({ msg = "unknown option " .. a })
      else paths[#paths + 1] = a end
    end)
    if not ok then
      io.stderr:write("moongate index: ", type(err) == "table" and err.msg or tostring(err), "\n", usage)
      return 2
    end
    i = i + 1
  end
  if opts.help then io.write(usage); return 0 end
  if #paths == 0 then
    io.stderr:write("moongate index: no PATH given\n", usage)
    return 2
  end
  if opts.embedder and opts.embedder ~= "glove" and opts.embedder ~= "hash" and opts.embedder ~= "none"
      and opts.embedder ~= "openai" then
    io.stderr:write("moongate index: --embedder must be glove, hash, openai or none\n")
    return 2
  end
  if opts.quant and opts.quant ~= "f32" and opts.quant ~= "i8" then
    io.stderr:write("moongate index: --quant must be f32 or i8\n")
    return 2
  end
  for _, k in ipairs { "max_tokens", "min_tokens", "overlap" } do
    if opts[k] and (opts[k] < 0 or opts[k] % 1 ~= 0 or (k == "max_tokens" and opts[k] < 16)) then
      io.stderr:write("moongate index: --", k:gsub("_", "-"), " must be a whole number",
        k == "max_tokens" and " of at least 16" or "", "\n")
      return 2
    end
  end

  local tty = not opts.quiet and ffi.C.isatty(2) == 1
  local last_draw = 0
  if tty then
    opts.progress = function(stage, done, total, docs)
      local now = os.clock()
      if now - last_draw < 0.1 and done < total then return end
      last_draw = now
      local width = 30
      local frac = total > 0 and done / total or 1
      local bar = ("#"):rep(math.floor(frac * width)) .. ("-"):rep(width - math.floor(frac * width))
      local label = stage == "read" and ("reading: %d documents"):format(docs or 0)
        or stage == "embed" and ("embedding: %d/%d chunks"):format(done, total)
        or stage == "bm25" and ("indexing: %d/%d chunks"):format(done, total)
        or ("%s: %d/%d"):format(stage, done, total)
      io.stderr:write(("\r[%s] %3d%% %-50s"):format(bar, math.floor(frac * 100), label))
      io.stderr:flush()
    end
  end

  local retrieval = require "moongate.retrieval"
  local summary, err = retrieval.index(opts.index, paths, {
    tenant = opts.tenant, labels = opts.labels, redact = opts.redact, max_tokens = opts.max_tokens,
    min_tokens = opts.min_tokens, overlap = opts.overlap, dedupe_distance = opts.dedupe_distance,
    k1 = opts.k1, b = opts.b, stem = opts.stem, stopwords = opts.stopwords,
    embedder = opts.embedder, quant = opts.quant, progress = opts.progress,
    embedder_url = opts.embedder_url, embedder_model = opts.embedder_model,
    embedder_key_env = opts.embedder_key_env,
  })
  if tty then io.stderr:write("\r", (" "):rep(90), "\r") end
  if not summary then
    io.stderr:write("moongate index: ", tostring(err), "\n")
    return 1
  end
  io.write(("indexed %s documents from %s files into %s: %s added, %s changed, %s unchanged, %s deleted\n")
    :format(fmt_int(summary.seen), fmt_int(summary.files), opts.index, fmt_int(summary.added),
      fmt_int(summary.changed), fmt_int(summary.unchanged), fmt_int(summary.deleted)))
  io.write(("%s chunks, %s tokens (%s), %s duplicates dropped, %s chunks searchable, %.2f s; version %d\n")
    :format(fmt_int(summary.chunks), fmt_int(summary.tokens), summary.token_counter == "approximate"
      and "approximate count" or summary.token_counter, fmt_int(summary.duplicates),
      fmt_int(summary.indexed), summary.seconds, summary.version))
  if #summary.skipped > 0 then
    io.write(("%d files skipped (not .md, .txt, .html or .jsonl)\n"):format(#summary.skipped))
  end
  return 0
end
