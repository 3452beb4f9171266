// Cached answers read by the official OpenAI SDK (npm `openai`): a stream served from the cache
// is a well-formed stream (deltas, finish_reason, usage, [DONE]) whether the cached answer was
// streamed or not, and a plain request is served from a streamed answer; the mock upstream's
// call counter proves the hits never reached it. Skips (77) without tests/node_modules/openai.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { HOME, requireBinary, startMock, startGateway, writeConfig, stopAll } from "./lib/mockenv.mjs";

requireBinary();
const sdkDir = path.join(HOME, "tests/node_modules/openai");
if (!fs.existsSync(sdkDir)) {
  console.log("skip: tests/node_modules/openai is not installed (scripts/setup)");
  process.exit(77);
}
const { default: OpenAI } = await import(path.join(sdkDir, "index.mjs"));

const CONFIG = `
return {
  providers = { up = { kind = "openai", base_url = os.getenv("MOCK_UP"), api_key = "sk-up" } },
  models = { default = { route = { { provider = "up", model = "mock-small", timeout = 3 } } } },
  auth = { keys = { ["sk-a"] = "team-a", ["sk-b"] = "team-b" } },
  cache = { exact = { ttl = 60 } },
}
`;

let up, gw, a, b;

before(async () => {
  up = await startMock("up", ["--api-key", "sk-up"]);
  gw = await startGateway(writeConfig("cache_sdk.lua", CONFIG), { MOCK_UP: up.url });
  a = new OpenAI({ baseURL: gw.url, apiKey: "sk-a", maxRetries: 0, timeout: 10000 });
  b = new OpenAI({ baseURL: gw.url, apiKey: "sk-b", maxRetries: 0, timeout: 10000 });
});

after(async () => { await stopAll(gw, up); });

// Read a whole SDK stream: the joined text, finish_reason, usage, chunk count, the header.
async function readStream(client, body) {
  const { data, response } = await client.chat.completions.create({ ...body, stream: true }).withResponse();
  let text = "", finish = null, usage = null, chunks = 0, ids = new Set();
  for await (const c of data) {
    chunks++;
    ids.add(c.id);
    assert.equal(c.object, "chat.completion.chunk");
    if (c.usage) usage = c.usage;
    const ch = c.choices[0];
    if (!ch) continue;
    if (ch.delta?.content) text += ch.delta.content;
    if (ch.finish_reason) finish = ch.finish_reason;
  }
  return { text, finish, usage, chunks, ids: [...ids], cache: response.headers.get("x-moongate-cache") };
}

const calls = async () => (await up.stats()).chat;

test("a streamed answer replays as a stream, and serves a plain request", async () => {
  const body = { model: "default", temperature: 0, stream_options: { include_usage: true },
                 messages: [{ role: "user", content: "Stream this once" }] };
  const n0 = await calls();
  const first = await readStream(a, body);
  assert.equal(first.cache, "miss");
  assert.equal(first.text, "mock answer: Stream this once");
  assert.equal(await calls(), n0 + 1);

  const again = await readStream(a, body);
  assert.equal(again.cache, "hit");
  assert.equal(again.text, first.text);
  assert.equal(again.finish, "stop");
  assert.deepEqual(again.usage, first.usage);
  assert.deepEqual(again.ids, first.ids);
  assert.equal(again.chunks, 4);    // role, content, finish, usage

  const plain = await a.chat.completions.create({ model: "default", temperature: 0,
    messages: [{ role: "user", content: "Stream this once" }] }).withResponse();
  assert.equal(plain.response.headers.get("x-moongate-cache"), "hit");
  assert.equal(plain.data.object, "chat.completion");
  assert.equal(plain.data.choices[0].message.content, first.text);
  assert.equal(plain.data.choices[0].finish_reason, "stop");
  assert.equal(plain.data.usage.total_tokens, first.usage.total_tokens);
  assert.equal(await calls(), n0 + 1);
});

test("a plain answer replays as a stream without usage unless asked", async () => {
  const msgs = [{ role: "user", content: "Plain first" }];
  const n0 = await calls();
  const plain = await a.chat.completions.create({ model: "default", seed: 3, messages: msgs }).withResponse();
  assert.equal(plain.response.headers.get("x-moongate-cache"), "miss");
  const s = await readStream(a, { model: "default", seed: 3, messages: msgs });
  assert.equal(s.cache, "hit");
  assert.equal(s.text, plain.data.choices[0].message.content);
  assert.equal(s.finish, "stop");
  assert.equal(s.usage, null);
  assert.equal(await calls(), n0 + 1);
});

test("tenant B never gets tenant A's cached stream", async () => {
  const body = { model: "default", temperature: 0, messages: [{ role: "user", content: "Whose answer" }] };
  const sa = await readStream(a, body);
  const n0 = await calls();
  const sb = await readStream(b, body);
  assert.equal(sb.cache, "miss");
  assert.notDeepEqual(sb.ids, sa.ids);
  assert.equal(await calls(), n0 + 1);
});
