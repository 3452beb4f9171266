// Canary with automatic rollback: a flag sends 30% of users (stable by hash) to a candidate
// routing policy whose upstream fails 30% of its requests; the watcher rolls it back within the
// configured window; control traffic never fails; after the rollback every request is control,
// and the rollback is in the log, the metrics, the traces and `moongate releases status`.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { MOONGATE, requireBinary, startMock, startGateway, writeConfig, chat, tmp, stopAll } from "./lib/mockenv.mjs";

requireBinary();
const dir = tmp();
const ctl = await startMock("ctl");
const cand = await startMock("cand");
writeConfig("flags.lua", `return { flags = { route_canary = { rollout = 30, description = "route_v2 canary" } } }`);
writeConfig("route_v2.lua", `-- the candidate: answers from the other upstream
return { plan = function(req, ctx) return { tiers = { { provider = "cand", model = "m2", timeout = 2 } } } end }`);
const WINDOW = 4;
const config = writeConfig("moongate.lua", `return {
  providers = { ctl = { kind = "mock", base_url = "${ctl.url}" }, cand = { kind = "mock", base_url = "${cand.url}" } },
  models = { default = { route = { { provider = "ctl", model = "m1", timeout = 15 } }, deadline = 15 } },
  retry = { max_attempts = 1 },
  breaker = { failures = 100000 },   -- the candidate fails as often as its upstream does, no more
  flags = "flags.lua",
  releases = { route_v2 = { flag = "route_canary", candidate = "route_v2.lua", window = ${WINDOW}, min_requests = 20,
                            max_error_rate = 0.1, check_every = 0.2 } },
  trace = { store = "traces.db" },
  -- the candidate's upstream model has no price of its own: it is priced by the alias asked for
  prices = { m1 = { input = 1, output = 2 }, default = { input = 3, output = 5 } },
}`);
const gw = await startGateway(config);

// bad release configs are refused at startup with the reason
const bad = writeConfig("bad.lua", `return { providers = { m = { kind = "mock", base_url = "${ctl.url}" } },
  models = { default = { route = { { provider = "m" } } } }, flags = "flags.lua",
  releases = { r = { flag = "route_canary", candidate = "route_v2.lua", max_error_rate = 3 } } }`);
const b = spawnSync(MOONGATE, ["serve", "--listen", "127.0.0.1:1", bad], { encoding: "utf8", timeout: 10000 });
assert.notEqual(b.status, 0);
assert.match(b.stderr + b.stdout, /release r: max_error_rate is a share, from 0 to 1/);

// a seeded generator (mulberry32): the same draws on every run
let seed = 20261207;
function random() {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const body = { model: "default", messages: [{ role: "user", content: "hi" }] };
let n = 0;
const seen = { control: 0, candidate: 0, controlFailed: 0, candidateFailed: 0, candidateFaulted: 0 };
let firstCandidate = null;
let rolledBackAt = null;
async function one(i) {
  const user = `user-${i % 200}`;
  const headers = { "x-moongate-user": user };
  // 30% of requests, drawn independently of the user, carry a fault the candidate's upstream obeys
  // (target=cand) and control's ignores
  if (random() < 0.3) headers["x-mock-fault"] = "status=500,target=cand";
  const r = await chat(gw, body, headers);
  const variant = (r.headers.get("x-moongate-release") || "").split("=")[1];
  assert.ok(variant === "control" || variant === "candidate", `release header: ${r.headers.get("x-moongate-release")}`);
  seen[variant]++;
  if (variant === "candidate") {
    firstCandidate ??= Date.now();
    assert.equal(r.headers.get("x-moongate-provider") ?? "cand", "cand");
    if (r.status >= 500) seen.candidateFailed++;
    if (headers["x-mock-fault"]) seen.candidateFaulted++;
    assert.equal(r.status >= 500, Boolean(headers["x-mock-fault"]), r.text);   // it fails exactly when faulted
  } else {
    if (r.status !== 200) seen.controlFailed++;
    assert.equal(r.headers.get("x-moongate-provider"), "ctl", `control: ${r.status} ${r.text}`);
  }
  return { user, variant, status: r.status, id: r.headers.get("x-request-id") };
}

async function rollbacks() {
  const m = await (await fetch(`${gw.base}/metrics`)).text();
  const line = m.split("\n").find((l) => l.startsWith('moongate_release_rollbacks_total{release="route_v2"}'));
  return line ? Number(line.split(" ")[1]) : 0;
}

const t0 = Date.now();
while (Date.now() - t0 < 30000) {
  await Promise.all(Array.from({ length: 10 }, () => one(n++)));
  if (n % 50 === 0 && (await rollbacks()) > 0) { rolledBackAt = Date.now(); break; }
}
assert.ok(rolledBackAt, `no rollback after ${n} requests: ${JSON.stringify(seen)}`);
// within the window: from the canary's first request to the rollback, plus the checks' period
// and the 50-request polling stride
const took = (rolledBackAt - firstCandidate) / 1000;
assert.ok(took < WINDOW + 1, `rolled back ${took.toFixed(2)} s after the first canary request`);
assert.ok(seen.candidateFailed > 0);
assert.equal(seen.controlFailed, 0);

// after the rollback: every request is control, answered, and nothing reaches the candidate
await new Promise((r) => setTimeout(r, 300));
const candBefore = (await cand.stats()).chat;
const after = [];
for (let k = 0; k < 10; k++) after.push(...(await Promise.all(Array.from({ length: 10 }, () => one(n++)))));
assert.ok(after.every((x) => x.variant === "control" && x.status === 200), JSON.stringify(after.filter((x) => x.status !== 200)));
assert.equal((await cand.stats()).chat, candBefore);
assert.equal(seen.controlFailed, 0);
assert.equal(await rollbacks(), 1);

// what the gateway serves now: GET /admin/releases
const live = (await (await fetch(`${gw.base}/admin/releases`)).json()).data[0];
assert.equal(live.name, "route_v2");
assert.equal(live.state, "rolled back");
assert.match(live.reason, /^canary error rate/);
assert.equal(live.control.errors, 0);
assert.ok(live.control.requests >= 100, JSON.stringify(live.control));
assert.equal(live.window, WINDOW);

// the metrics per variant
const metrics = await (await fetch(`${gw.base}/metrics`)).text();
const count = (variant, outcome) => Number((metrics.split("\n").find((l) =>
  l.startsWith(`moongate_release_requests_total{release="route_v2",variant="${variant}",outcome="${outcome}"}`)) || " 0").split(" ")[1]);
assert.equal(count("control", "error"), 0);
assert.ok(count("candidate", "error") > 0);
assert.ok(count("control", "ok") >= seen.control - 20);   // the last tick may not be flushed yet
assert.match(metrics, /moongate_release_duration_seconds_bucket\{release="route_v2",variant="candidate",le="\+Inf"\}/);

// the variants' spend adds up to the gateway's, each priced as moongate_cost_total prices it
await new Promise((r) => setTimeout(r, 1200));   // every worker's last tick flushed
const settled = await (await fetch(`${gw.base}/metrics`)).text();
const sum = (prefix) => settled.split("\n").filter((l) => l.startsWith(prefix)).reduce((a, l) => a + Number(l.split(" ")[1]), 0);
const candidateSpend = sum('moongate_release_cost_total{release="route_v2",variant="candidate"}');
assert.ok(candidateSpend > 0, "the candidate's spend is counted");
const spend = sum('moongate_release_cost_total{release="route_v2",');
assert.ok(Math.abs(spend - sum("moongate_cost_total{")) < 1e-9, `release spend ${spend}, gateway spend ${sum("moongate_cost_total{")}`);

// a canary user's request after the rollback carries the event in its trace
await new Promise((r) => setTimeout(r, 300));
let evented = 0;
for (const x of after) {
  const r = await fetch(`${gw.base}/admin/traces/${x.id}`);
  if (r.status !== 200) continue;   // the store keeps up to store_rate traces a second
  const t = await r.json();
  const root = t.spans.find((s) => !s.parentSpanId);
  if ((root.events || []).some((e) => e.name === "moongate.release.rolled_back")) evented++;
}
assert.ok(evented > 0, "no trace with the rollback event");

// the log, and `moongate releases status`
await stopAll({ name: "gateway", child: gw.child });
assert.match(gw.child.log(), /release rolled back/);
assert.match(gw.child.log(), /canary error rate \d+\.\d% \(\d+ of \d+\) vs control 0\.0% \(0 of \d+\) over 4s/);
const st = spawnSync(MOONGATE, ["releases", "status", config, "--json"], { encoding: "utf8" });
assert.equal(st.status, 0, st.stderr);
const [rel] = JSON.parse(st.stdout);
assert.equal(rel.release, "route_v2");
assert.equal(rel.state, "rolled back");
assert.equal(rel.share, "30%");
assert.match(rel.since, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/);
assert.match(rel.reason, /^canary error rate/);
const text = spawnSync(MOONGATE, ["releases", "status", config], { encoding: "utf8" }).stdout;
assert.match(text.split("\n")[1], /^route_v2\s+route_canary\s+route_v2\.lua\s+[0-9a-f]{16}\s+30%\s+rolled back\s+\d{4}-/);

// a restart keeps the rolled-back version off; a new version of the candidate goes live again
const gw2 = await startGateway(config);
const again = await Promise.all(Array.from({ length: 30 }, (_, i) => chat(gw2, body, { "x-moongate-user": `user-${i}` })));
assert.ok(again.every((r) => r.headers.get("x-moongate-release") === "route_v2=control"));
fs.appendFileSync(path.join(dir, "route_v2.lua"), "\n-- v2.1\n");
await new Promise((r) => setTimeout(r, 600));
const v3 = await Promise.all(Array.from({ length: 30 }, (_, i) => chat(gw2, body, { "x-moongate-user": `user-${i}` })));
assert.ok(v3.some((r) => r.headers.get("x-moongate-release") === "route_v2=candidate"));
await stopAll({ name: "gateway", child: gw2.child });
const st2 = JSON.parse(spawnSync(MOONGATE, ["releases", "status", config, "--json"], { encoding: "utf8" }).stdout)[0];
assert.equal(st2.state, "live");
assert.notEqual(st2.version, rel.version);
await stopAll(ctl, cand);
console.log(`ok: rolled back after ${took.toFixed(2)} s; ${seen.candidate} canary requests (${seen.candidateFailed} failed), ` +
  `${seen.control} control requests (0 failed)`);
