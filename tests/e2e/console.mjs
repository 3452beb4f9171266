// The web console (GET /console) in Debian's headless Chromium, against a gateway with auth in
// front of two `moongate mock` upstreams and the extractive provider: a wrong admin key gets the
// message and no data; the playground streams the mock's exact answer and shows the route; a 503
// on the primary falls back, and the request's page shows both attempts; a breaker opened by
// failures is reset from the UI. Every page is screenshotted and none logs a console error.
// Then the static route at the HTTP level: types, ETag, traversal, 404s, admin = false.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { HOME, requireBinary, startMock, startGateway, writeConfig, stopAll, chat, tmp } from "./lib/mockenv.mjs";
import { launch, openPage, screenshot, screenshotDir } from "./lib/browser.mjs";

requireBinary();

const ADMIN = "sk-console-admin";
const TENANT = "sk-team-a";
const CONFIG = (extra = "") => `
return {
  providers = {
    primary = { kind = "mock", base_url = os.getenv("MOCK_PRIMARY") },
    secondary = { kind = "mock", base_url = os.getenv("MOCK_SECONDARY") },
    docs = { kind = "extractive" },
  },
  models = {
    default = { route = { { provider = "primary", model = "mock-small", timeout = 2 },
                          { provider = "secondary", model = "mock-large", timeout = 2 } }, deadline = 5 },
    docs = { route = { { provider = "docs", timeout = 5 } } },
  },
  auth = { keys = { ["${TENANT}"] = "team-a" }, admin_key = "${ADMIN}" },
  breaker = { failures = 2, window = 60, cooldown = 60 },
  route_policy = "route.lua",
  trace = { store = ${JSON.stringify(path.join(tmp(), "console-traces.db"))}, interval = 0.05 },
  ${extra}
}
`;

let primary, secondary, gw, off, browser, shots;
// the routing policy, a copy the test edits to see the reload on the units page
const POLICY = path.join(tmp(), "route.lua");
const POLICY_SRC = fs.readFileSync(path.join(HOME, "pipelines/route.lua"), "utf8");

before(async () => {
  fs.writeFileSync(POLICY, POLICY_SRC);
  primary = await startMock("primary");
  secondary = await startMock("secondary");
  const env = { MOCK_PRIMARY: primary.url, MOCK_SECONDARY: secondary.url };
  gw = await startGateway(writeConfig("console.lua", CONFIG()), env);
  off = await startGateway(writeConfig("console-off.lua", CONFIG("admin = false,")), env);
  browser = await launch();
  shots = screenshotDir();
});

after(async () => {
  if (browser) await browser.close();
  await stopAll(gw, off, primary, secondary);
});

const adminGet = async (p) => (await fetch(gw.base + p, { headers: { authorization: `Bearer ${ADMIN}` } })).json();
const text = (page, sel) => page.$eval(sel, (e) => e.textContent);
// The cells of a table's body rows, as text.
const cells = (page, sel) => page.$$eval(`${sel} tbody tr`, (rows) => rows.map((r) => [...r.cells].map((c) => c.textContent)));

async function signIn(page, key) {
  await page.goto(`${gw.base}/console`, { waitUntil: "networkidle0" });
  await page.waitForSelector("#admin-key");
  await page.type("#admin-key", key);
  await page.click("#key-form button[type=submit]");
}

// Send a chat from the playground and wait for the stream to end.
async function ask(page, model, question, system = "") {
  await page.select("#model", model);
  await page.$eval("#system", (e, v) => { e.value = v; }, system);
  await page.$eval("#prompt", (e, v) => { e.value = v; }, question);
  await page.click("#send");
  await page.waitForFunction(() => document.querySelector("#attempts table, #attempts p"), { timeout: 10000 });
}

test("a wrong admin key gets a clear message and no data", async () => {
  const { page, errors } = await openPage(browser);
  await signIn(page, "sk-wrong");
  await page.waitForSelector("#auth-error");
  assert.equal(await text(page, "#auth-error"),
    "The gateway refused this admin key (401: the admin key is required (Authorization: Bearer ...)). Check it and type it again.");
  assert.equal(await page.$("#main table"), null, "no table on screen");
  assert.equal(await page.$("[id^=page-]"), null, "no page rendered");
  assert.equal(await page.evaluate(() => sessionStorage.getItem("moongate.admin_key")), null, "the refused key is not kept");
  await screenshot(page, "console-wrong-key", shots);
  // the browser reports the refused call itself; nothing else went wrong
  assert.deepEqual(errors, ["console: Failed to load resource: the server responded with a status of 401 (Unauthorized)"]);
  await page.close();
});

test("every page, driven as a user would", async (t) => {
  const { page, errors } = await openPage(browser);
  await signIn(page, ADMIN);
  await page.waitForSelector("#page-playground #api-key");
  await page.type("#api-key", TENANT);
  await page.$eval("#api-key", (e) => e.dispatchEvent(new Event("change")));
  await page.waitForSelector("#model option[value=default]");
  assert.deepEqual(await page.$$eval("#model option", (os) => os.map((o) => o.textContent)),
    ["default  (primary → secondary)", "docs  (docs)"]);

  let policy;
  await t.test("playground: the answer streams in, then the route, attempts and tokens", async () => {
    await primary.fault("chunk_delay=150");
    const q = "what does the circuit breaker do?";
    await page.select("#model", "default");
    await page.$eval("#prompt", (e, v) => { e.value = v; }, q);
    await page.click("#send");
    // part of the answer is on screen before the stream ends
    await page.waitForFunction(() => {
      const a = document.querySelector("#answer").textContent;
      return a.length > 0 && a !== "mock answer: what does the circuit breaker do?";
    }, { timeout: 5000 });
    await page.waitForFunction(() => document.querySelector("#attempts table, #attempts p"), { timeout: 10000 });
    await primary.fault("");
    assert.equal(await text(page, "#answer"), `mock answer: ${q}`);
    assert.equal(await text(page, "#play-status"), "done");
    assert.equal(await text(page, "#fact-route"), "primary / mock-small");
    assert.equal(await text(page, "#fact-attempts"), "1");
    assert.match(await text(page, "#fact-overhead"), /^\d+(\.\d+)? ms$/);
    policy = await text(page, "#fact-policy");
    assert.match(policy, /^[0-9a-f]{16}$/);
    const id = await text(page, "#request-link");
    const tr = await adminGet(`/admin/traces/${id}`);
    assert.equal(await text(page, "#fact-tokens"), `${tr.tokens_in} / ${tr.tokens_out}`);
    assert.ok(tr.tokens_out > 0);
    const rows = await cells(page, "#attempts");
    assert.equal(rows.length, 1);
    assert.deepEqual(rows[0].slice(0, 5), ["1", "primary", "mock-small", "answered", ""]);
    await screenshot(page, "console-playground", shots);
  });

  await t.test("playground: the extractive provider's citations", async () => {
    await ask(page, "docs", "When does the breaker open?",
      "The breaker opens after five failures. It closes after a probe succeeds.");
    assert.equal(await text(page, "#answer"), "The breaker opens after five failures. [1]");
    assert.equal(await text(page, "#fact-route"), "docs / docs");
    assert.deepEqual(await page.$$eval("#citation-list li", (ls) => ls.map((l) => l.textContent)), ["system — messages[0]"]);
    await screenshot(page, "console-playground-citations", shots);
  });

  await t.test("a 503 on the primary: the fallback, in the playground and on the request's page", async () => {
    await primary.fault("status=503");
    await ask(page, "default", "fall back please");
    await primary.fault("");
    assert.equal(await text(page, "#answer"), "mock answer: fall back please");
    assert.equal(await text(page, "#fact-route"), "secondary / mock-large");
    assert.equal(await text(page, "#fact-attempts"), "2");
    const id = await text(page, "#request-link");
    await page.click("#request-link");
    await page.waitForSelector("#request-attempts table");
    assert.equal(await page.evaluate(() => location.hash), `#/requests/${id}`);
    const rows = (await cells(page, "#request-attempts")).map((r) => r.slice(0, 5));
    assert.deepEqual(rows, [["1", "primary", "mock-small", "status_503", "503"],
                            ["2", "secondary", "mock-large", "answered", ""]]);
    assert.equal(await text(page, "#request-upstream"), "secondary/mock-large");
    assert.equal(await text(page, "#request-status"), "200");
    const spans = await page.$$eval("#waterfall .name", (ns) => ns.map((n) => n.textContent));
    assert.equal(spans[0], "POST /v1/chat/completions");
    assert.ok(spans.includes("route") && spans.includes("chat mock-small") && spans.includes("chat mock-large"), spans.join(","));
    assert.equal(await page.$$eval("#waterfall .bar.error", (bs) => bs.length), 1, "the failed attempt's bar is red");
    await screenshot(page, "console-request-detail", shots);
    await page.emulateMediaFeatures([{ name: "prefers-color-scheme", value: "dark" }]);
    await screenshot(page, "console-request-detail-dark", shots);
    await page.emulateMediaFeatures([{ name: "prefers-color-scheme", value: "light" }]);
  });

  await t.test("recent requests and step percentiles", async () => {
    await page.click("a[data-page=requests]");
    await page.waitForSelector("#request-list table");
    const rows = await cells(page, "#request-list");
    // the three chats and the model list, newest first; the console's own admin calls are hidden
    assert.deepEqual(rows.map((r) => [r[2], r[3], r[5], r[6], r[7]]), [
      ["chat", "200", "team-a", "default", "secondary/mock-large"],
      ["chat", "200", "team-a", "docs", "docs/docs"],
      ["chat", "200", "team-a", "default", "primary/mock-small"],
      ["models", "200", "team-a", "", ""],
    ]);
    const stats = await adminGet("/admin/stats?since=1h");
    const upstream = stats.steps.find((s) => s.name === "upstream");
    assert.equal(upstream.count, 4);   // 1 + 1 + 2 attempts
    const shown = (await cells(page, "#step-stats")).find((r) => r[0] === "upstream");
    assert.deepEqual(shown.slice(0, 2), ["upstream", "4"]);
    await screenshot(page, "console-requests", shots);
  });

  await t.test("providers: an open breaker is reset from the UI", async () => {
    // two failures in the window open primary's breaker (the secondary still answers)
    for (let i = 0; i < 2; i++) {
      const r = await chat(gw, { model: "default", messages: [{ role: "user", content: "x" }], mock: { status: 500, target: "primary" } },
        { authorization: `Bearer ${TENANT}` });
      assert.equal(r.status, 200, r.text);
    }
    assert.equal((await adminGet("/admin/breakers")).providers.primary.state, "open");
    await page.click("a[data-page=providers]");
    await page.waitForSelector("#breakers table");
    const before = await cells(page, "#breakers");
    assert.deepEqual(before.map((r) => r.slice(0, 3)), [["docs", "closed", "0"], ["primary", "open", "2"], ["secondary", "closed", "0"]]);
    await screenshot(page, "console-providers-open", shots);
    await page.click("#reset-primary");
    await page.waitForSelector("#breaker-note .message");
    assert.equal(await text(page, "#breaker-note"), "primary: the breaker is closed");
    await page.waitForFunction(() => document.querySelector("#reset-primary").disabled);
    const after = await cells(page, "#breakers");
    assert.deepEqual(after[1].slice(0, 3), ["primary", "closed", "0"]);
    assert.equal((await adminGet("/admin/breakers")).providers.primary.state, "closed");
    await screenshot(page, "console-providers", shots);
  });

  await t.test("usage per provider/model and per tenant", async () => {
    await page.click("a[data-page=usage]");
    await page.waitForSelector("#usage-tenants table");
    const { usage } = await adminGet("/admin/usage");
    const expect = [];
    for (const [p, ms] of Object.entries(usage).sort()) {
      for (const [m, u] of Object.entries(ms).sort()) expect.push([p, m, String(u.requests), String(u.prompt_tokens || 0), String(u.completion_tokens || 0)]);
    }
    assert.deepEqual(await cells(page, "#usage-models"), expect);
    assert.deepEqual(expect.map((r) => r.slice(0, 3)),
      [["docs", "docs", "1"], ["primary", "mock-small", "1"], ["secondary", "mock-large", "3"]]);
    const tenants = await cells(page, "#usage-tenants");
    const team = tenants.find((r) => r[0] === "team-a");
    assert.deepEqual(team.slice(0, 3), ["team-a", "6", "0"]);   // 5 chats and the model list
    // the console's own admin calls and the refused key carry no tenant
    assert.equal(tenants.find((r) => r[0] === "(no tenant)")[2], "1");
    await screenshot(page, "console-usage", shots);
  });

  await t.test("loaded units with their version hashes", async () => {
    await page.click("a[data-page=units]");
    await page.waitForSelector("#units table");
    let rows = await cells(page, "#units");
    assert.deepEqual(rows[0].slice(0, 3), ["routing policy", "route.lua", policy]);
    assert.match(rows[0][3], /^loaded \d+ s ago$/);

    // an edit that does not compile: refused, the old version keeps serving
    const policyUnit = async () => (await adminGet("/admin/versions")).units.find((u) => u.kind === "routing policy");
    const until = async (result) => {
      for (let i = 0; i < 100; i++) {
        const u = await policyUnit();
        if (u.last && u.last.result === result) return u;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`no ${result} reload`);
    };
    fs.writeFileSync(POLICY, "return {");
    const bad = await until("failed");
    await page.click("#refresh");
    await page.waitForFunction(() => document.querySelector("#units td:nth-child(4)")?.textContent.startsWith("failed"));
    rows = await cells(page, "#units");
    assert.equal(rows[0][2], policy);
    assert.match(rows[0][3], /^failed \d+ s ago: /);
    assert.ok(rows[0][3].endsWith(`: ${bad.last.error} — the version above keeps serving`), rows[0][3]);
    assert.match(bad.last.error, /route\.lua/);
    await screenshot(page, "console-units-failed", shots);

    // a good edit swaps in: a new version, and the chats carry it
    fs.writeFileSync(POLICY, `${POLICY_SRC}\n-- edited\n`);
    const good = await until("ok");
    assert.notEqual(good.version, policy);
    await page.click("#refresh");
    await page.waitForFunction(() => document.querySelector("#units td:nth-child(4)")?.textContent.startsWith("reloaded"));
    rows = await cells(page, "#units");
    assert.equal(rows[0][2], good.version);
    assert.match(rows[0][3], new RegExp(`^reloaded \\d+ s ago \\(was ${policy}\\)$`));
    const r = await chat(gw, { model: "default", messages: [{ role: "user", content: "x" }] }, { authorization: `Bearer ${TENANT}` });
    assert.equal(r.headers.get("x-moongate-route-version"), good.version);
    await screenshot(page, "console-units", shots);
  });

  assert.deepEqual(errors, []);
  await page.close();
});

// ---- the static route, at the HTTP level (raw paths: fetch would normalize the dots away) ----

function raw(base, p, { method = "GET", headers = {} } = {}) {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path: p, method, headers }, (res) => {
      let body = "";
      res.on("data", (d) => { body += d; });
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

test("static files: content types, ETag, no key needed, the admin API still needs one", async () => {
  for (const [p, type] of [["/console", "text/html; charset=utf-8"], ["/console/", "text/html; charset=utf-8"],
    ["/console/index.html", "text/html; charset=utf-8"], ["/console/console.css", "text/css; charset=utf-8"],
    ["/console/app.js", "text/javascript; charset=utf-8"], ["/console/api.js", "text/javascript; charset=utf-8"]]) {
    const r = await raw(gw.base, p);
    assert.equal(r.status, 200, p);
    assert.equal(r.headers["content-type"], type, p);
    assert.equal(r.headers["cache-control"], "no-cache", p);
    assert.equal(r.headers["x-content-type-options"], "nosniff", p);
    assert.match(r.headers.etag, /^"[0-9a-f]{16}"$/, p);
  }
  const index = await raw(gw.base, "/console");
  assert.match(index.body, /<title>moongate console<\/title>/);
  const again = await raw(gw.base, "/console", { headers: { "if-none-match": index.headers.etag } });
  assert.equal(again.status, 304);
  assert.equal(again.body, "");
  const head = await raw(gw.base, "/console/app.js", { method: "HEAD" });
  assert.equal(head.status, 200);
  assert.equal(head.body, "");
  const post = await raw(gw.base, "/console/app.js", { method: "POST" });
  assert.equal(post.status, 405);
  assert.equal(post.headers.allow, "GET");
  assert.equal((await raw(gw.base, "/admin/versions")).status, 401);
});

test("static files: traversal and unknown files are 404", async () => {
  for (const p of ["/console/../README.md", "/console/..%2fREADME.md", "/console/%2e%2e/README.md",
    "/console/%2e%2e%2fREADME.md", "/console/.%2e/README.md", "/console/..%5cREADME.md", "/console/..\\README.md",
    "/console/../lua/moongate/app.lua", "/console//etc/passwd", "/console/%2fetc%2fpasswd", "/console/./index.html",
    "/console/.hidden.js", "/console/nope.js", "/console/index.html/", "/console/README.md", "/console/x%00.js",
    "/consolex", "/console.html"]) {
    const r = await raw(gw.base, p);
    assert.equal(r.status, 404, p);
    assert.equal(r.headers["content-type"], "application/json", p);
    assert.equal(JSON.parse(r.body).error.code, "not_found", p);
  }
});

test("with admin = false the console is off, like the admin API", async () => {
  for (const p of ["/console", "/console/app.js", "/admin/versions"]) {
    const r = await raw(off.base, p, { headers: { authorization: `Bearer ${ADMIN}` } });
    assert.equal(r.status, 404, p);
    assert.equal(JSON.parse(r.body).error.code, "not_found", p);
  }
});
