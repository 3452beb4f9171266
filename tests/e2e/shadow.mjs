// Shadow traffic: a release with shadow = 1 and no canary share copies every served chat to its
// candidate in the background; clients only ever get control's answers; the copies are recorded
// (with their own traces) and `moongate eval --shadow` finds the candidate failing a quarter of them.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import path from "node:path";
import { MOONGATE, requireBinary, startMock, startGateway, writeConfig, chat, tmp, stopAll } from "./lib/mockenv.mjs";

requireBinary();
const dir = tmp();
const ctl = await startMock("ctl");
const cand = await startMock("cand", ["--latency", "20"]);
writeConfig("flags.lua", `return { flags = { route_canary = { rollout = 0 } } }`);
writeConfig("route_v2.lua", `return { plan = function() return { tiers = { { provider = "cand", model = "m2" } } } end }`);
const config = writeConfig("moongate.lua", `return {
  providers = { ctl = { kind = "mock", base_url = "${ctl.url}" }, cand = { kind = "mock", base_url = "${cand.url}" } },
  models = { default = { route = { { provider = "ctl", model = "m1" } } } },
  retry = { max_attempts = 1 }, breaker = { failures = 100000 },
  auth = { keys = { ["sk-acme"] = "acme", ["sk-globex"] = "globex" }, admin_key = "sk-admin" },
  tenants = { acme = { log_raw = true } },
  flags = "flags.lua",
  releases = { route_v2 = { flag = "route_canary", candidate = "route_v2.lua", shadow = 1 } },
  trace = { store = "traces.db" },
}`);
const gw = await startGateway(config);

const ids = [];
for (let i = 0; i < 20; i++) {
  const body = { model: "default", messages: [{ role: "user", content: `question ${i}` }] };
  // a fault in the body reaches whichever upstream answers: aimed at the candidate, control ignores it
  if (i % 4 === 0) body.mock = { status: 500, target: "cand" };
  const key = i < 10 ? "sk-acme" : "sk-globex";
  const r = await chat(gw, body, { authorization: `Bearer ${key}` });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("x-moongate-provider"), "ctl");
  assert.equal(r.body.choices[0].message.content, `mock answer: question ${i}`);
  assert.equal(r.headers.get("x-moongate-release"), "route_v2=control");
  ids.push(r.headers.get("x-request-id"));
}
// the copies run one at a time in the background: wait for all 20
for (let k = 0; k < 100 && (await cand.stats()).chat < 20; k++) await new Promise((r) => setTimeout(r, 50));
assert.equal((await cand.stats()).chat, 20);
await new Promise((r) => setTimeout(r, 300));

// feedback on a served answer is counted for its variant
const fb = await fetch(`${gw.base}/v1/feedback`, { method: "POST",
  headers: { authorization: "Bearer sk-acme", "content-type": "application/json" },
  body: JSON.stringify({ request_id: ids[1], rating: "up" }) });
assert.equal(fb.status, 201);
await new Promise((r) => setTimeout(r, 1100));   // the metrics tick
const m = await (await fetch(`${gw.base}/metrics`, { headers: { authorization: "Bearer sk-admin" } })).text();
assert.match(m, /moongate_shadow_requests_total\{release="route_v2",outcome="ok"\} 15/);
assert.match(m, /moongate_shadow_requests_total\{release="route_v2",outcome="error"\} 5/);
assert.match(m, /moongate_release_feedback_total\{release="route_v2",variant="control",kind="positive"\} 1/);
// each copy has its own trace: the served request's id prefixed with shadow-
let traced = 0;
for (const id of ids) {
  const t = await fetch(`${gw.base}/admin/traces/shadow-${id}`, { headers: { authorization: "Bearer sk-admin" } });
  if (t.status !== 200) continue;
  const row = await t.json();
  assert.equal(row.route, "shadow");
  const root = row.spans.find((x) => !x.parentSpanId);
  const attrs = Object.fromEntries(root.attributes.map((a) => [a.key, Object.values(a.value)[0]]));
  assert.equal(attrs["moongate.shadow.of"], id);
  assert.equal(attrs["moongate.release.variant"], "shadow");
  assert.ok(row.spans.some((x) => x.name === "chat m2"), row.spans.map((x) => x.name).join(","));
  traced++;
}
assert.ok(traced >= 15, `shadow traces: ${traced}`);
await stopAll({ name: "gateway", child: gw.child });

const r = spawnSync(MOONGATE, ["eval", "--shadow", "--traces", path.join(dir, "traces.db"), "--json", "-"], { encoding: "utf8" });
assert.equal(r.status, 1, r.stderr);
const s = JSON.parse(r.stdout);
assert.equal(s.pairs, 20);
assert.equal(s.errors, 5);
assert.equal(s.error_rate, 0.25);
assert.equal(s.agreement, 0.75);              // both upstreams answer "mock answer: question i"
assert.deepEqual(s.reasons, ["the candidate failed 25.0% of the copies (5 of 20), more than the allowed 2.0%"]);
assert.match(r.stderr, /REGRESSED:\n  the candidate failed 25\.0% of the copies \(5 of 20\)/);
assert.ok(s.shadow.p50 >= 20, `candidate p50 ${s.shadow.p50}`);   // its upstream adds 20 ms
// text is kept for acme (log_raw) only: 10 copies, of which the 3 faulted have no answer
assert.equal(s.compared_text, 7);
assert.equal(s.similarity, 1);

// a lenient threshold passes
const ok = spawnSync(MOONGATE, ["eval", "--shadow", "--traces", path.join(dir, "traces.db"), "--max-regression", "0.3"], { encoding: "utf8" });
assert.equal(ok.status, 0, ok.stderr);
assert.match(ok.stdout, /error rate\s+0\.250 \(5 of 20\)/);
process.stdout.write(r.stderr);
await stopAll(ctl, cand);
console.log("ok: shadow copies recorded, never served; moongate eval --shadow gates on them");
