// Loaded units: the hot-reloaded files this worker serves (routing policy, flags, pipelines,
// plugins), each with its version hash (the content hash spans and headers carry) and last reload.
import { admin, el, table, fmt, badge } from "./api.js";

function lastReload(u) {
  if (u.version === null) return badge("not loaded yet", "muted");
  if (!u.last) return el("span", {}, badge("loaded", "ok"), ` ${fmt.ago(u.loaded_at)}`);
  if (u.last.result === "ok") return el("span", {}, badge("reloaded", "ok"), ` ${fmt.ago(u.last.at)}`, u.last.previous ? ` (was ${u.last.previous})` : "");
  return el("span", {}, badge("failed", "bad"), ` ${fmt.ago(u.last.at)}: ${u.last.error} — the version above keeps serving`);
}

export async function render(view) {
  const v = await admin("/admin/versions");
  view.replaceChildren(
    el("h1", {}, "Loaded units"),
    el("p", { class: "lead" }, `Worker ${v.pid}: ${v.stats.loads} loaded, ${v.stats.reloads} reloaded, ${v.stats.failures} refused edits. `,
      "An edit is compiled and validated before it swaps in; a failed one leaves the old version serving."),
    el("div", { id: "units" }, table([
      ["kind", (u) => u.kind], ["file", (u) => el("span", { class: "mono", title: u.path }, u.name)],
      ["version", (u) => el("code", {}, u.version ?? "–")], ["last reload", lastReload],
    ], v.units, { empty: "no unit loaded yet" })),
    el("div", { class: "row", style: { marginTop: "10px" } },
      el("button", { class: "quiet", id: "refresh", onclick: () => render(view) }, "Refresh")));
}
