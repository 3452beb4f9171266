// A client tracing with the OpenTelemetry JS SDK calls the gateway (a fallback between two
// `moongate mock` upstreams); moongate's spans, exported over OTLP/HTTP JSON to a collector
// stand-in on loopback, decode against the official OTLP protobuf definitions (the generated
// root shipped in npm @opentelemetry/otlp-transformer), carry the client's trace id and hang from
// the client's span. With the collector slow, then gone, requests keep their latency and the
// drop counter rises. Skips (77) when the npm packages are absent.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { createRequire } from "node:module";
import { HOME, requireBinary, startMock, startGateway, writeConfig, stopAll, chat, freePort, tmp } from "./lib/mockenv.mjs";

requireBinary();
const modules = path.join(HOME, "tests/node_modules");
for (const p of ["@opentelemetry/api", "@opentelemetry/sdk-trace-base", "@opentelemetry/core", "otlp-proto-defs"]) {
  if (!fs.existsSync(path.join(modules, p))) {
    console.log(`skip: tests/node_modules/${p} is not installed (scripts/setup)`);
    process.exit(77);
  }
}
const require = createRequire(path.join(HOME, "tests/package.json"));
const api = require("@opentelemetry/api");
const { BasicTracerProvider } = require("@opentelemetry/sdk-trace-base");
const { W3CTraceContextPropagator } = require("@opentelemetry/core");
const root = require("otlp-proto-defs/build/src/generated/root.js");
const ExportTraceServiceRequest = root.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The collector stand-in: keeps every body POSTed to /v1/traces; `mode` "ok" answers 200,
// "slow" holds the request without answering.
function collector(port) {
  const c = { bodies: [], mode: "ok", held: [] };
  c.server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (d) => { body += d; });
    req.on("end", () => {
      if (req.url !== "/v1/traces" || req.method !== "POST") { res.writeHead(404).end(); return; }
      c.bodies.push({ type: req.headers["content-type"], body });
      if (c.mode === "slow") { c.held.push(res); return; }
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  c.listen = () => new Promise((r) => c.server.listen(port, "127.0.0.1", r));
  c.close = () => new Promise((r) => {
    for (const res of c.held) res.destroy();
    c.server.closeAllConnections();
    c.server.close(r);
  });
  c.spans = () => c.bodies.flatMap(({ body }) => JSON.parse(body).resourceSpans
    .flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans)));
  return c;
}

// OTLP JSON -> the protobuf JSON mapping: trace and span ids are hex in OTLP JSON, base64 in proto3's.
function toProtoJson(v, key) {
  if (Array.isArray(v)) return v.map((x) => toProtoJson(x));
  if (v && typeof v === "object") {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toProtoJson(x, k)]));
  }
  if (typeof v === "string" && ["traceId", "spanId", "parentSpanId"].includes(key)) {
    assert.match(v, key === "traceId" ? /^[0-9a-f]{32}$/ : /^[0-9a-f]{16}$/, `${key} is lowercase hex`);
    return Buffer.from(v, "hex").toString("base64");
  }
  return v;
}

const CONFIG = `
return {
  providers = {
    primary = { kind = "mock", base_url = os.getenv("MOCK_PRIMARY") },
    secondary = { kind = "mock", base_url = os.getenv("MOCK_SECONDARY") },
  },
  models = {
    default = { route = { { provider = "primary", model = "m1", timeout = 2 },
                          { provider = "secondary", model = "m2", timeout = 2 } }, deadline = 5 },
  },
  breaker = { failures = 1000 },
  trace = { otlp = { endpoint = os.getenv("COLLECTOR"), timeout = 0.5 }, interval = 0.1, export_queue = 40,
            store = os.getenv("STORE"), service = "moongate-e2e" },
}
`;

let primary, secondary, gw, col, tracer, colPort;
const Q = { model: "default", messages: [{ role: "user", content: "hello there" }] };

before(async () => {
  primary = await startMock("primary");
  secondary = await startMock("secondary");
  colPort = await freePort();
  col = collector(colPort);
  await col.listen();
  gw = await startGateway(writeConfig("otel.lua", CONFIG), {
    MOCK_PRIMARY: primary.url, MOCK_SECONDARY: secondary.url,
    COLLECTOR: `http://127.0.0.1:${colPort}/v1/traces`, STORE: path.join(tmp(), "traces.db"),
  });
  const provider = new BasicTracerProvider();
  tracer = provider.getTracer("otel-e2e");
  for (const m of [primary, secondary]) {   // the mocks' first answer loads their tokenizer
    await fetch(`${m.url}/chat/completions`, { method: "POST", body: JSON.stringify(Q) });
  }
});

after(async () => {
  await stopAll(gw, primary, secondary);
  await col.close().catch(() => {});
});

// One traced call (to gateway g): the client's span, its headers injected by the W3C propagator.
async function tracedCall(headers = {}, g = gw) {
  const span = tracer.startSpan("client call", { kind: api.SpanKind.CLIENT });
  const carrier = {};
  new W3CTraceContextPropagator().inject(api.trace.setSpan(api.context.active(), span), carrier,
    api.defaultTextMapSetter);
  const r = await chat(g, Q, { ...carrier, ...headers });
  span.end();
  return { r, ctx: span.spanContext(), carrier };
}

async function spansOf(traceId, n) {
  for (let i = 0; i < 100; i++) {
    const got = col.spans().filter((s) => s.traceId === traceId);
    if (got.length >= n) return got;
    await sleep(50);
  }
  return col.spans().filter((s) => s.traceId === traceId);
}

async function metric(name) {
  const text = await (await fetch(`${gw.base}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(name + " "));
  return line ? Number(line.split(" ").pop()) : 0;
}

test("moongate's spans join the client's trace, hanging from the client's span", async () => {
  const { r, ctx, carrier } = await tracedCall({ tracestate: "vendor=1", "x-mock-fault": "status=503,target=primary" });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("x-moongate-provider"), "secondary");
  assert.match(carrier.traceparent, new RegExp(`^00-${ctx.traceId}-${ctx.spanId}-01$`));
  const spans = await spansOf(ctx.traceId, 4);
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  const rootSpan = spans.find((s) => !byId.has(s.parentSpanId));
  assert.equal(rootSpan.parentSpanId, ctx.spanId, "the root's parent is the client's span");
  assert.equal(rootSpan.kind, 2, "SERVER");
  const tree = (s, depth = 0) => [`${"  ".repeat(depth)}${s.name}`, ...spans
    .filter((c) => c.parentSpanId === s.spanId)
    .sort((a, b) => (BigInt(a.startTimeUnixNano) < BigInt(b.startTimeUnixNano) ? -1 : 1))
    .flatMap((c) => tree(c, depth + 1))];
  assert.deepEqual(tree(rootSpan), [
    "POST /v1/chat/completions",
    "  route",
    "  chat m1",
    "  chat m2",
  ]);
  const attempt = spans.find((s) => s.name === "chat m2");
  // the upstream that answered got a traceparent whose parent is its attempt span
  const last = await secondary.last();
  assert.equal(last.headers.traceparent, `00-${ctx.traceId}-${attempt.spanId}-01`);
  assert.equal(last.headers.tracestate, "vendor=1");
  const failed = spans.find((s) => s.name === "chat m1");
  assert.deepEqual(failed.status, { code: 2, message: "mock fault: status 503" });
});

test("the exported OTLP JSON decodes against the official protobuf definitions", async () => {
  assert.ok(col.bodies.length > 0);
  for (const { type, body } of col.bodies) {
    assert.equal(type, "application/json");
    const obj = toProtoJson(JSON.parse(body));
    const msg = ExportTraceServiceRequest.fromObject(obj);
    const decoded = ExportTraceServiceRequest.decode(ExportTraceServiceRequest.encode(msg).finish());
    // a field the definitions do not have, or of the wrong type, would not survive the round trip
    const back = ExportTraceServiceRequest.toObject(decoded, { longs: String, enums: Number, bytes: String });
    assert.deepEqual(back, obj);
    const res = Object.fromEntries(back.resourceSpans[0].resource.attributes.map((a) => [a.key, a.value.stringValue]));
    assert.equal(res["service.name"], "moongate-e2e");
    assert.equal(back.resourceSpans[0].scopeSpans[0].scope.name, "moongate");
  }
});

test("with the trace store off, spans still reach the collector", async () => {
  const noStore = await startGateway(writeConfig("otel-nostore.lua", CONFIG.replace('store = os.getenv("STORE")', "store = false")), {
    MOCK_PRIMARY: primary.url, MOCK_SECONDARY: secondary.url, COLLECTOR: `http://127.0.0.1:${colPort}/v1/traces`,
  });
  try {
    const { r, ctx } = await tracedCall({}, noStore);
    assert.equal(r.status, 200);
    const spans = await spansOf(ctx.traceId, 3);
    assert.deepEqual(spans.map((s) => s.name).sort(), ["POST /v1/chat/completions", "chat m1", "route"]);
  } finally {
    await stopAll(noStore);
  }
});

// Sequential calls, the median of their latency in ms.
async function median(n) {
  const ms = [];
  for (let i = 0; i < n; i++) {
    const { r } = await tracedCall();
    assert.equal(r.status, 200);
    ms.push(r.ms);
  }
  ms.sort((a, b) => a - b);
  return ms[Math.floor(n / 2)];
}

test("a slow collector, then none: spans are dropped and counted, requests keep their latency", async () => {
  const base = await median(30);
  col.mode = "slow";
  const busy0 = await metric('moongate_spans_dropped_total{reason="exporter_busy"}');
  const slow = await median(30);
  await sleep(300);
  assert.ok(await metric('moongate_spans_dropped_total{reason="exporter_busy"}') > busy0,
    "spans that find the buffer for the collector full are dropped");
  await col.close();
  await sleep(600);   // the held export times out (0.5 s)
  const failed0 = await metric('moongate_spans_dropped_total{reason="export_failed"}');
  const down = await median(30);
  await sleep(400);
  assert.ok(await metric('moongate_spans_dropped_total{reason="export_failed"}') > failed0,
    "spans the collector could not take are counted");
  // 2-core shared machine: a generous bound that still fails if an export ever blocks a request
  for (const [what, ms] of [["slow", slow], ["down", down]]) {
    assert.ok(ms < base + 10, `median with the collector ${what}: ${ms.toFixed(2)} ms vs ${base.toFixed(2)} ms`);
  }
  const health = await chat(gw, Q);
  assert.equal(health.status, 200);
});
