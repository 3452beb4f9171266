// Fault injection through the gateway: for each fault `moongate mock` can play, a healthy
// secondary still gives the user a valid answer within the deadline, and with no healthy
// provider the user gets the exact error. Upstream calls are counted with /mock/stats: retries
// never exceed the cap, an open breaker keeps traffic off a dead provider, and a probe goes
// through after the cool-down.
import { test, before, after } from "node:test";
import fs from "node:fs";
import http from "node:http";
import assert from "node:assert/strict";
import { requireBinary, startMock, startGateway, writeConfig, stop, stopAll, chat, sseEvents } from "./lib/mockenv.mjs";

requireBinary();

// Per-attempt timeout 1 s; `default` falls back primary -> secondary inside 4 s; `alone` has only
// primary (tier timeout 5 s, deadline 1 s: the deadline decides); `big` is primary with room for
// a loaded machine (the stream tests are about back-pressure, not time); `retry` calls primary up to
// 10 times but the cap is 3.
const CONFIG = (breaker) => `
return {
  providers = {
    primary = { kind = "mock", base_url = os.getenv("MOCK_PRIMARY") },
    secondary = { kind = "mock", base_url = os.getenv("MOCK_SECONDARY") },
    claude = { kind = "anthropic", base_url = os.getenv("MOCK_PRIMARY"):gsub("/v1$", ""), api_key = "sk-ant" },
  },
  models = {
    default = { route = { { provider = "primary", model = "mock-small", timeout = 1 },
                          { provider = "secondary", model = "mock-small", timeout = 1 } }, deadline = 4 },
    alone = { route = { { provider = "primary", model = "mock-small", timeout = 5 } }, deadline = 1 },
    big = { route = { { provider = "primary", model = "mock-small", timeout = 20 } }, deadline = 20 },
    retry = { route = { { provider = "primary", model = "mock-small", timeout = 1, attempts = 10 } }, deadline = 5 },
    claude = { route = { { provider = "claude", model = "claude-mock", timeout = 1 },
                         { provider = "secondary", model = "mock-small", timeout = 1 } }, deadline = 4 },
    claude_alone = { route = { { provider = "claude", model = "claude-mock", timeout = 5 } }, deadline = 1 },
  },
  retry = { max_attempts = 3, backoff = 0.01, backoff_max = 0.02, retry_after_max = 2 },
  breaker = ${breaker},
}
`;
const NO_BREAKER = "{ failures = 100000, window = 60, cooldown = 60 }";

let primary, secondary, gw;

before(async () => {
  primary = await startMock("primary");
  secondary = await startMock("secondary");
  gw = await startGateway(writeConfig("faults.lua", CONFIG(NO_BREAKER)),
    { MOCK_PRIMARY: primary.url, MOCK_SECONDARY: secondary.url });
});

after(async () => {
  await stopAll(gw, primary, secondary);
});

const question = (q) => [{ role: "user", content: q }];

async function resetCounts() {
  await primary.reset();
  await secondary.reset();
}
async function counts() {
  return [(await primary.stats()).requests, (await secondary.stats()).requests];
}

// A healthy call to primary first, so the next one goes over a reused (keep-alive) connection.
async function warm() {
  const r = await chat(gw, { model: "alone", messages: question("warm up") });
  assert.equal(r.status, 200, r.text);
}

function streamText(events) {
  let text = "";
  for (const e of events) if (e !== "[DONE]" && e.choices?.[0]?.delta?.content) text += e.choices[0].delta.content;
  return text;
}

// Faults aimed at primary only (target), each with the status `alone` must answer with.
const FAULTS = [
  { name: "status 503", fault: { status: 503 }, alone: 502, code: "upstream_error" },
  { name: "status 500", fault: { status: 500 }, alone: 502, code: "upstream_error" },
  { name: "429 with Retry-After", fault: { status: 429, retry_after: 1 }, alone: 429, code: "rate_limited" },
  { name: "latency past the attempt timeout", fault: { latency: 2500 }, alone: 504, timed: true },
  { name: "stall", fault: { stall: true }, alone: 504, timed: true },
  { name: "stall before the first byte", fault: { stall_first_byte: 2500 }, alone: 504, timed: true },
  { name: "connection reset", fault: { reset: true }, alone: 502, code: "upstream_error", reused: true },
  { name: "malformed JSON", fault: { malformed: true }, alone: 502, code: "upstream_error" },
  { name: "body cut short", fault: { cut_after: 40 }, alone: 502, code: "upstream_error" },
];

for (const f of FAULTS) {
  test(`${f.name}: the secondary answers within the deadline`, async () => {
    if (f.reused) await warm();
    await resetCounts();
    const q = `fallback on ${f.name}`;
    const r = await chat(gw, { model: "default", messages: question(q), mock: { ...f.fault, target: "primary" } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.body.choices[0].message.content, `mock answer: ${q}`);
    assert.equal(r.headers.get("x-moongate-provider"), "secondary");
    assert.equal(r.headers.get("x-moongate-attempts"), "2");
    assert.deepEqual(await counts(), [1, 1]);
    assert.ok(r.ms < (f.timed ? 2500 : 1000), `took ${r.ms} ms`);
  });

  test(`${f.name}: alone, the user gets ${f.alone}`, async () => {
    if (f.reused) await warm();
    await resetCounts();
    const r = await chat(gw, { model: "alone", messages: question("no fallback"), mock: f.fault });
    assert.equal(r.status, f.alone, r.text);
    assert.equal(r.headers.get("content-type"), "application/json");
    assert.equal(r.body.error.type, { 429: "rate_limit_error", 502: "upstream_error", 504: "timeout_error" }[f.alone]);
    if (f.code) assert.equal(r.body.error.code, f.code);
    if (f.alone === 429) assert.equal(r.headers.get("retry-after"), "1");
    if (f.timed) assert.ok(r.ms >= 900 && r.ms < 2000, `answered after ${r.ms} ms (deadline 1 s)`);
    assert.equal(r.headers.get("x-moongate-attempts"), "1");
    assert.deepEqual(await counts(), [1, 0]);
  });
}

// Streams: before the first byte a failure still falls back; after it, the stream ends with an
// error event and no [DONE].
const STREAM_FAULTS = [
  { name: "status 503", fault: { status: 503 } },
  { name: "connection reset", fault: { reset: true }, reused: true },
  { name: "stall before the first byte", fault: { stall_first_byte: 2500 } },
  { name: "cut before the first event", fault: { cut_after: 0 } },
  { name: "malformed data before any content", fault: { malformed: true } },
];

for (const f of STREAM_FAULTS) {
  test(`stream, ${f.name}: the secondary streams the answer`, async () => {
    if (f.reused) await warm();
    await resetCounts();
    const q = `stream fallback on ${f.name}`;
    const r = await chat(gw, { model: "default", stream: true, messages: question(q),
      mock: { ...f.fault, target: "primary" } });
    assert.equal(r.status, 200, r.text);
    assert.match(r.headers.get("content-type"), /^text\/event-stream/);
    assert.equal(r.headers.get("x-moongate-provider"), "secondary");
    const ev = sseEvents(r.text);
    assert.equal(ev.at(-1), "[DONE]");
    assert.equal(streamText(ev), `mock answer: ${q}`);
    assert.deepEqual(await counts(), [1, 1]);
  });
}

// A stream with no healthy provider fails before its first byte: a JSON error with the status,
// not a 200 event stream.
for (const f of [
  { name: "status 503", fault: { status: 503 }, status: 502 },
  { name: "connection reset", fault: { reset: true }, status: 502 },
  { name: "stall", fault: { stall: true }, status: 504 },
  { name: "cut before the first event", fault: { cut_after: 0 }, status: 502 },
]) {
  test(`stream, ${f.name}, alone: the user gets ${f.status}`, async () => {
    await resetCounts();
    const r = await chat(gw, { model: "alone", stream: true, messages: question("no stream"), mock: f.fault });
    assert.equal(r.status, f.status, r.text);
    assert.equal(r.headers.get("content-type"), "application/json");
    assert.equal(typeof r.body.error.message, "string");
    assert.equal(r.body.error.type, f.status === 504 ? "timeout_error" : "upstream_error");
  });
}

// The anthropic adapter over the mock's /v1/messages: its failures fall back the same way. The
// adapter builds Anthropic's body itself (the "mock" field does not survive it), so the fault
// rides in the x-mock-fault header, which the gateway forwards.
for (const f of [
  { name: "overloaded (529)", fault: "status=529", alone: 502 },
  { name: "429 with Retry-After", fault: "status=429,retry_after=1", alone: 429 },
  { name: "connection reset", fault: "reset", alone: 502, reused: true },
  { name: "malformed JSON", fault: "malformed", alone: 502 },
  { name: "stall", fault: "stall", alone: 504 },
]) {
  for (const stream of [false, true]) {
    test(`anthropic${stream ? " stream" : ""}, ${f.name}: the secondary answers`, async () => {
      await resetCounts();
      const q = `claude fallback on ${f.name}`;
      const r = await chat(gw, { model: "claude", stream, messages: question(q) },
        { "x-mock-fault": `${f.fault},target=primary` });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.headers.get("x-moongate-provider"), "secondary");
      const text = stream ? streamText(sseEvents(r.text)) : r.body.choices[0].message.content;
      assert.equal(text, `mock answer: ${q}`);
      assert.deepEqual(await counts(), [1, 1]);
    });
  }
  test(`anthropic, ${f.name}, alone: the user gets ${f.alone}`, async () => {
    await resetCounts();
    const r = await chat(gw, { model: "claude_alone", messages: question("alone") }, { "x-mock-fault": f.fault });
    assert.equal(r.status, f.alone, r.text);
    assert.equal(typeof r.body.error.message, "string");
    if (f.alone === 429) assert.equal(r.headers.get("retry-after"), "1");
    assert.deepEqual(await counts(), [1, 0]);
  });
}

test("anthropic stream, malformed data after the first text: an error event, no [DONE]", async () => {
  // message_start, content_block_start, ping, the delta "mock ", then the spoilt event
  await resetCounts();
  const r = await chat(gw, { model: "claude", stream: true, messages: question("garbled") },
    { "x-mock-fault": "malformed=4,target=primary" });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("x-moongate-provider"), "claude");
  const ev = sseEvents(r.text.replace(/data: \{"id": "malformed".*\n\n/, ""));
  assert.notEqual(ev.at(-1), "[DONE]");
  assert.equal(typeof ev.at(-1).error?.message, "string", `last event: ${JSON.stringify(ev.at(-1))}`);
  assert.equal(streamText(ev), "mock ");
  assert.deepEqual(await counts(), [1, 0]);
});

test("embeddings fall back too", async () => {
  await resetCounts();
  const r = await fetch(`${gw.base}/v1/embeddings`, { method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "default", input: "fall back", mock: { status: 503, target: "primary" } }) });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("x-moongate-provider"), "secondary");
  const body = await r.json();
  assert.equal(body.data[0].embedding.length, 64);
  assert.deepEqual(await counts(), [1, 1]);
});

// libcurl by itself resends a request whose reused connection died before any answer
// ("Connection died, retrying a fresh connect"); moongate.http must fail it as a reset instead,
// or the upstream gets the POST twice, outside the router's attempt count and cap.
test("a reset on a reused upstream connection reaches the upstream once", async () => {
  await warm();
  await resetCounts();
  const r = await chat(gw, { model: "alone", messages: question("once"), mock: { reset: true } });
  assert.equal(r.status, 502);
  assert.deepEqual(await counts(), [1, 0]);
});

test("stream cut after its first bytes: an error event, no [DONE], no second call", async () => {
  await resetCounts();
  const r = await chat(gw, { model: "default", stream: true, messages: question("cut me off"),
    mock: { cut_after: 3, target: "primary" } });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("x-moongate-provider"), "primary");
  const ev = sseEvents(r.text);
  assert.notEqual(ev.at(-1), "[DONE]");
  assert.ok(ev.at(-1).error, `last event: ${JSON.stringify(ev.at(-1))}`);
  assert.equal(typeof ev.at(-1).error.message, "string");
  assert.equal(streamText(ev), "mock answer: ");
  assert.deepEqual(await counts(), [1, 0]);
});

test("malformed stream data after the first bytes: an error event, no [DONE]", async () => {
  await resetCounts();
  // the 4th event is spoilt: "mock " and "answer: " have gone to the client by then
  const r = await chat(gw, { model: "default", stream: true, messages: question("garble"),
    mock: { malformed: 3, target: "primary" } });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("x-moongate-provider"), "primary");
  const ev = sseEvents(r.text.replace(/data: \{"id": "malformed".*\n\n/, ""));
  assert.notEqual(ev.at(-1), "[DONE]");
  assert.ok(ev.at(-1).error, `last event: ${JSON.stringify(ev.at(-1))}`);
  assert.equal(streamText(ev), "mock answer: ");
  assert.deepEqual(await counts(), [1, 0]);
});

// A stream read by hand with node:http, so the test decides when (and whether) to read.
function openStream(gwBase, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(`${gwBase}/v1/chat/completions`, {
      method: "POST", headers: { "content-type": "application/json" },
    }, resolve);
    req.on("error", reject);
    req.end(JSON.stringify(body));
  });
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

test("a client that disconnects mid-stream cancels the upstream transfer", async () => {
  await resetCounts();
  // about 40 events, 100 ms apart: 4 s if nobody stopped it
  const res = await openStream(gw.base, { model: "default", stream: true,
    messages: question("one two three four five six seven eight nine ten"),
    mock: { chunk_delay: 100, answer_bytes: 150 } });
  assert.equal(res.statusCode, 200);
  await new Promise((r) => res.once("data", r));
  res.destroy();
  await sleep(800);
  const s1 = await primary.stats();
  await sleep(700);
  const s2 = await primary.stats();
  assert.equal(s2.stream, 1);
  assert.equal(s2.stream_finished, 0, "the upstream stream ran to its end");
  assert.ok(s1.stream_events <= 4, `${s1.stream_events} events sent 0.8 s after the client left`);
  assert.equal(s2.stream_events, s1.stream_events, "the upstream kept streaming");
});

const rssMB = (pid) => Number(fs.readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/)[1]) / 1024;

test("a client that reads nothing holds the upstream back; moongate buffers a bounded amount", async () => {
  await resetCounts();
  const rss0 = rssMB(gw.child.pid);
  // a 60 MB answer in events of up to 4 kB (~45,000 events); the client never reads
  const res = await openStream(gw.base, { model: "big", stream: true,
    messages: question("x".repeat(4000)), mock: { answer_bytes: 60_000_000 } });
  assert.equal(res.statusCode, 200);
  res.pause();
  await sleep(1500);
  const s1 = await primary.stats();
  await sleep(1000);
  const s2 = await primary.stats();
  const grown = rssMB(gw.child.pid) - rss0;
  res.destroy();
  console.log(`# paused client: ${s2.stream_events} events left the mock, gateway RSS +${grown.toFixed(1)} MB`);
  assert.equal(s2.stream_events, s1.stream_events, "the upstream kept streaming to a client that reads nothing");
  assert.ok(s2.stream_events < 15_000, `${s2.stream_events} of ~45,000 events left the mock`);
  assert.ok(grown < 24, `the gateway grew by ${grown} MB`);
  await sleep(300);
  assert.equal((await primary.stats()).stream_finished, 0);
});

// 3,500 events (1.2 MB): an SSE reader that re-slices its buffer per event is quadratic in the
// size of a read and takes seconds here; the mock alone sends them in 0.02 s.
test("a long stream of small events is relayed in reasonable time", async () => {
  await resetCounts();
  const body = { model: "big", stream: true, messages: question("many small words"), mock: { answer_bytes: 30_000 } };
  const direct = await fetch(`${primary.url}/chat/completions`, { method: "POST",
    headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const directText = await direct.text();
  const t0 = performance.now();
  const r = await chat(gw, body);
  const ms = performance.now() - t0;
  assert.equal(r.status, 200);
  assert.equal(streamText(sseEvents(r.text)), streamText(sseEvents(directText)));
  assert.ok(ms < 1000, `${ms} ms for ${r.text.length} bytes`);
});

test("retries stop at the cap", async () => {
  await resetCounts();
  const r = await chat(gw, { model: "retry", messages: question("again"), mock: { status: 503 } });
  assert.equal(r.status, 502);
  assert.equal(r.body.error.code, "upstream_error");
  assert.equal(r.headers.get("x-moongate-attempts"), "3");
  assert.deepEqual(await counts(), [3, 0]);
});

test("a retry honours Retry-After", async () => {
  await resetCounts();
  await primary.fault("status=429,retry_after=1");
  // the first call is rate limited; the mock heals while the gateway waits out Retry-After
  const healed = new Promise((r) => setTimeout(() => primary.fault("").then(r), 400));
  const r = await chat(gw, { model: "retry", messages: question("patience") });
  await healed;
  assert.equal(r.status, 200, r.text);
  assert.equal(r.headers.get("x-moongate-attempts"), "2");
  assert.ok(r.ms >= 950, `retried after ${r.ms} ms, before Retry-After: 1`);
  assert.deepEqual(await counts(), [2, 0]);
});

test("the breaker stops traffic to a dead provider and probes after its cool-down", async () => {
  const gw2 = await startGateway(writeConfig("breaker.lua", CONFIG("{ failures = 3, window = 30, cooldown = 1 }")),
    { MOCK_PRIMARY: primary.url, MOCK_SECONDARY: secondary.url });
  try {
    await resetCounts();
    await primary.fault("status=503");
    for (let i = 0; i < 3; i++) {
      const r = await chat(gw2, { model: "alone", messages: question("dead") });
      assert.equal(r.status, 502, r.text);
    }
    assert.deepEqual(await counts(), [3, 0]);
    // open: no call reaches primary; `alone` is refused, `default` goes straight to secondary
    const refused = await chat(gw2, { model: "alone", messages: question("dead") });
    assert.equal(refused.status, 503);
    assert.equal(refused.body.error.code, "circuit_open");
    assert.match(refused.headers.get("retry-after") || "", /^\d+$/);
    const routed = await chat(gw2, { model: "default", messages: question("around it") });
    assert.equal(routed.status, 200);
    assert.equal(routed.headers.get("x-moongate-provider"), "secondary");
    assert.equal(routed.headers.get("x-moongate-attempts"), "1");
    assert.deepEqual(await counts(), [3, 1]);
    const admin = await (await fetch(`${gw2.base}/admin/breakers`)).json();
    assert.equal(admin.providers.primary.state, "open");
    // after the cool-down one probe goes through; it succeeds and the circuit closes
    await primary.fault("");
    await new Promise((r) => setTimeout(r, 1100));
    const probe = await chat(gw2, { model: "alone", messages: question("alive?") });
    assert.equal(probe.status, 200, probe.text);
    assert.equal(probe.body.choices[0].message.content, "mock answer: alive?");
    assert.deepEqual(await counts(), [4, 1]);
    const after = await (await fetch(`${gw2.base}/admin/breakers`)).json();
    assert.equal(after.providers.primary.state, "closed");
    const again = await chat(gw2, { model: "default", messages: question("back") });
    assert.equal(again.headers.get("x-moongate-provider"), "primary");
    assert.deepEqual(await counts(), [5, 1]);
  } finally {
    await primary.fault("");
    await stopAll(gw2);
  }
});

test("a failed probe opens the circuit again", async () => {
  const gw2 = await startGateway(writeConfig("breaker2.lua", CONFIG("{ failures = 2, window = 30, cooldown = 1 }")),
    { MOCK_PRIMARY: primary.url, MOCK_SECONDARY: secondary.url });
  try {
    await resetCounts();
    await primary.fault("status=500");
    for (let i = 0; i < 2; i++) assert.equal((await chat(gw2, { model: "alone", messages: question("x") })).status, 502);
    assert.equal((await chat(gw2, { model: "alone", messages: question("x") })).status, 503);
    await new Promise((r) => setTimeout(r, 1100));
    assert.equal((await chat(gw2, { model: "alone", messages: question("x") })).status, 502);  // the probe
    assert.equal((await chat(gw2, { model: "alone", messages: question("x") })).status, 503);
    assert.deepEqual(await counts(), [3, 0]);
  } finally {
    await primary.fault("");
    await stopAll(gw2);
  }
});
