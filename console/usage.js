// Usage: requests and tokens per provider and upstream model (summed across workers since the
// gateway started), and per tenant from the trace store (requests, errors, tokens, cost).
import { admin, el, table, fmt, ApiError } from "./api.js";

export async function render(view) {
  const { usage } = await admin("/admin/usage");
  const rows = [];
  for (const [provider, models] of Object.entries(usage)) {
    for (const [model, u] of Object.entries(models)) rows.push({ provider, model, ...u });
  }
  rows.sort((a, b) => a.provider.localeCompare(b.provider) || a.model.localeCompare(b.model));
  view.append(
    el("h1", {}, "Usage"),
    el("p", { class: "lead" }, "Tokens as the providers reported them, since the gateway started."),
    el("h2", {}, "Per provider and model"),
    el("div", { id: "usage-models" }, table([
      ["provider", (r) => r.provider], ["model", (r) => r.model],
      ["requests", (r) => fmt.int(r.requests), "num"],
      ["prompt tokens", (r) => fmt.int(r.prompt_tokens || 0), "num"],
      ["completion tokens", (r) => fmt.int(r.completion_tokens || 0), "num"],
    ], rows, { empty: "no request has reached a provider yet" })));

  const tenants = el("div", { id: "usage-tenants" });
  view.append(el("h2", {}, "Per tenant, last 24 hours"), tenants);
  try {
    const stats = await admin("/admin/stats?since=24h");
    tenants.append(table([
      ["tenant", (r) => (r.tenant === "-" ? "(no tenant)" : r.tenant)], ["requests", (r) => fmt.int(r.requests), "num"],
      ["errors", (r) => fmt.int(r.errors), "num"], ["tokens in", (r) => fmt.int(r.tokens_in), "num"],
      ["tokens out", (r) => fmt.int(r.tokens_out), "num"], ["cost", (r) => fmt.cost(r.cost), "num"],
    ], stats.tenants, { empty: "no stored request in this window" }));
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
    tenants.append(el("p", { class: "empty" }, `per-tenant figures come from the trace store: ${e.message}`));
  }
}
