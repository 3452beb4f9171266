// The official OpenAI SDK (npm `openai`) as the client of moongate's gateway in front of two
// `moongate mock` upstreams: chat, streams, tool calls, embeddings, and every error status
// with its exact OpenAI-shaped body. Skips (77) when tests/node_modules/openai is absent.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { HOME, requireBinary, startMock, startGateway, writeConfig, stop, stopAll } from "./lib/mockenv.mjs";

requireBinary();
const sdkDir = path.join(HOME, "tests/node_modules/openai");
if (!fs.existsSync(sdkDir)) {
  console.log("skip: tests/node_modules/openai is not installed (scripts/setup)");
  process.exit(77);
}
const { default: OpenAI } = await import(path.join(sdkDir, "index.mjs"));

const CONFIG = `
local P, S = os.getenv("MOCK_PRIMARY"), os.getenv("MOCK_SECONDARY")
return {
  providers = {
    primary = { kind = "openai", base_url = P, api_key = "sk-primary" },
    secondary = { kind = "openai", base_url = S, api_key = "sk-secondary" },
    lonely = { kind = "openai", base_url = S, api_key = "sk-secondary" },
    claude = { kind = "anthropic", base_url = P:gsub("/v1$", ""), api_key = "sk-primary" },
  },
  models = {
    default = { route = { { provider = "primary", model = "mock-small", timeout = 3 },
                          { provider = "secondary", model = "mock-large", timeout = 3 } }, deadline = 10 },
    embed = { route = { { provider = "primary", model = "mock-embed", timeout = 3 } }, deadline = 10 },
    lonely = { route = { { provider = "lonely", model = "mock-small", timeout = 5 } }, deadline = 1 },
    claude = { route = { { provider = "claude", model = "claude-mock", timeout = 3 } }, deadline = 10 },
  },
  retry = { max_attempts = 3, backoff = 0.01, backoff_max = 0.02, retry_after_max = 0 },
  breaker = { failures = 2, window = 30, cooldown = 30 },
  auth = { keys = { ["sk-client"] = "team-a" } },
}
`;

let primary, secondary, gw, client, raw;

before(async () => {
  primary = await startMock("primary", ["--api-key", "sk-primary"]);
  secondary = await startMock("secondary", ["--api-key", "sk-secondary"]);
  gw = await startGateway(writeConfig("sdk.lua", CONFIG),
    { MOCK_PRIMARY: primary.url, MOCK_SECONDARY: secondary.url });
  client = new OpenAI({ baseURL: gw.url, apiKey: "sk-client", maxRetries: 0, timeout: 10000 });
  raw = (body, key = "sk-client") => fetch(`${gw.url}/chat/completions`, {
    method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
});

after(async () => {
  await stopAll(gw, primary, secondary);
});

const USER = [{ role: "user", content: "What is moongate?" }];

test("chat completion: the upstream's answer and moongate's headers", async () => {
  await primary.reset();
  const { data, response } = await client.chat.completions
    .create({ model: "default", messages: USER, temperature: 0.2 }).withResponse();
  assert.equal(data.object, "chat.completion");
  assert.equal(data.model, "mock-small");
  assert.equal(data.choices.length, 1);
  assert.deepEqual(data.choices[0].message.content, "mock answer: What is moongate?");
  assert.equal(data.choices[0].message.role, "assistant");
  assert.equal(data.choices[0].finish_reason, "stop");
  assert.equal(data.usage.total_tokens, data.usage.prompt_tokens + data.usage.completion_tokens);
  // "mock answer: What is moongate?" is 9 tokens in o200k_base (tiktoken agrees)
  assert.equal(data.usage.completion_tokens, 9);
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("x-moongate-provider"), "primary");
  assert.equal(response.headers.get("x-moongate-model"), "mock-small");
  assert.equal(response.headers.get("x-moongate-attempts"), "1");
  assert.match(response.headers.get("x-request-id") || "", /^[\w.-]{8,}$/);
  assert.match(response.headers.get("x-moongate-overhead-ms") || "", /^\d+(\.\d+)?$/);
  // what reached the upstream: the provider's own key, the tier's model, the field passed through
  const last = await primary.last();
  assert.equal(last.headers.authorization, "Bearer sk-primary");
  const sent = JSON.parse(last.body);
  assert.equal(sent.model, "mock-small");
  assert.equal(sent.temperature, 0.2);
  assert.deepEqual(sent.messages, USER);
  // a response field moongate does not use arrives untouched
  assert.equal(data.service_tier, "default");
});

test("headers: x-* and openai-* go upstream; keys, cookies and hop-by-hop headers do not", async () => {
  const r = await fetch(`${gw.url}/chat/completions`, {
    method: "POST",
    headers: {
      "content-type": "application/json", authorization: "Bearer sk-client",
      "x-trace-tag": "abc", "openai-organization": "org-1", "x-api-key": "sk-leak",
      cookie: "session=leak", "proxy-authorization": "Basic leak", "x-forwarded-host": "evil",
    },
    body: JSON.stringify({ model: "default", messages: USER }),
  });
  assert.equal(r.status, 200);
  const h = (await primary.last()).headers;
  assert.equal(h["x-trace-tag"], "abc");
  assert.equal(h["openai-organization"], "org-1");
  assert.equal(h.authorization, "Bearer sk-primary");
  for (const k of ["x-api-key", "cookie", "proxy-authorization", "x-forwarded-host"]) {
    assert.equal(h[k], undefined, `${k} went upstream`);
  }
});

test("stream: deltas join into the answer, ending cleanly", async () => {
  const stream = await client.chat.completions.create({ model: "default", messages: USER, stream: true });
  let text = "", chunks = 0, finish = null, usage = null;
  for await (const c of stream) {
    chunks++;
    if (c.usage) usage = c.usage;
    const ch = c.choices[0];
    if (!ch) continue;
    if (ch.delta?.content) text += ch.delta.content;
    if (ch.finish_reason) finish = ch.finish_reason;
  }
  assert.equal(text, "mock answer: What is moongate?");
  assert.equal(finish, "stop");
  assert.ok(chunks >= 5, `${chunks} chunks`);
  // the client did not ask for usage: moongate asked upstream for it and removed it again
  assert.equal(usage, null);
  assert.deepEqual(JSON.parse((await primary.last()).body).stream_options, { include_usage: true });
});

test("stream with include_usage: the usage chunk comes last", async () => {
  const stream = await client.chat.completions.create({
    model: "default", messages: USER, stream: true, stream_options: { include_usage: true } });
  const all = [];
  for await (const c of stream) all.push(c);
  const lastChunk = all.at(-1);
  assert.deepEqual(lastChunk.choices, []);
  assert.equal(lastChunk.usage.completion_tokens, 9);
  assert.equal(lastChunk.usage.total_tokens, lastChunk.usage.prompt_tokens + 9);
});

test("stream helper: runner's finalContent", async () => {
  const runner = client.chat.completions.stream({ model: "default", messages: USER });
  assert.equal(await runner.finalContent(), "mock answer: What is moongate?");
});

const TOOLS = [{
  type: "function",
  function: {
    name: "get_weather", description: "Current weather",
    parameters: { type: "object", properties: { city: { type: "string" }, days: { type: "integer" } },
      required: ["city"] },
  },
}];

test("tool calls: the model calls the tool, then answers with its result", async () => {
  const messages = [{ role: "user", content: "weather in Paris" }];
  const r1 = await client.chat.completions.create({ model: "default", messages, tools: TOOLS });
  const msg = r1.choices[0].message;
  assert.equal(r1.choices[0].finish_reason, "tool_calls");
  assert.equal(msg.content, null);
  assert.equal(msg.tool_calls.length, 1);
  assert.equal(msg.tool_calls[0].type, "function");
  assert.equal(msg.tool_calls[0].function.name, "get_weather");
  assert.deepEqual(JSON.parse(msg.tool_calls[0].function.arguments), { city: "weather in Paris", days: 1 });
  messages.push(msg, { role: "tool", tool_call_id: msg.tool_calls[0].id, content: "18C and sunny" });
  const r2 = await client.chat.completions.create({ model: "default", messages, tools: TOOLS });
  assert.equal(r2.choices[0].finish_reason, "stop");
  assert.equal(r2.choices[0].message.content, "mock answer: weather in Paris [tool: 18C and sunny]");
});

// One streamed tool call put back together from its deltas: id, name, arguments, finish reason.
async function collectToolCall(stream) {
  let name = "", args = "", id = "", finish = null;
  for await (const c of stream) {
    const ch = c.choices[0];
    if (!ch) continue;
    for (const tc of ch.delta?.tool_calls || []) {
      if (tc.id) id = tc.id;
      if (tc.function?.name) name += tc.function.name;
      if (tc.function?.arguments) args += tc.function.arguments;
    }
    if (ch.finish_reason) finish = ch.finish_reason;
  }
  return { name, args, id, finish };
}

test("tool calls streamed: the arguments arrive in pieces", async () => {
  const stream = await client.chat.completions.create({
    model: "default", messages: [{ role: "user", content: "weather in Oslo" }], tools: TOOLS, stream: true });
  const { name, args, id, finish } = await collectToolCall(stream);
  assert.equal(name, "get_weather");
  assert.match(id, /^call_/);
  assert.deepEqual(JSON.parse(args), { city: "weather in Oslo", days: 1 });
  assert.equal(finish, "tool_calls");
});

test("embeddings: base64 (the SDK's default) and float agree", async () => {
  const a = await client.embeddings.create({ model: "embed", input: ["red apple", "blue sky"] });
  assert.equal(a.object, "list");
  assert.equal(a.data.length, 2);
  assert.equal(a.data[0].embedding.length, 64);
  const norm = Math.hypot(...a.data[0].embedding);
  assert.ok(Math.abs(norm - 1) < 1e-5, `norm ${norm}`);
  const b = await client.embeddings.create({ model: "embed", input: "red apple", encoding_format: "float", dimensions: 64 });
  assert.deepEqual(b.data[0].embedding, a.data[0].embedding);
  assert.equal(b.model, "mock-embed");
  assert.ok(b.usage.prompt_tokens > 0);
});

test("models: the configured names", async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.deepEqual(ids.sort(), ["claude", "default", "embed", "lonely"]);
});

// Through the anthropic adapter: the mock answers /v1/messages, the SDK sees OpenAI's shapes.
test("anthropic provider: chat in OpenAI's shape", async () => {
  const { data, response } = await client.chat.completions.create({ model: "claude",
    messages: [{ role: "system", content: "be brief" }, ...USER], max_tokens: 100 }).withResponse();
  assert.equal(data.object, "chat.completion");
  assert.equal(data.choices[0].message.content, "mock answer: What is moongate?");
  assert.equal(data.choices[0].finish_reason, "stop");
  assert.equal(data.usage.completion_tokens, 9);
  assert.equal(response.headers.get("x-moongate-provider"), "claude");
  const last = await primary.last();
  assert.equal(last.path, "/v1/messages");
  assert.equal(last.headers["x-api-key"], "sk-primary");
  assert.equal(last.headers.authorization, undefined);
  const sent = JSON.parse(last.body);
  assert.equal(sent.model, "claude-mock");
  assert.equal(sent.system, "be brief");
  assert.equal(sent.max_tokens, 100);
});

test("anthropic provider: stream in OpenAI's chunks", async () => {
  const stream = await client.chat.completions.create({ model: "claude", messages: USER, stream: true,
    stream_options: { include_usage: true } });
  let text = "", finish = null, usage = null;
  for await (const c of stream) {
    if (c.usage) usage = c.usage;
    const ch = c.choices[0];
    if (ch?.delta?.content) text += ch.delta.content;
    if (ch?.finish_reason) finish = ch.finish_reason;
  }
  assert.equal(text, "mock answer: What is moongate?");
  assert.equal(finish, "stop");
  assert.equal(usage?.completion_tokens, 9);
});

test("anthropic provider: tool use becomes tool_calls, and tool results go back", async () => {
  const messages = [{ role: "user", content: "weather in Rome" }];
  const r1 = await client.chat.completions.create({ model: "claude", messages, tools: TOOLS });
  const msg = r1.choices[0].message;
  assert.equal(r1.choices[0].finish_reason, "tool_calls");
  assert.equal(msg.tool_calls[0].function.name, "get_weather");
  assert.deepEqual(JSON.parse(msg.tool_calls[0].function.arguments), { city: "weather in Rome", days: 1 });
  messages.push(msg, { role: "tool", tool_call_id: msg.tool_calls[0].id, content: "25C" });
  const r2 = await client.chat.completions.create({ model: "claude", messages, tools: TOOLS });
  assert.equal(r2.choices[0].message.content, "mock answer: weather in Rome [tool: 25C]");
});

test("anthropic provider: streamed tool use arrives as tool_call deltas", async () => {
  const stream = await client.chat.completions.create({
    model: "claude", messages: [{ role: "user", content: "weather in Lima" }], tools: TOOLS, stream: true });
  const { name, args, id, finish } = await collectToolCall(stream);
  assert.equal(name, "get_weather");
  assert.match(id, /^toolu_mock_/);
  assert.deepEqual(JSON.parse(args), { city: "weather in Lima", days: 1 });
  assert.equal(finish, "tool_calls");
});

// The SDK's error for a call: its class name, status, error member and headers.
async function sdkError(p) {
  try {
    await p;
  } catch (e) {
    return e;
  }
  assert.fail("the call succeeded");
}

function assertShape(e, status, type, code, message) {
  assert.equal(e.status, status, `${e.status}: ${e.message}`);
  assert.equal(e.error.type, type);
  assert.equal(e.error.code, code);
  if (message instanceof RegExp) assert.match(e.error.message, message);
  else assert.equal(e.error.message, message);
}

test("400: malformed JSON and a missing field, in OpenAI's shape", async () => {
  const r = await raw("{not json");
  assert.equal(r.status, 400);
  assert.equal(r.headers.get("content-type"), "application/json");
  const body = await r.json();
  assert.deepEqual(Object.keys(body), ["error"]);
  assert.equal(body.error.type, "invalid_request_error");
  assert.equal(body.error.code, "invalid_json");
  assert.match(body.error.message, /^the request body must be a JSON object/);
  const e = await sdkError(client.chat.completions.create({ model: "default", messages: [] }));
  assert.equal(e.constructor.name, "BadRequestError");
  assertShape(e, 400, "invalid_request_error", "invalid_request", "messages must be a non-empty array");
});

test("401: a missing or unknown key", async () => {
  const bad = new OpenAI({ baseURL: gw.url, apiKey: "sk-wrong", maxRetries: 0 });
  const e = await sdkError(bad.chat.completions.create({ model: "default", messages: USER }));
  assert.equal(e.constructor.name, "AuthenticationError");
  assertShape(e, 401, "authentication_error", "invalid_api_key", /API key/);
});

test("404: an unknown model", async () => {
  const e = await sdkError(client.chat.completions.create({ model: "gpt-nope", messages: USER }));
  assert.equal(e.constructor.name, "NotFoundError");
  assertShape(e, 404, "invalid_request_error", "model_not_found", "the model 'gpt-nope' does not exist");
});

test("429: every tier rate limited, Retry-After passed on", async () => {
  await secondary.reset();
  const e = await sdkError(client.chat.completions.create(
    { model: "lonely", messages: USER, mock: { status: 429, retry_after: 7 } }));
  assert.equal(e.constructor.name, "RateLimitError");
  assertShape(e, 429, "rate_limit_error", "rate_limited", /./);
  assert.equal(e.headers.get("retry-after"), "7");
  assert.equal((await secondary.stats()).requests, 1);
});

test("502: every tier failed", async () => {
  const e = await sdkError(client.chat.completions.create(
    { model: "lonely", messages: USER, mock: { status: 500 } }));
  assert.equal(e.constructor.name, "InternalServerError");
  assertShape(e, 502, "upstream_error", "upstream_error", /./);
});

test("503: the only provider's circuit is open", async () => {
  // breaker.failures = 2: the 429 and the 500 above opened it
  await secondary.reset();
  const e = await sdkError(client.chat.completions.create({ model: "lonely", messages: USER }));
  assert.equal(e.constructor.name, "InternalServerError");
  assertShape(e, 503, "service_unavailable", "circuit_open", /./);
  assert.equal((await secondary.stats()).requests, 0, "no call reached the open circuit");
});

// A fresh gateway each (the breaker of `lonely` is open in the one above); the upstream answers
// after 3 s, the model's deadline is 1 s and its tier's timeout 5 s.
async function deadlineError() {
  const gw2 = await startGateway(writeConfig("sdk2.lua", CONFIG),
    { MOCK_PRIMARY: primary.url, MOCK_SECONDARY: secondary.url });
  try {
    const c2 = new OpenAI({ baseURL: gw2.url, apiKey: "sk-client", maxRetries: 0 });
    const t0 = performance.now();
    const e = await sdkError(c2.chat.completions.create(
      { model: "lonely", messages: USER, mock: { latency: 3000 } }));
    return { e, ms: performance.now() - t0 };
  } finally {
    await stopAll(gw2);
  }
}

test("504: the deadline passes before the first byte", async () => {
  const { e, ms } = await deadlineError();
  assert.equal(e.status, 504);
  assert.equal(e.error.type, "timeout_error");
  assert.ok(ms >= 900 && ms < 2500, `answered after ${ms} ms (deadline 1 s)`);
});

// the attempt's own timeout (5 s) is cut to the deadline's remaining second: that is the
// deadline's doing, whatever instant the timer fires at
test("504 says deadline_exceeded when the request deadline cut the attempt", async () => {
  const { e } = await deadlineError();
  assertShape(e, 504, "timeout_error", "deadline_exceeded", "no answer within the request deadline");
});
