// `moongate eval` gates a release: a deliberately worse candidate over a small golden set exits 1
// and says why with exact figures; the run is stored, a later eval can compare against it by
// version; the HTML report renders in headless Chromium with no console errors and its plots.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { MOONGATE, HOME, requireBinary, tmp } from "./lib/mockenv.mjs";
import { launch, openPage, screenshot } from "./lib/browser.mjs";

requireBinary();
const dir = tmp();
const data = path.join(HOME, "tests/data/evals");
const env = { ...process.env, MOONGATE_INDEX_CACHE: path.join(dir, "cache"), MOONGATE_EVALS: path.join(dir, "evals.db") };

function evalRun(...args) {
  const r = spawnSync(MOONGATE, ["eval", path.join(data, "small.jsonl"), "--index", path.join(data, "corpus"), ...args],
    { env, encoding: "utf8", cwd: dir });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

// 1. the shipped pipeline alone: every case right
let r = evalRun("--pipeline", "rag_qa", "--json", "-", "--quiet");
assert.equal(r.code, 0, r.err);
const alone = JSON.parse(r.out);
assert.deepEqual(alone.candidate.summary.scores,
  { correctness: 1, citation_precision: 1, citation_recall: 1, format: 1, groundedness: 1 });
assert.equal(alone.candidate.summary.cases, 8);
assert.equal(alone.verdict, "ok");
const version = alone.candidate.version;
assert.match(version, /^[0-9a-f]{16}$/);

// 2. the worse candidate against it: exit 1, and why
const report = path.join(dir, "report");
r = evalRun("--pipeline", path.join(data, "rag_qa_worse.lua"), "--against", "rag_qa", "--report", report);
assert.equal(r.code, 1, r.out + r.err);
assert.match(r.out, /correctness fell from 1\.000 to 0\.250 \(-0\.750, 95% CI -1\.000\.\.-0\.500 over 8 cases\), more than the allowed 0\.020/);
assert.match(r.out, /citation_recall fell from 1\.000 to 0\.250/);
assert.doesNotMatch(r.out, /format fell/);
// plain progress lines when stderr is not a terminal: one per case
assert.equal(r.err.split("\n").filter((l) => /^\d+\/8 /.test(l)).length, 16);
const rep = JSON.parse(fs.readFileSync(path.join(report, "report.json"), "utf8"));
assert.equal(rep.verdict, "regressed");
const corr = rep.comparison.metrics.find((m) => m.name === "correctness");
assert.deepEqual([corr.baseline, corr.candidate, corr.diff, corr.regressed], [1, 0.25, -0.75, true]);
const failed = rep.candidate.cases.filter((c) => c.scores.correctness === 0).map((c) => c.id).sort();
assert.deepEqual(failed, ["bread-rise", "chain-oil", "compost-turn", "flour-storage", "tomato-water", "tyre-pressure"]);

// 3. a threshold wide enough lets it pass
r = evalRun("--pipeline", path.join(data, "rag_qa_worse.lua"), "--against", "rag_qa", "--max-regression", "0.8", "--quiet");
assert.equal(r.code, 0, r.out + r.err);

// 4. the baseline by version, read from the store (no run of it this time)
r = evalRun("--pipeline", path.join(data, "rag_qa_worse.lua"), "--against", `rag_qa@${version.slice(0, 8)}`, "--quiet",
  "--json", "-");
assert.equal(r.code, 1);
const stored = JSON.parse(r.out);
assert.equal(stored.baseline.stored, true);
assert.equal(stored.baseline.version, version);
r = evalRun("--against", "rag_qa@00000000", "--quiet");
assert.equal(r.code, 2);
assert.match(r.err, /no stored run of rag_qa@00000000 over this golden set/);

// 5. bad input: clear errors, exit 2
const bad = path.join(dir, "bad.jsonl");
fs.writeFileSync(bad, '{"id":"a","question":"q?"}\n{"id":"a","question":"again?"}\n');
r = spawnSync(MOONGATE, ["eval", bad], { env, encoding: "utf8" });
assert.equal(r.status, 2);
assert.match(r.stderr, /bad\.jsonl:2: id 'a' is used twice \(first on line 1\)/);
fs.writeFileSync(bad, '{"id":"a","question":"q?","expect":{"similar":"x"}}\n');
r = spawnSync(MOONGATE, ["eval", bad], { env, encoding: "utf8" });
assert.match(r.stderr, /bad\.jsonl:1: expect: unknown kind 'similar'/);
r = spawnSync(MOONGATE, ["eval", path.join(data, "small.jsonl"), "--pipeline", "nope"], { env, encoding: "utf8" });
assert.equal(r.status, 2);
assert.match(r.stderr, /no pipeline 'nope'/);

for (const [args, msg] of [
  [["--concurrency", "0"], /--concurrency must be a whole number >= 1/],
  [["--max-regression", "x"], /--max-regression must be a number >= 0/],
  [["--pipelin", "rag_qa"], /unknown option --pipelin/],
  [["--judge", "m"], /--judge needs a config/],
  [["--pipeline", "rag_qa@0000"], /pipeline rag_qa is at version [0-9a-f]{16}, not 0000/],
]) {
  r = evalRun(...args);
  assert.equal(r.code, 2, args.join(" "));
  assert.match(r.err, msg);
}
r = spawnSync(MOONGATE, ["eval", path.join(dir, "none.jsonl")], { env, encoding: "utf8" });
assert.equal(r.status, 2);
assert.match(r.stderr, /cannot read golden set .*none\.jsonl: No such file or directory/);

// 6. the HTML report in a real browser
const browser = await launch();
const { page, errors } = await openPage(browser);
await page.goto("file://" + path.join(report, "report.html"), { waitUntil: "load" });
const seen = await page.evaluate(() => ({
  verdict: document.querySelector("#verdict").textContent,
  reasons: [...document.querySelectorAll("#reasons li")].map((li) => li.textContent),
  plots: [...document.querySelectorAll("svg.plot")].map((s) => s.dataset.plot),
  bars: document.querySelectorAll("svg.plot rect.bar").length,
  intervals: document.querySelectorAll("svg[data-plot=diff] line.ci").length,
  cases: document.querySelectorAll("#cases tr").length - 1,
  width: document.querySelector("svg[data-plot=means]").getBoundingClientRect().width,
}));
await screenshot(page, "eval-report");
await browser.close();
assert.deepEqual(errors, []);
assert.equal(seen.verdict, "REGRESSED");
assert.equal(seen.reasons.length, 4);
assert.deepEqual(seen.plots, ["means", "dist-correctness", "dist-citation_precision", "dist-citation_recall",
  "dist-format", "dist-groundedness", "tags", "latency", "tokens", "cost", "diff"]);
assert.ok(seen.bars > 50, `bars: ${seen.bars}`);
assert.equal(seen.intervals, 5);
assert.equal(seen.cases, 8);
assert.ok(seen.width > 500);
console.log("ok: eval gate, stored baseline, bad input, report in Chromium");

// 7. a model answers: the config's provider (a real mock upstream), its usage and the config's prices
const { startMock, writeConfig } = await import("./lib/mockenv.mjs");
const mock = await startMock("model");
const cfg = writeConfig("eval.lua", `return {
  providers = { m = { kind = "mock", base_url = "${mock.url}" } },
  models = { default = { route = { { provider = "m", model = "mock-small" } } } },
  prices = { ["mock-small"] = { input = 1.0, output = 2.0 } },
}`);
r = evalRun("--config", cfg, "--quiet", "--json", "-", "--concurrency", "3");
assert.equal(r.code, 0, r.err);
const viaModel = JSON.parse(r.out).candidate;
const st = await mock.stats();
assert.equal(st.chat, 8);
const tin = viaModel.cases.reduce((s, c) => s + c.tokens_in, 0);
const tout = viaModel.cases.reduce((s, c) => s + c.tokens_out, 0);
assert.equal(viaModel.summary.tokens_in, tin);
assert.ok(tin > 8 * 50, `prompt tokens ${tin}`);
assert.equal(viaModel.summary.cost, Math.round((tin * 1.0 + tout * 2.0)) / 1e6);
assert.match(viaModel.cases[0].answer, /^mock answer: Passages:/);
// the system prompt is the template next to the pipeline, its version recorded with the run
const template = fs.readFileSync(path.join(HOME, "pipelines/rag_qa.system.txt"), "utf8").replace(/\n$/, "");
let last = JSON.parse((await mock.last()).body);
assert.equal(last.messages[0].role, "system");
assert.equal(last.messages[0].content, template);
assert.equal(viaModel.summary.prompt_versions.length, 1);
assert.match(viaModel.summary.prompt_versions[0], /^[0-9a-f]{16}$/);
// --prompt gives the candidate another template: a new version, sent to the model
const terse = path.join(dir, "terse.txt");
fs.writeFileSync(terse, "Answer in one sentence, citing [n].\n");
r = evalRun("--config", cfg, "--quiet", "--json", "-", "--prompt", terse);
assert.equal(r.code, 0, r.err);
last = JSON.parse((await mock.last()).body);
assert.equal(last.messages[0].content, "Answer in one sentence, citing [n].");
assert.notDeepEqual(JSON.parse(r.out).candidate.summary.prompt_versions, viaModel.summary.prompt_versions);
// a --prompt file that is not there: a usage error before any case runs
r = evalRun("--config", cfg, "--quiet", "--prompt", "missing.txt");
assert.equal(r.code, 2, r.err);
assert.equal(r.err, `moongate eval: --prompt: ${path.join(dir, "missing.txt")}: No such file or directory\n`);
await mock.stop();
console.log("ok: eval through a model provider, tokens and cost from its usage");

// 8. served by the gateway, the pipeline's stage spans name the prompt version
const { startGateway, chat, stopAll } = await import("./lib/mockenv.mjs");
const gcfg = writeConfig("docs.lua", `return {
  providers = { docs = { kind = "extractive", index = "${path.join(data, "corpus")}" } },
  models = { ["*"] = { route = { { provider = "docs" } } } },
  trace = { store = "${path.join(dir, "traces.db")}" },
}`);
const gw = await startGateway(gcfg, { MOONGATE_INDEX_CACHE: env.MOONGATE_INDEX_CACHE });
const answer = await chat(gw, { model: "m", messages: [{ role: "user", content: "How often should I oil the bicycle chain?" }] });
assert.equal(answer.status, 200);
await new Promise((res) => setTimeout(res, 300));
const trace = await (await fetch(`${gw.base}/admin/traces/${answer.headers.get("x-request-id")}`)).json();
const stages = trace.spans.filter((s) => ["retrieve", "rerank", "build_context", "generate", "answer"].includes(s.name));
assert.equal(stages.length, 5);
for (const s of stages) {
  const a = Object.fromEntries(s.attributes.map((x) => [x.key, Object.values(x.value)[0]]));
  assert.equal(a["moongate.prompt"], "rag_qa.system");
  assert.equal(a["moongate.prompt.version"], viaModel.summary.prompt_versions[0]);
}
await stopAll({ name: "gateway", child: gw.child });
console.log("ok: the prompt version in every stage span");
