// Providers & circuit breakers: each provider's breaker (closed, open, half open), its recent
// failures and the time to the next probe; Reset closes a breaker by hand.
import { admin, el, table, badge } from "./api.js";

export async function render(view) {
  const note = el("div", { id: "breaker-note" });
  const holder = el("div", { id: "breakers" });

  async function load() {
    const { providers } = await admin("/admin/breakers");
    const rows = Object.entries(providers).map(([name, b]) => ({ name, ...b })).sort((a, b) => a.name.localeCompare(b.name));
    holder.replaceChildren(table([
      ["provider", (r) => r.name],
      ["breaker", (r) => badge(r.state.replace("_", " "), r.state)],
      ["failures", (r) => r.failures, "num"],
      ["next probe in", (r) => (r.retry_in !== undefined ? `${r.retry_in} s` : ""), "num"],
      ["", (r) => el("button", { id: `reset-${r.name}`, disabled: r.state === "closed", onclick: () => reset(r.name) }, "Reset")],
    ], rows, { empty: "no provider configured" }));
  }

  async function reset(name) {
    const r = await admin(`/admin/breakers/${encodeURIComponent(name)}/reset`, { method: "POST" });
    note.replaceChildren(el("div", { class: "message info" }, `${r.provider}: the breaker is ${r.breaker.state.replace("_", " ")}`));
    await load();
  }

  view.append(
    el("h1", {}, "Providers & circuit breakers"),
    el("p", { class: "lead" }, "A breaker opens after too many failures in its window and keeps traffic off the provider until a probe succeeds after the cool-down. This worker's view."),
    note, holder,
    el("div", { class: "row", style: { marginTop: "10px" } }, el("button", { class: "quiet", id: "refresh", onclick: load }, "Refresh")));
  await load();
}
