// Playground: pick a model alias, send a chat, watch the answer stream in (SSE read from fetch's
// ReadableStream), then see how the gateway served it: the response's x-moongate-* headers, and
// the attempts and tokens from the request's trace.
import { admin, v1, keys, el, fmt, ApiError, AuthError } from "./api.js";
import { attemptsOf, attemptsTable } from "./spans.js";

// parseSSE(buffer) -> [events, rest]: the complete "data: ..." events of a text buffer.
function parseSSE(buffer) {
  const events = [];
  let at;
  while ((at = buffer.indexOf("\n\n")) >= 0) {
    const block = buffer.slice(0, at);
    buffer = buffer.slice(at + 2);
    for (const line of block.split("\n")) if (line.startsWith("data: ")) events.push(line.slice(6));
  }
  return [events, buffer];
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// The stored trace of a request: the store is written a moment after the answer, so look for the
// row in the list first (a 200 either way) and read the spans once it is there.
async function traceOf(requestId) {
  for (let i = 0; i < 40; i++) {
    const list = await admin("/admin/traces?since=600&limit=100");
    if (list.data.some((r) => r.request_id === requestId)) return admin(`/admin/traces/${encodeURIComponent(requestId)}`);
    await sleep(150);
  }
  return null;
}

function fact(dl, name, value, id) {
  dl.append(el("dt", {}, name), el("dd", { id }, value));
}

export async function render(view) {
  const authOn = keys.admin() !== "";
  const keyInput = el("input", { type: "password", id: "api-key", size: 36, autocomplete: "off",
    value: keys.api(), placeholder: authOn ? "a tenant's API key" : "no key needed without auth" });
  const models = el("select", { id: "model" });
  const system = el("textarea", { id: "system", placeholder: "Optional: context for the model (the extractive provider answers from it, with citations)" });
  const prompt = el("textarea", { id: "prompt", placeholder: "Ask something" });
  const send = el("button", { id: "send", type: "submit" }, "Send");
  const status = el("div", { id: "play-status", class: "message info" }, "");
  const answer = el("div", { class: "answer", id: "answer" });
  const facts = el("dl", { class: "facts", id: "facts" });
  const attempts = el("div", { id: "attempts" });
  const citations = el("div", { id: "citations" });

  // the options are swapped in at once, keeping the choice, so a reload never leaves the list empty
  async function loadModels() {
    if (authOn && !keys.api()) {
      models.replaceChildren();
      status.textContent = "With auth on, chats need a tenant's API key (the admin key opens /admin only).";
      send.disabled = true;
      return;
    }
    try {
      const list = await (await v1("/v1/models")).json();
      const chosen = models.value;
      models.replaceChildren(...list.data.map((m) => {
        const route = (m.moongate?.route || []).map((t) => t.provider).join(" → ");
        return el("option", { value: m.id, selected: m.id === chosen }, route ? `${m.id}  (${route})` : m.id);
      }));
      send.disabled = list.data.length === 0;
      status.textContent = list.data.length ? "" : "the gateway exposes no model";
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      models.replaceChildren();
      send.disabled = true;
      status.textContent = `/v1/models: ${e.status} ${e.message}`;
    }
  }

  async function ask(ev) {
    ev.preventDefault();
    send.disabled = true;
    answer.textContent = "";
    facts.replaceChildren();
    attempts.replaceChildren();
    citations.replaceChildren();
    status.textContent = "waiting for the first token…";
    const messages = [{ role: "user", content: prompt.value }];
    if (system.value.trim()) messages.unshift({ role: "system", content: system.value });
    let r;
    const t0 = performance.now();
    try {
      r = await v1("/v1/chat/completions", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: models.value, stream: true, messages }),
      });
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      status.textContent = `${e.status}${e.code ? ` ${e.code}` : ""}: ${e.message}`;
      status.className = "message error";
      send.disabled = false;
      return;
    }
    status.className = "message info";
    const h = (n) => r.headers.get(`x-moongate-${n}`);
    const requestId = r.headers.get("x-request-id");
    let cites = [];
    let usage = null;
    let failure = null;
    let firstToken = null;
    const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      let events;
      [events, buffer] = parseSSE(buffer + value);
      for (const data of events) {
        if (data === "[DONE]") continue;
        const ev = JSON.parse(data);
        if (ev.error) { failure = ev.error; continue; }
        const piece = ev.choices?.[0]?.delta?.content;
        if (piece) {
          if (firstToken === null) firstToken = performance.now() - t0;
          answer.textContent += piece;
        }
        if (ev.citations) cites = ev.citations;
        if (ev.usage) usage = ev.usage;
      }
    }
    const total = performance.now() - t0;
    status.textContent = failure ? `the stream failed: ${failure.message}` : "done";
    status.className = failure ? "message error" : "message info";
    send.disabled = false;

    fact(facts, "answered by", `${h("provider") || "?"} / ${h("model") || "?"}`, "fact-route");
    fact(facts, "attempts", h("attempts") || "", "fact-attempts");
    fact(facts, "routing policy", h("route-version") || "", "fact-policy");
    fact(facts, "gateway overhead", h("overhead-ms") ? `${h("overhead-ms")} ms` : "", "fact-overhead");
    fact(facts, "first token / total", `${firstToken === null ? "–" : fmt.ms(firstToken)} / ${fmt.ms(total)}`);
    if (h("degraded")) fact(facts, "degraded", "yes: a lesser tier answered", "fact-degraded");
    if (usage) fact(facts, "tokens in / out", `${usage.prompt_tokens} / ${usage.completion_tokens}`, "fact-tokens");
    if (requestId) {
      fact(facts, "request", el("a", { href: `#/requests/${requestId}`, id: "request-link" }, requestId));
    }
    if (cites.length) {
      citations.append(el("h2", {}, "Citations"),
        el("ol", { id: "citation-list" }, cites.map((c) => el("li", {}, `${c.title || c.id}`, c.source ? ` — ${c.source}` : ""))));
    }
    if (!requestId) return;
    try {
      const tr = await traceOf(requestId);
      if (!tr) { attempts.append(el("p", { class: "empty" }, "the trace was not stored (sampled out, or the store is off)")); return; }
      if (!usage) fact(facts, "tokens in / out", `${tr.tokens_in ?? "–"} / ${tr.tokens_out ?? "–"}`, "fact-tokens");
      attempts.append(el("h2", {}, "Attempts"), attemptsTable(attemptsOf(tr.spans)));
    } catch (e) {
      if (e instanceof AuthError || e instanceof ApiError) {
        attempts.append(el("p", { class: "empty" }, `no trace: ${e.status} ${e.message}`));
      } else throw e;
    }
  }

  keyInput.addEventListener("change", () => {
    if (keyInput.value.trim() === keys.api()) return;
    keys.setApi(keyInput.value.trim());
    loadModels();
  });
  view.append(
    el("h1", {}, "Playground"),
    el("p", { class: "lead" }, "Send a chat through the gateway and see the route it took."),
    el("form", { class: "panel", id: "chat-form", onsubmit: ask },
      el("label", { for: "api-key" }, "API key"), keyInput,
      el("label", { for: "model" }, "Model"), models,
      el("label", { for: "system" }, "System message"), system,
      el("label", { for: "prompt" }, "Message"), prompt,
      el("div", { class: "row", style: { marginTop: "10px" } }, send)),
    status,
    el("h2", {}, "Answer"), answer,
    el("h2", {}, "How it was served"), el("div", { class: "panel" }, facts),
    citations, attempts);
  await loadModels();
}
