// Recent requests from the trace store, the p50/p95/p99 of each step and model, and one request's
// detail (#/requests/ID): its attempts and its span waterfall.
import { admin, el, table, fmt, badge } from "./api.js";
import { attemptsOf, attemptsTable, waterfall } from "./spans.js";

// the console's own calls (and other admin reads) are traced too; they are hidden by default
const ADMIN_ROUTES = new Set(["breakers", "usage", "flags", "metrics", "traces", "trace", "reset", "stats", "versions"]);

const statusBadge = (s) => badge(String(s ?? "–"), s >= 400 ? "bad" : "ok");

function percentiles(rows, empty) {
  return table([
    ["name", (r) => r.name], ["count", (r) => fmt.int(r.count), "num"],
    ["p50", (r) => fmt.ms(r.p50), "num"], ["p95", (r) => fmt.ms(r.p95), "num"], ["p99", (r) => fmt.ms(r.p99), "num"],
  ], rows, { empty });
}

async function list(view) {
  const showAdmin = el("input", { type: "checkbox", id: "show-admin" });
  const holder = el("div", { id: "request-list" });
  async function load() {
    const { data } = await admin("/admin/traces?limit=200");
    const rows = data.filter((r) => showAdmin.checked || !ADMIN_ROUTES.has(r.route)).slice(0, 50);
    holder.replaceChildren(table([
      ["time", (r) => fmt.time(r.start)],
      ["request", (r) => el("a", { href: `#/requests/${r.request_id}`, class: "mono" }, r.request_id.slice(0, 16))],
      ["route", (r) => r.route || ""], ["status", (r) => statusBadge(r.status)],
      ["duration", (r) => fmt.ms(r.duration_ms), "num"], ["tenant", (r) => r.tenant || "–"],
      ["model", (r) => r.model || ""], ["answered by", (r) => r.upstream || ""],
      ["tokens in/out", (r) => (r.tokens_in !== undefined ? `${r.tokens_in} / ${r.tokens_out ?? 0}` : ""), "num"],
      ["cost", (r) => fmt.cost(r.cost), "num"],
    ], rows, { empty: "no request stored yet", onclick: (r) => { location.hash = `#/requests/${r.request_id}`; } }));
  }
  showAdmin.addEventListener("change", load);
  const stats = await admin("/admin/stats?since=1h");
  view.append(
    el("h1", {}, "Recent requests"),
    el("p", { class: "lead" }, "Newest first, from the trace store. Click a request for its spans."),
    el("div", { class: "row" }, showAdmin, el("label", { for: "show-admin", style: { margin: 0, fontWeight: 400 } }, "show admin calls"),
      el("button", { class: "quiet", id: "refresh", onclick: load }, "Refresh")),
    holder,
    el("h2", {}, "Steps, last hour"),
    el("div", { id: "step-stats" }, percentiles(stats.steps, "no stored request in the last hour")),
    el("h2", {}, "Models that answered, last hour"),
    el("div", { id: "model-stats" }, percentiles(stats.models, "no model answered in the last hour")));
  await load();
}

async function detail(view, id) {
  const t = await admin(`/admin/traces/${encodeURIComponent(id)}`);
  const facts = el("dl", { class: "facts", id: "request-facts" });
  const add = (k, v, fid) => facts.append(el("dt", {}, k), el("dd", { id: fid }, v));
  add("request", el("code", {}, t.request_id));
  add("trace", el("code", {}, t.trace_id));
  add("when", new Date(t.start * 1000).toISOString());
  add("route", t.route || "");
  add("status", statusBadge(t.status), "request-status");
  add("duration", fmt.ms(t.duration_ms));
  if (t.tenant) add("tenant", t.tenant);
  if (t.model) add("model asked", t.model);
  add("answered by", t.upstream || "–", "request-upstream");
  if (t.tokens_in !== undefined) add("tokens in / out", `${t.tokens_in} / ${t.tokens_out ?? 0}`);
  if (t.cost) add("cost", fmt.cost(t.cost));
  if (t.error) add("error", t.error);
  view.append(
    el("p", {}, el("a", { href: "#/requests" }, "← all requests")),
    el("h1", {}, `Request ${t.request_id.slice(0, 16)}`),
    el("div", { class: "panel" }, facts),
    el("h2", {}, "Attempts"), el("div", { id: "request-attempts" }, attemptsTable(attemptsOf(t.spans))),
    el("h2", {}, "Spans"), waterfall(t.spans || []));
  if (t.raw) {
    view.append(el("h2", {}, "Raw text (this tenant's policy keeps it)"),
      el("pre", { class: "panel" }, t.raw.prompt ? `prompt:\n${t.raw.prompt}\n\n` : "", t.raw.response ? `response:\n${t.raw.response}` : ""));
  }
}

export function render(view, id) {
  return id ? detail(view, id) : list(view);
}
