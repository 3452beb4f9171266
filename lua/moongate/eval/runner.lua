-- moongate.eval.runner: runs every case of a golden set through a pipeline version, a few cases
-- at a time in moongate's coroutines, and scores each answer (moongate.eval.scorers).
--
-- A pipeline is a Lua file exporting answer{question =, messages =, index =, tenant =, generate =}
-- -> { answer =, citations = {{n, id, doc_id, source, heading}}, hits = {{id, text}} } | nil, err
-- (pipelines/rag_qa.lua is one). Its version is its content hash, as moongate.reload computes it.
local moongate = require "moongate"
local reload = require "moongate.reload"
local scorers = require "moongate.eval.scorers"

local M = {}

local now, format = moongate.now, string.format

local function exists(p)
  local f = io.open(p, "rb")
  if f then f:close() return true end
  return false
end

--- runner.parse_spec("NAME[@VERSION]" | "path/file.lua[@VERSION]") -> name_or_path, version
function M.parse_spec(spec)
  local name, version = spec:match("^(.-)@(%x+)$")
  if not name then name = spec end
  return name, version
end

--- runner.resolve(spec, dirs) -> { spec =, name =, path =, version =, wanted = } | nil, err
--- A NAME is pipelines/NAME.lua in the first of dirs that has it (the config's folder, then
--- moongate's home); anything with a slash or ending in .lua is a file path.
function M.resolve(spec, dirs)
  if type(spec) ~= "string" or spec == "" then return nil, "a pipeline is NAME[@VERSION] or a file path" end
  local name, wanted = M.parse_spec(spec)
  local absolute = require("moongate.config").absolute
  local path
  if name:find("/", 1, true) or name:find("%.lua$") then
    path = absolute(name)
    if not exists(path) then return nil, "no pipeline file " .. name end
    name = name:match("([^/]+)%.lua$") or name
  else
    if not name:match("^[%w_%-]+$") then return nil, "a pipeline name is letters, digits, _ and -: " .. name end
    for _, d in ipairs(dirs) do
      local p = absolute(d .. "/pipelines/" .. name .. ".lua")
      if exists(p) then path = p; break end
    end
    if not path then
      local where = {}
      for i, d in ipairs(dirs) do where[i] = d .. "/pipelines" end
      return nil, format("no pipeline '%s' (looked for %s.lua in %s)", name, name, table.concat(where, ", "))
    end
  end
  local f = assert(io.open(path, "rb"))
  local version = reload.hash(f:read("*a"))
  f:close()
  return { spec = spec, name = name, path = path, version = version, wanted = wanted }
end

-- The pipeline module of a resolved spec, loaded as the gateway loads units.
function M.load(p)
  local mod, err = reload.require(p.path, function(m)
    if type(m) ~= "table" or type(m.answer) ~= "function" then
      return nil, "a pipeline must return a table with answer(req)"
    end
    return true
  end)
  if not mod then return nil, err end
  return mod
end

local function count_tokens(text)
  local ok, tok = pcall(require, "moongate.tokenizer")
  if ok and tok.count then
    local n = tok.count(text, "o200k_base")
    if n then return n end
  end
  return math.ceil(#text / 4)
end

--- runner.generator(gw, model) -> generate fn | nil (the model is answered by the extractive
--- provider: the pipeline's own offline answerer is the same thing), tier, provider
--- One non-streamed call to the first tier of the model's route, as the gateway would send it.
function M.generator(gw, model)
  local mcfg = gw.models[model] or gw.models["*"]
  if not mcfg then
    local names = {}
    for n in pairs(gw.models) do names[#names + 1] = n end
    table.sort(names)
    return nil, format("the config has no model '%s' (it has %s)", model, table.concat(names, ", "))
  end
  local tier = mcfg.route[1]
  local p = gw.providers[tier.provider]
  if p.kind == "extractive" then return false, tier, p end
  local json = require "moongate.json"
  local gen = function(g, usage)
    local doc = { model = tier.model or model, messages = g.messages, temperature = 0 }
    local creq = { raw = assert(json.encode(doc)), doc = doc, model = doc.model, stream = false,
                   idle = gw.idle_timeout, set = {} }
    local r, fail = p:chat(creq, tier, tier.timeout or 30)
    if not r then return nil, fail and fail.message or "the provider failed" end
    local c = r.doc and r.doc.choices and r.doc.choices[1]
    local text = c and c.message and c.message.content
    if type(text) ~= "string" then return nil, "the provider sent no answer" end
    local u = r.usage or (r.doc and r.doc.usage) or {}
    usage.prompt_tokens = usage.prompt_tokens + (tonumber(u.prompt_tokens) or 0)
    usage.completion_tokens = usage.completion_tokens + (tonumber(u.completion_tokens) or 0)
    usage.calls = usage.calls + 1
    return text
  end
  return gen, tier, p
end

-- One case through the pipeline: the answer, its citations with the text they point at, timing,
-- tokens and cost, and the scores.
local function run_case(o, mod, case)
  local usage = { prompt_tokens = 0, completion_tokens = 0, calls = 0 }
  local generate = o.generate and function(g) return o.generate(g, usage) end or nil
  local t0 = now()
  local ok, r, err = pcall(mod.answer, { question = case.question, messages = case.messages, index = o.index,
                                         tenant = o.tenant, generate = generate, prompt = o.prompt })
  local latency = (now() - t0) * 1000
  local out = { id = case.id, tags = case.tags, latency_ms = latency }
  if not ok or not r then
    out.error = tostring(ok and (err or "no answer") or r)
    out.answer, out.citations = "", {}
  else
    out.answer = type(r.answer) == "string" and r.answer or ""
    out.prompt_version = r.prompt_version
    local texts = {}
    for _, h in ipairs(r.hits or {}) do texts[tostring(h.id)] = h.text end
    out.citations, out.snippets = {}, {}
    for i, c in ipairs(r.citations or {}) do
      local h = c.heading
      out.citations[i] = { n = c.n, id = c.id, doc_id = c.doc_id, source = c.source,
                           heading = type(h) == "table" and h or (h and { h }) or nil }
      local t = c.id ~= nil and texts[tostring(c.id)]
      if t then out.snippets[#out.snippets + 1] = t end
    end
    if usage.calls == 0 then
      -- the offline answerer reads the retrieved passages and writes the answer: count those
      local ctx = {}
      for _, h in ipairs(r.hits or {}) do ctx[#ctx + 1] = h.text end
      usage.prompt_tokens = count_tokens(case.question .. "\n" .. table.concat(ctx, "\n"))
      usage.completion_tokens = count_tokens(out.answer)
    end
  end
  out.tokens_in, out.tokens_out = usage.prompt_tokens, usage.completion_tokens
  local price = o.price
  out.cost = price and ((price.input or 0) * out.tokens_in + (price.output or 0) * out.tokens_out) / 1e6 or 0
  if out.error then
    out.scores = {}
    for _, s in ipairs(scorers.NAMES) do out.scores[s] = 0 end
    out.why = { correctness = "the pipeline failed: " .. out.error }
  else
    out.scores, out.why = scorers.score(case, out)
    if o.judge then
      local j, jwhy = o.judge(case, out)
      out.scores.judge, out.why.judge = j, jwhy
    end
  end
  out.snippets = nil
  return out
end

--- runner.run(golden, pipeline, o) -> results (one per case, in the golden set's order)
--- o: index, tenant, generate, judge, price, concurrency (4), progress(done, total, result),
--- prompt (the pipeline's req.prompt: another template for its system prompt)
function M.run(golden, pipeline, o)
  local mod, err = M.load(pipeline)
  if not mod then return nil, err end
  local cases = golden.cases
  -- a pipeline that opens its index itself does it now, and one untimed search loads what the
  -- first query would (the embedder's vectors): the first case's latency is its own
  if type(mod.open_index) == "function" and type(o.index) == "string" then
    local idx, ierr = mod.open_index(o.index)
    if not idx then return nil, "cannot open the index " .. o.index .. ": " .. tostring(ierr) end
    if type(idx) == "table" and idx.search then pcall(idx.search, idx, { query = cases[1].question, k = 1 }) end
  end
  local results, next_i, done = {}, 0, 0
  local function worker()
    while true do
      next_i = next_i + 1
      local i = next_i
      if i > #cases then return end
      results[i] = run_case(o, mod, cases[i])
      done = done + 1
      if o.progress then o.progress(done, #cases, results[i]) end
    end
  end
  local tasks = {}
  for w = 1, math.max(1, math.min(o.concurrency or 4, #cases)) do tasks[w] = moongate.spawn(worker) end
  for _, t in ipairs(tasks) do t:wait() end
  return results
end

local JUDGE_PROMPT = "You grade answers. Given a question, the expected answer (if any) and an answer, " ..
  "rate how correct and complete the answer is from 1 (wrong) to 5 (fully right). Reply with the digit only."

--- runner.judge(ask, tier) -> judge(case, result) -> 0..1 | nil, why: a model's 1-5 grade, as 0..1
function M.judge(ask, tier)
  return function(case, r)
    local want = case.expect.exact or (case.expect.contains and table.concat(case.expect.contains, "; ")) or "(none given)"
    local text, err = ask(tier, {
      { role = "system", content = JUDGE_PROMPT },
      { role = "user", content = "Question: " .. case.question .. "\nExpected: " .. want .. "\nAnswer: " .. r.answer },
    }, tier.timeout or 30)
    if not text then return nil, "the judge failed: " .. tostring(err) end
    local d = tonumber(text:match("[1-5]"))
    if not d then return nil, "the judge gave no grade" end
    return (d - 1) / 4
  end
end

return M
