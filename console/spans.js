// A request's spans as the trace store keeps them (OTLP JSON): their attributes, their tree in
// start order, the upstream attempts among them, and the waterfall that draws them.
import { el, fmt, table, badge } from "./api.js";

function value(v) {
  if (!v) return undefined;
  if ("stringValue" in v) return v.stringValue;
  if ("intValue" in v) return Number(v.intValue);
  if ("doubleValue" in v) return v.doubleValue;
  if ("boolValue" in v) return v.boolValue;
  if (v.arrayValue) return (v.arrayValue.values || []).map(value);
  return undefined;
}

export function attrs(span) {
  const out = {};
  for (const kv of span.attributes || []) out[kv.key] = value(kv.value);
  return out;
}

export const attr = (span, key) => attrs(span)[key];

const nanos = (s) => Number(BigInt(s) / 1000n) / 1000;   // OTLP's nanosecond strings -> ms
const failed = (span) => span.status && span.status.code === 2;

// tree(spans) -> [{span, depth, start, end}] depth-first, children in start order; times in ms
// from the root's start.
export function tree(spans) {
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  const kids = new Map();
  const roots = [];
  for (const s of spans) {
    if (s.parentSpanId && byId.has(s.parentSpanId)) {
      if (!kids.has(s.parentSpanId)) kids.set(s.parentSpanId, []);
      kids.get(s.parentSpanId).push(s);
    } else roots.push(s);
  }
  const byStart = (a, b) => (BigInt(a.startTimeUnixNano) < BigInt(b.startTimeUnixNano) ? -1 : 1);
  roots.sort(byStart);
  if (!roots.length) return [];
  const t0 = nanos(roots[0].startTimeUnixNano);
  const out = [];
  const walk = (s, depth) => {
    out.push({ span: s, depth, start: nanos(s.startTimeUnixNano) - t0, end: nanos(s.endTimeUnixNano) - t0 });
    for (const c of (kids.get(s.spanId) || []).sort(byStart)) walk(c, depth + 1);
  };
  for (const r of roots) walk(r, 0);
  return out;
}

// attemptsOf(spans) -> [{n, provider, model, status, error, ok, ms}]: the upstream calls, in order.
export function attemptsOf(spans) {
  return tree(spans || [])
    .filter(({ span }) => span.kind === 3 && attr(span, "gen_ai.provider.name"))
    .map(({ span, start, end }, i) => {
      const a = attrs(span);
      return {
        n: i + 1, provider: a["gen_ai.provider.name"], model: a["gen_ai.request.model"] || "",
        status: a["http.response.status_code"], error: a["error.type"] || (failed(span) ? span.status.message : null),
        ok: !failed(span) && !a["error.type"], ms: end - start,
      };
    });
}

// The attributes worth reading next to each bar: the decisions and the figures.
const SHOWN = [
  ["gen_ai.provider.name", "provider"], ["gen_ai.request.model", "model"], ["gen_ai.response.model", "answered"],
  ["gen_ai.usage.input_tokens", "in"], ["gen_ai.usage.output_tokens", "out"], ["moongate.cost", "cost"],
  ["moongate.tenant", "tenant"], ["http.response.status_code", "status"], ["moongate.route.version", "policy"],
  ["moongate.route.tiers", "tiers"], ["moongate.route.reason", "because"], ["moongate.retrieval.candidates", "candidates"],
  ["moongate.citations", "cited"], ["moongate.redactions", "redactions"], ["moongate.flags", "flags"],
  ["error.type", "error"], ["gen_ai.tool.name", "tool"], ["moongate.degraded", "degraded"],
];

// waterfall(spans) -> a grid: name (indented by depth) | the bar on the request's time axis | duration,
// with each span's attributes, failure and events on a line under it.
export function waterfall(spans) {
  const rows = tree(spans);
  const total = Math.max(...rows.map((r) => r.end), 0.001);
  const grid = el("div", { class: "waterfall", id: "waterfall" },
    el("div", { class: "head" }, "span"), el("div", { class: "head" }, `0 → ${fmt.ms(total)}`),
    el("div", { class: "head dur" }, "duration"));
  for (const { span, depth, start, end } of rows) {
    const a = attrs(span);
    const notes = SHOWN.filter(([k]) => a[k] !== undefined).map(([k, n]) => `${n}=${Array.isArray(a[k]) ? a[k].join(", ") : a[k]}`);
    if (failed(span)) notes.push(`FAILED${span.status.message ? `: ${span.status.message}` : ""}`);
    for (const e of span.events || []) notes.push(`event: ${e.name}`);
    const left = (start / total) * 100;
    const width = Math.max(((end - start) / total) * 100, 0.3);
    grid.append(
      el("div", { class: "name", style: { paddingLeft: `${8 + depth * 16}px` }, title: span.name }, span.name),
      el("div", { class: "track" }, el("div", {
        class: failed(span) ? "bar error" : "bar",
        style: { left: `${left.toFixed(2)}%`, width: `${Math.min(width, 100 - left).toFixed(2)}%` },
        title: `${fmt.ms(start)} → ${fmt.ms(end)}`,
      })),
      el("div", { class: "dur" }, fmt.ms(end - start)),
      notes.length ? el("div", { class: "attrs" }, notes.join("  ")) : "");
  }
  return grid;
}

// One row per upstream attempt: provider, model, outcome, time.
export function attemptsTable(list) {
  return table([
    ["#", (a) => a.n, "num"],
    ["provider", (a) => a.provider],
    ["model", (a) => a.model],
    ["outcome", (a) => (a.ok ? badge("answered", "ok") : badge(a.error || `status ${a.status}`, "bad"))],
    ["status", (a) => a.status ?? "", "num"],
    ["duration", (a) => fmt.ms(a.ms), "num"],
  ], list, { empty: "no upstream attempt" });
}
