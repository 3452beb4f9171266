-- `moongate search --index DIR QUERY`: query a retrieval index, printing readable hits, JSON
-- lines, or a TREC run (one line per document) for trec_eval-style scoring.
local usage = [[
usage: moongate search --index DIR [OPTIONS] (QUERY... | --queries FILE.jsonl)

options:
  --index DIR          index folder (made by `moongate index`)
  --mode M             bm25, dense or hybrid (default hybrid: the fusion settings that
                       measured best on the development split)
  --tenant T           search as tenant T (default: documents indexed without a tenant)
  --labels A,B         access labels the caller holds
  --filter KEY=VALUE   metadata filter (source, doc_id or a metadata field); repeatable
  --top K              number of results (10)
  --fusion F           rrf or weighted (hybrid only)
  --rrf-k N            RRF constant (60)
  --weights B,D        fusion weights of bm25 and dense
  --expand             expand the query with terms of the best BM25 hits (pseudo-relevance
                       feedback; on by default in hybrid mode)
  --no-expand          no query expansion, no dense feedback
  --rerank             re-rank the top 50 with the local re-ranker
  --rerank-url URL     re-rank the top 50 with a /v1/rerank-style API instead
  --rerank-model M     model name sent to it
  --rerank-style S     cohere (default: {model, query, documents}) or tei ({query, texts})
  --no-dedupe          keep near-duplicate chunks
  --queries FILE       JSONL queries ({"_id": ..., "text": ...}), one result list each
  --format F           text (default), json (one line per hit) or trec (qid Q0 docid rank
                       score tag; one line per document)
  --tag NAME           run tag in TREC output (default moongate-<mode>)
]]

local function parse(args)
  local o = { top = 10, format = "text", filters = {}, words = {} }
  local i = 1
  while i <= #args do
    local a = args[i]
    local function value()
      i = i + 1
      if args[i] == nil then error({ msg = a .. " needs a value" }) end
      return args[i]
    end
    if a == "--help" or a == "-h" then o.help = true
    elseif a == "--index" then o.index = value()
    elseif a == "--mode" then o.mode = value()
    elseif a == "--tenant" then o.tenant = value()
    elseif a == "--labels" then o.labels = value()
    elseif a == "--filter" then
      local kv = value()
      local key, v = kv:match("^([^=]+)=(.*)$")
      if not key then error({ msg = "--filter takes KEY=VALUE" }) end
      local cur = o.filters[key]
      if cur == nil then o.filters[key] = v
      elseif type(cur) == "table" then cur[#cur + 1] = v
      else o.filters[key] = { cur, v } end
    elseif a == "--top" or a == "-k" then
      o.top = tonumber(value())
      if not o.top or o.top < 1 or o.top % 1 ~= 0 then error({ msg = "--top must be a positive whole number" }) end
    elseif a == "--fusion" then o.fusion = value()
    elseif a == "--rrf-k" then
      o.rrf_k = tonumber(value())
      if not o.rrf_k or o.rrf_k <= 0 then error({ msg = "--rrf-k must be a positive number" }) end
    elseif a == "--weights" then
      local b, d = value():match("^%s*([%d.]+)%s*,%s*([%d.]+)%s*$")
      if not b then error({ msg = "--weights takes BM25,DENSE (e.g. 1,0.3)" }) end
      o.weights = { bm25 = tonumber(b), dense = tonumber(d) }
    elseif a == "--rerank" then o.rerank = true
    elseif a == "--rerank-url" then o.rerank_url = value()
    elseif a == "--rerank-model" then o.rerank_model = value()
    elseif a == "--rerank-style" then
      o.rerank_style = value()
      if o.rerank_style ~= "cohere" and o.rerank_style ~= "tei" then error({ msg = "--rerank-style must be cohere or tei" }) end
    elseif a == "--expand" then o.expand = true
    elseif a == "--no-expand" then o.expand = false
    elseif a == "--no-dedupe" then o.no_dedupe = true
    elseif a == "--queries" then o.queries = value()
    elseif a == "--format" then o.format = value()
    elseif a == "--tag" then o.tag = value()
    elseif a:sub(1, 2) == "--" then error({ msg = "unknown option " .. a })
    else o.words[#o.words + 1] = a end
    i = i + 1
  end
  return o
end

local function load_queries(path)
  local json = require "moongate.json"
  local f, err = io.open(path, "rb")
  if not f then return nil, "cannot read " .. path .. ": " .. tostring(err) end
  local out, lineno = {}, 0
  for line in f:lines() do
    lineno = lineno + 1
    if line:match("%S") then
      local q, jerr = json.decode(line)
      if type(q) ~= "table" then
        f:close()
        return nil, ("%s:%d: invalid JSON: %s"):format(path, lineno, tostring(jerr or "not an object"))
      end
      local id = q._id or q.id
      local text = q.text or q.query
      if (type(id) ~= "string" and type(id) ~= "number") or type(text) ~= "string" then
        f:close()
        return nil, ("%s:%d: a query needs _id and text"):format(path, lineno)
      end
      out[#out + 1] = { id = tostring(id), text = text }
    end
  end
  f:close()
  return out
end

local function one_line(s, n)
  s = s:gsub("%s+", " ")
  if #s > n then s = s:sub(1, n - 3):gsub("[\128-\191]*$", ""):gsub("[\192-\255]$", "") .. "..." end
  return s
end

return function(args)
  local ok, o = pcall(parse, args)
  if not ok then
    io.stderr:write("moongate search: ", type(o) == "table" and o.msg or tostring(o), "\n", usage)
    return 2
  end
  if o.help then io.write(usage); return 0 end
  if not o.index then io.stderr:write("moongate search: --index DIR is required\n", usage); return 2 end
  if o.format ~= "text" and o.format ~= "json" and o.format ~= "trec" then
    io.stderr:write("moongate search: --format must be text, json or trec\n"); return 2
  end
  if o.mode and o.mode ~= "bm25" and o.mode ~= "dense" and o.mode ~= "hybrid" then
    io.stderr:write("moongate search: --mode must be bm25, dense or hybrid\n"); return 2
  end
  if o.fusion and o.fusion ~= "rrf" and o.fusion ~= "weighted" then
    io.stderr:write("moongate search: --fusion must be rrf or weighted\n"); return 2
  end
  local queries
  if o.queries then
    if #o.words > 0 then io.stderr:write("moongate search: give QUERY or --queries, not both\n"); return 2 end
    local err
    queries, err = load_queries(o.queries)
    if not queries then io.stderr:write("moongate search: ", err, "\n"); return 1 end
  else
    if #o.words == 0 then io.stderr:write("moongate search: no QUERY given\n", usage); return 2 end
    queries = { { id = "1", text = table.concat(o.words, " ") } }
  end

  local retrieval = require "moongate.retrieval"
  local json = require "moongate.json"
  local idx, err = retrieval.open(o.index, { refresh_interval = false })
  if not idx then io.stderr:write("moongate search: ", err, "\n"); return 1 end
  local mode = o.mode or "hybrid"
  local fusion
  if o.fusion or o.rrf_k or o.weights or o.expand == false then
    local d = retrieval.hybrid_defaults
    fusion = { method = o.fusion or d.method, k = o.rrf_k or d.k, weights = o.weights or d.weights,
      prf = o.expand ~= false and d.prf or nil, expand = o.expand ~= false and d.expand or nil }
  end
  local expand   -- nil: the mode's default
  if o.expand then expand = retrieval.hybrid_defaults.expand end
  if o.expand == false then expand = false end
  local prf      -- nil: the mode's default; --no-expand turns the dense feedback off too
  if o.expand == false then prf = false end
  local rerank = o.rerank or nil
  if o.rerank_url then
    local err
    rerank, err = require("moongate.retrieval.rerank").new { kind = "http", url = o.rerank_url,
      model = o.rerank_model, style = o.rerank_style }
    if not rerank then io.stderr:write("moongate search: ", err, "\n"); return 2 end
  end
  local tag = o.tag or ("moongate-" .. mode)
  local labels
  if o.labels then labels = require("moongate.retrieval.store").split_labels(o.labels) end
  local filters = next(o.filters) and o.filters or nil
  local out = {}
  local status = 0
  for _, q in ipairs(queries) do
    local args_ = { query = q.text, k = o.top, mode = mode, tenant = o.tenant, labels = labels,
      filters = filters, fusion = fusion, rerank = rerank, dedupe = not o.no_dedupe, expand = expand,
      prf = prf }
    if o.format == "trec" then
      local docs, info = idx:search_documents(args_)
      if not docs then
        io.stderr:write("moongate search: query ", q.id, ": ", info, "\n"); status = 1
      else
        for rank, d in ipairs(docs) do
          out[#out + 1] = ("%s Q0 %s %d %.6f %s\n"):format(q.id, d.doc_id, rank, d.score, tag)
        end
      end
    else
      local hits, info = idx:search(args_)
      if not hits then
        io.stderr:write("moongate search: ", #queries > 1 and ("query " .. q.id .. ": ") or "", info, "\n")
        status = 1
      elseif o.format == "json" then
        for rank, h in ipairs(hits) do
          out[#out + 1] = json.encode {
            query = q.id, rank = rank, id = h.id, doc_id = h.doc_id, score = h.score,
            heading = h.heading, text = h.text, metadata = h.metadata, scores = h.scores,
            also = h.also, version = info.version,
          } .. "\n"
        end
      else
        if #queries > 1 then out[#out + 1] = ("query %s: %s\n"):format(q.id, q.text) end
        if #hits == 0 then out[#out + 1] = "no results\n" end
        for rank, h in ipairs(hits) do
          local where = h.doc_id
          if #h.heading > 0 then where = where .. " > " .. table.concat(h.heading, " > ") end
          if #where > 100 and #h.heading > 1 then
            -- keep the document and the innermost heading; elide what lies between
            where = h.doc_id .. " > ... > " .. h.heading[#h.heading]
          end
          local parts = {}
          for _, name in ipairs { "bm25", "dense", "rerank" } do
            if h.scores[name] then parts[#parts + 1] = ("%s %.3f"):format(name, h.scores[name]) end
          end
          out[#out + 1] = ("%2d. %s  (score %.4f%s)\n    %s\n"):format(rank, one_line(where, 100), h.score,
            #parts > 0 and ("; " .. table.concat(parts, ", ")) or "", one_line(h.text, 160))
          if #h.also > 0 then out[#out + 1] = "    also in: " .. table.concat(h.also, ", ") .. "\n" end
        end
      end
    end
    if #out > 512 then io.write(table.concat(out)); out = {} end
  end
  io.write(table.concat(out))
  idx:close()
  return status
end
