// bench.mjs: the peers' side of tests/bench/tokenizer/run, and the report. Counts every
// document with npm tiktoken (WASM), js-tiktoken and gpt-tokenizer, single-threaded, best of
// REPS, compares each count with moongate's, prints MB/s side by side with ratios to tiktoken.
import fs from "node:fs";
import os from "node:os";
import { createRequire } from "node:module";

const [corpusPath, moongateOut, workDir, repsArg] = process.argv.slice(2);
const reps = Number(repsArg || 3);
const require = createRequire(workDir + "/");
const corpus = fs.readFileSync(corpusPath);
const sep = Buffer.from("\n\x1e\n");
const docs = [];
for (let p = 0; ;) {
  let q = corpus.indexOf(sep, p);
  if (q < 0) q = corpus.length;
  docs.push(corpus.subarray(p, q).toString("utf8"));
  if (q === corpus.length) break;
  p = q + 3;
}
const bytes = docs.reduce((a, d) => a + Buffer.byteLength(d), 0);

const mg = {};
for (const line of fs.readFileSync(moongateOut, "utf8").trim().split("\n")) {
  const [name, secs, ...counts] = line.split(" ");
  mg[name] = { secs: Number(secs), counts: counts.map(Number) };
}

const tiktoken = require("tiktoken");
const jsTiktoken = require("js-tiktoken");
const peers = {
  tiktoken: (name) => { const e = tiktoken.get_encoding(name); return (s) => e.encode_ordinary(s).length; },
  "js-tiktoken": (name) => { const e = jsTiktoken.getEncoding(name); return (s) => e.encode(s, [], []).length; },
  "gpt-tokenizer": (name) => { const m = require(`gpt-tokenizer/cjs/encoding/${name}`); return (s) => m.countTokens(s, { disallowedSpecial: new Set() }); },
};

function measure(count) {
  let best = Infinity, counts;
  for (let r = 0; r < reps; r++) {
    const out = new Array(docs.length);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < docs.length; i++) out[i] = count(docs[i]);
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    if (dt < best) best = dt;
    counts = out;
  }
  return { secs: best, counts };
}

console.log(`corpus: ${docs.length} documents, ${(bytes / 1e6).toFixed(2)} MB (State of the Union addresses + source code); best of ${reps}, single-threaded`);
console.log(`machine: ${os.cpus().length} cores, load average ${os.loadavg().map((x) => x.toFixed(1)).join(" ")} (a busy machine slows every column)`);
console.log("");
const pad = (s, n) => String(s).padEnd(n);
const lpad = (s, n) => String(s).padStart(n);
let allAgree = true;
for (const name of ["cl100k_base", "o200k_base"]) {
  const rows = [];
  const ref = measure(peers.tiktoken(name));
  const refMBs = bytes / 1e6 / ref.secs;
  const agree = (c) => c.length === ref.counts.length && c.every((v, i) => v === ref.counts[i]);
  rows.push(["moongate", mg[name].secs, mg[name].counts]);
  rows.push(["tiktoken (npm, WASM)", ref.secs, ref.counts]);
  for (const p of ["js-tiktoken", "gpt-tokenizer"]) {
    const m = measure(peers[p](name));
    rows.push([p, m.secs, m.counts]);
  }
  console.log(`${name}: ${ref.counts.reduce((a, b) => a + b, 0)} tokens by tiktoken`);
  console.log(`  ${pad("tokenizer", 22)} ${lpad("MB/s", 8)} ${lpad("x tiktoken", 11)}  counts equal to tiktoken's`);
  for (const [label, secs, counts] of rows) {
    const mbs = bytes / 1e6 / secs;
    const ok = agree(counts);
    const diff = ok ? "all " + counts.length : `${counts.filter((v, i) => v !== ref.counts[i]).length} of ${counts.length} differ`;
    if (label === "moongate" && !ok) allAgree = false;
    console.log(`  ${pad(label, 22)} ${lpad(mbs.toFixed(1), 8)} ${lpad((mbs / refMBs).toFixed(1) + "x", 11)}  ${diff}`);
  }
  console.log("");
}
process.exit(allAgree ? 0 : 1);
