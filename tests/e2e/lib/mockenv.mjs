// Shared by the gateway's end-to-end tests: start `moongate mock` servers and a `moongate serve`
// gateway on free loopback ports, talk to the mocks' /mock/* routes, stop everything at exit.
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";

export const MOONGATE = process.env.MOONGATE;
export const HOME = process.env.MOONGATE_HOME || path.resolve(import.meta.dirname, "../../..");

const children = new Set();
let tmpdir;

function killAll() {
  for (const c of children) {
    try { c.kill("SIGKILL"); } catch { /* gone */ }
  }
  children.clear();
}
process.on("exit", killAll);
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => { killAll(); process.exit(1); });

// Exit 77 (ctest's skip) unless MOONGATE names the binary.
export function requireBinary() {
  if (!MOONGATE || !fs.existsSync(MOONGATE)) {
    console.log("skip: MOONGATE is not set to the moongate binary");
    process.exit(77);
  }
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export function tmp() {
  if (!tmpdir) {
    tmpdir = fs.mkdtempSync(path.join(os.tmpdir(), "moongate-e2e-"));
    process.on("exit", () => fs.rmSync(tmpdir, { recursive: true, force: true }));
  }
  return tmpdir;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitHttp(url, child, log) {
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) break;
    try {
      await fetch(url, { signal: AbortSignal.timeout(1000) });
      return;
    } catch { await sleep(25); }
  }
  throw new Error(`${url} did not come up (exit ${child.exitCode}):\n${log()}`);
}

function start(args, env, url) {
  let out = "";
  const child = spawn(MOONGATE, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  child.stdout.on("data", (d) => { out += d; });
  child.stderr.on("data", (d) => { out += d; });
  children.add(child);
  child.on("exit", () => children.delete(child));
  child.log = () => out;
  return waitHttp(url, child, () => out).then(() => child);
}

// SIGTERM, then SIGKILL after 5 s; resolves to the exit code (a signal name if killed).
export async function stop(child) {
  if (!child) return null;
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode ?? child.signalCode;
  const done = new Promise((r) => child.once("exit", (code, sig) => r(code ?? sig)));
  child.kill("SIGTERM");
  const t = setTimeout(() => child.kill("SIGKILL"), 5000);
  const code = await done;
  clearTimeout(t);
  return code;
}

// Stop every process given; each must exit 0 (under ASan a leak or an error shows here).
export async function stopAll(...procs) {
  const codes = [];
  for (const p of procs) if (p) codes.push([p.name || "gateway", await stop(p.child)]);
  const bad = codes.filter(([, c]) => c !== 0);
  if (bad.length) {
    const logs = procs.filter((p) => p && p.child.exitCode !== 0).map((p) => p.child.log().slice(-2000));
    throw new Error(`unclean exit: ${JSON.stringify(bad)}\n${logs.join("\n---\n")}`);
  }
}

// A running `moongate mock`: { url (…/v1), base, stats(), reset(), fault(spec), last(), stop() }.
export async function startMock(name, extra = []) {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const child = await start(["mock", "--listen", `127.0.0.1:${port}`, "--name", name, ...extra], {},
    `${base}/mock/stats`);
  const json = async (p, init) => (await fetch(base + p, init)).json();
  return {
    name, port, base, url: `${base}/v1`, child,
    stats: () => json("/mock/stats"),
    reset: () => json("/mock/reset", { method: "POST" }),
    fault: (spec) => json("/mock/fault", { method: "POST", body: spec || "" }),
    last: () => json("/mock/last"),
    stop: () => stop(child),
  };
}

// A running gateway: `moongate serve --listen … CONFIG` with env (e.g. the mocks' URLs).
export async function startGateway(config, env = {}, extra = []) {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const child = await start(["serve", "--listen", `127.0.0.1:${port}`, ...extra, config], env,
    `${base}/health`);
  return { port, base, url: `${base}/v1`, child, stop: () => stop(child) };
}

// Write a gateway config (Lua source) into the test's temporary folder; returns its path.
export function writeConfig(name, lua) {
  const p = path.join(tmp(), name);
  fs.writeFileSync(p, lua);
  return p;
}

// POST a chat completion with fetch: { status, headers, body (parsed when JSON), text, ms }.
export async function chat(gw, body, headers = {}) {
  const t0 = performance.now();
  const r = await fetch(`${gw.base}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await r.text();
  let parsed;
  try { parsed = JSON.parse(text); } catch { parsed = undefined; }
  return { status: r.status, headers: r.headers, body: parsed, text, ms: performance.now() - t0 };
}

// The data events of an SSE body: parsed JSON, or the string "[DONE]".
export function sseEvents(text) {
  const out = [];
  for (const block of text.split("\n\n")) {
    for (const line of block.split("\n")) {
      if (!line.startsWith("data: ")) continue;
      const d = line.slice(6);
      out.push(d === "[DONE]" ? d : JSON.parse(d));
    }
  }
  return out;
}
