-- `moongate eval GOLDEN.jsonl --pipeline NAME[@VERSION] [--against NAME@VERSION]`: runs a golden
-- set through a pipeline version, scores it, stores the run, reports, and gates on regressions.
local usage = [==[
usage: moongate eval GOLDEN.jsonl [--pipeline NAME[@VERSION]] [--against NAME[@VERSION]]
                     [--config F] [--model M] [--judge M] [--index DIR] [--concurrency N]
                     [--report DIR] [--json F] [--db F] [--max-regression X] [--prompt FILE] [--quiet]
       moongate eval --shadow [--traces F] [--release NAME] [--since D] [--config F] [--json F]

Runs every case of the golden set through the pipeline (default rag_qa) and scores each answer:
correctness, citation precision and recall, format, groundedness (and a model's grade with
--judge). A pipeline is NAME (pipelines/NAME.lua in the config's folder, else moongate's) or a
file path; VERSION is its content hash (or a prefix), as `moongate traces` shows it.

  --against B      also score baseline B and compare: paired bootstrap intervals per scorer; a
                   B@VERSION that is not the file's current version is read from the eval store
  --config F       a gateway config: its providers answer (--model M, default "default"), its
                   prices give costs, its eval = { thresholds =, index = } table applies
  --judge M        grade every answer with model M of the config (1-5, shown as 0..1)
  --prompt FILE    the candidate's system prompt template instead of its own (the pipeline's
                   prompt = option); the versions used are printed with the run
  --index DIR      the index (or folder of documents) the pipeline retrieves from
  --concurrency N  cases in flight at once (default 4)
  --report DIR     write DIR/report.html and DIR/report.json
  --json F         write the JSON report to F (- for stdout)
  --db F           the eval store (default $MOONGATE_EVALS, else ./moongate-evals.db)
  --max-regression X  the largest drop of a mean score the candidate may show (default 0.02)

--shadow compares what a release's candidate answered to copies of live traffic (the release's
`shadow` share) with what was served: the candidate's error rate, identical answers, text
similarity (for tenants whose policy keeps raw text), latency, tokens. It regresses when the
candidate failed more than --max-regression of the copies (default 0.02), or its p95 is over
the config's eval.thresholds.latency_p95 times the served one. --traces F is the store the
gateway writes (default $MOONGATE_TRACES, else ./moongate-traces.db).

Exit status: 0; 1 when the candidate regressed beyond the thresholds (the reasons are printed);
2 for bad arguments, a golden set or pipeline that does not load.
]==]

local moongate = require "moongate"
local json = require "moongate.json"
local golden_mod = require "moongate.eval.golden"
local runner = require "moongate.eval.runner"
local summary = require "moongate.eval.summary"
local report = require "moongate.eval.report"
local estore = require "moongate.eval.store"
local progress = require "moongate.cli.lib.progress"
local args_lib = require "moongate.cli.lib.args"

local format = string.format

local fail = args_lib.failer("eval")

local VALUED = { pipeline = true, against = true, config = true, model = true, judge = true, index = true,
                 concurrency = true, report = true, json = true, db = true, ["max-regression"] = true, tenant = true,
                 traces = true, release = true, since = true, prompt = true }

-- The human-readable text; on stderr when stdout carries the JSON report (--json -).
local out = io.stdout

local function print_summary(label, run, s)
  local pv = s.prompt_versions and #s.prompt_versions > 0 and (" (prompt " .. table.concat(s.prompt_versions, ", ") .. ")") or ""
  out:write(format("%s %s@%s%s: %d cases, %d failed\n", label, run.pipeline, run.version:sub(1, 16), pv, s.cases, s.errors))
  for _, n in ipairs(s.scorers) do out:write(format("  %-20s %.3f\n", n, s.scores[n])) end
  out:write(format("  %-20s p50 %.1f ms  p95 %.1f ms\n", "latency", s.latency_ms.p50 or 0, s.latency_ms.p95 or 0))
  out:write(format("  %-20s %d in, %d out, cost %.6f\n", "tokens", s.tokens_in, s.tokens_out, s.cost))
end

-- `moongate eval --shadow`: the recorded shadow pairs, compared.
local function shadow_compare(o)
  local shadow_eval = require "moongate.eval.shadow"
  local th = {}
  if o.config then
    local config_mod = require "moongate.config"
    local cfg, cerr = config_mod.load(config_mod.absolute(o.config))
    if not cfg then return fail(tostring(cerr)) end
    for k, v in pairs(type(cfg.eval) == "table" and cfg.eval.thresholds or {}) do th[k] = v end
  end
  if o["max-regression"] then
    th.max_regression = tonumber(o["max-regression"])
    if not th.max_regression then return fail("--max-regression must be a number >= 0") end
  end
  local since, serr = args_lib.since(o.since)
  if not since then return fail(serr) end
  local path, perr = args_lib.trace_store(o.traces, "--traces")
  if not path then return fail(perr, 1) end
  local db, err = require("moongate.shadow").open(path, true)
  if not db then return fail(tostring(err), 1) end
  local ok, rows = pcall(shadow_eval.rows, db, { release = o.release, since = since })
  db:close()
  if not ok or not rows then return fail("no shadow traffic recorded in " .. path, 1) end
  if #rows == 0 then return fail("no shadow traffic recorded in " .. path .. (o.release and (" for " .. o.release) or ""), 1) end
  local s = shadow_eval.compare(rows, th)
  out:write(format("shadow %s: %d copies\n", table.concat(s.versions, ", "), s.pairs))
  out:write(format("  %-20s %.3f (%d of %d)\n", "error rate", s.error_rate, s.errors, s.pairs))
  out:write(format("  %-20s %.3f\n", "identical answers", s.agreement))
  if s.similarity then out:write(format("  %-20s %.3f (over %d with text)\n", "similarity", s.similarity, s.compared_text)) end
  out:write(format("  %-20s served p50 %.1f ms p95 %.1f ms; candidate p50 %.1f ms p95 %.1f ms\n", "latency",
    s.served.p50 or 0, s.served.p95 or 0, s.shadow.p50 or 0, s.shadow.p95 or 0))
  out:write(format("  %-20s served %d in, %d out; candidate %d in, %d out\n", "tokens", s.served.tokens_in,
    s.served.tokens_out, s.shadow.tokens_in, s.shadow.tokens_out))
  if o.json then
    s.verdict = s.regressed and "regressed" or "ok"
    s.reasons = json.array(s.reasons)
    s.versions = json.array(s.versions)
    local jf, done = args_lib.output(o.json)
    if not jf then return fail(done, 1) end
    jf:write(json.encode_sorted(s), "\n")
    done()
  end
  if s.regressed then
    out:write("REGRESSED:\n")
    for _, why in ipairs(s.reasons) do out:write("  ", why, "\n") end
    return 1
  end
  return 0
end

return function(args)
  local o, words = args_lib.parse(args, VALUED, { quiet = true, shadow = true })
  if not o then return fail(words .. " (see `moongate eval --help`)") end
  o.words = words
  if o.help then io.write(usage); return 0 end
  out = o.json == "-" and io.stderr or io.stdout
  if o.shadow then return shadow_compare(o) end
  if #o.words ~= 1 then return fail("give one golden set (see `moongate eval --help`)") end
  local concurrency = tonumber(o.concurrency or 4)
  if not concurrency or concurrency < 1 or concurrency % 1 ~= 0 then return fail("--concurrency must be a whole number >= 1") end
  local max_reg = o["max-regression"] and tonumber(o["max-regression"])
  if o["max-regression"] and (not max_reg or max_reg < 0) then return fail("--max-regression must be a number >= 0") end

  local g, gerr = golden_mod.load(o.words[1])
  if not g then return fail(gerr) end

  -- the config: providers, prices, thresholds
  local config_mod = require "moongate.config"
  local cfg, gw
  if o.config then
    local cerr
    cfg, cerr = config_mod.load(config_mod.absolute(o.config))
    if not cfg then return fail(tostring(cerr)) end
    config_mod.set(cfg)
    gw, cerr = require("moongate.gateway").new(cfg)
    if not gw then return fail(tostring(cerr)) end
  elseif o.judge then
    return fail("--judge needs a config whose providers answer (--config F)")
  end
  local ecfg = cfg and cfg.eval or {}
  if type(ecfg) ~= "table" then return fail("config: eval must be a table") end
  local thresholds = {}
  for k, v in pairs(ecfg.thresholds or {}) do thresholds[k] = v end
  if max_reg then thresholds.max_regression = max_reg end

  local dirs = {}
  if cfg and cfg.dir then dirs[#dirs + 1] = cfg.dir end
  dirs[#dirs + 1] = moongate.home
  local cand, rerr = runner.resolve(o.pipeline or "rag_qa", dirs)
  if not cand then return fail(rerr) end
  if cand.wanted and cand.version:sub(1, #cand.wanted) ~= cand.wanted then
    return fail(format("pipeline %s is at version %s, not %s (an older version can only be a stored baseline: --against)",
      cand.name, cand.version, cand.wanted))
  end
  local base
  if o.against then
    base, rerr = runner.resolve(o.against, dirs)
    if not base then return fail(rerr) end
  end

  -- what answers: the config's model through its provider, else the pipeline's own offline answerer
  local ro = { concurrency = concurrency, tenant = o.tenant }
  local cand_prompt = o.prompt and config_mod.absolute(o.prompt)
  if cand_prompt then   -- a template that is not there is a usage error, not eight failed cases
    local f, ferr = io.open(cand_prompt, "rb")
    if not f then return fail("--prompt: " .. tostring(ferr)) end
    f:close()
  end
  local model = o.model or "default"
  if gw then
    local gen, tier, p = runner.generator(gw, model)
    if gen == nil then return fail(tier) end
    ro.generate = gen or nil
    local prices = cfg.prices or {}
    ro.price = prices[tier.model or model] or prices[model] or (p.kind == "extractive" and prices.extractive) or prices["*"]
    if p.kind == "extractive" and p.index then ro.index = p.index end
    if o.judge then
      local jtier_gen, jtier = runner.generator(gw, o.judge)
      if jtier_gen == nil then return fail(jtier) end
      ro.judge = runner.judge(require("moongate.gateway.chat").asker(gw), jtier)
    end
  end
  if o.index then ro.index = config_mod.absolute(o.index)
  elseif ecfg.index then ro.index = config_mod.absolute(ecfg.index, cfg.dir)
  elseif not ro.index then ro.index = moongate.home .. "/docs" end

  local db_path = o.db or estore.default_path()
  local st, serr = estore.open(db_path)
  if not st then return fail(serr, 1) end

  local function run_one(p, label)
    ro.prompt = label ~= "baseline" and cand_prompt or nil   -- --prompt is the candidate's alone
    local bar = progress.new{ quiet = o.quiet }
    ro.progress = function(done, total, r)
      bar:step(done, total, format("%s %s %s", label, r.id, r.error and "failed" or ""))
    end
    local started = os.time()
    local results, err = runner.run(g, p, ro)
    bar:done()
    if not results then return nil, err end
    local s = summary.of(results)
    local run = { started = started, golden = g.path, golden_version = g.version, pipeline = p.name, path = p.path,
                  version = p.version, summary = s }
    local id, werr = st:save(run, results)
    if not id then return nil, "cannot store the run: " .. tostring(werr) end
    run.id = id
    return { run = run, results = results, summary = s }
  end

  local baseline
  if base then
    -- a version named: its stored run over this golden set when there is one (the file may have
    -- moved on), else the file when it is still at that version
    local row = base.wanted and st:find(base.name, base.wanted, g.version)
    if base.wanted and not row and base.version:sub(1, #base.wanted) ~= base.wanted then
      st:close()
      return fail(format("no stored run of %s@%s over this golden set (version %s) in %s, and the file is now at %s",
        base.name, base.wanted, g.version, db_path, base.version))
    elseif row then
      local results = st:results(row.id)
      baseline = { run = { id = row.id, pipeline = row.pipeline, version = row.version, path = row.path, stored = true },
                   results = results, summary = summary.of(results) }
    else
      local b, err = run_one(base, "baseline")
      if not b then st:close(); return fail(err) end
      baseline = b
    end
  end
  local candidate, err = run_one(cand, base and "candidate" or "run")
  st:close()
  if not candidate then return fail(err) end

  local cmp = baseline and summary.compare(baseline.results, candidate.results, thresholds)
  local r = { golden = g.path, golden_version = g.version, created = os.time(), candidate = candidate,
              baseline = baseline, comparison = cmp }

  if baseline then print_summary("baseline ", baseline.run, baseline.summary) end
  print_summary(baseline and "candidate" or "run", candidate.run, candidate.summary)
  if cmp then
    out:write("difference (candidate - baseline, 95% paired bootstrap interval):\n")
    for _, m in ipairs(cmp.metrics) do
      out:write(format("  %-20s %+.3f  [%+.3f, %+.3f]%s\n", m.name, m.diff or 0, m.low or 0, m.high or 0,
        m.regressed and "  REGRESSED" or ""))
    end
  end
  if o.report then
    local store_mod = require "moongate.retrieval.store"
    store_mod.mkdir(o.report)
    local f, ferr = io.open(o.report .. "/report.html", "wb")
    if not f then return fail("cannot write the report: " .. tostring(ferr), 1) end
    f:write(report.html(r)); f:close()
    f = assert(io.open(o.report .. "/report.json", "wb"))
    f:write(json.encode_sorted(report.data(r)), "\n"); f:close()
    out:write("report: ", o.report, "/report.html\n")
  end
  if o.json then
    local jf, done = args_lib.output(o.json)
    if not jf then return fail(done, 1) end
    jf:write(json.encode_sorted(report.data(r)), "\n")
    done()
  end
  if cmp and cmp.regressed then
    out:write("REGRESSED:\n")
    for _, why in ipairs(cmp.reasons) do out:write("  ", why, "\n") end
    return 1
  end
  return 0
end
