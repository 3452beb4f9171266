// tokenizer_tiktoken.mjs: `moongate tokens` gives the same ids as the npm tiktoken package
// (OpenAI's Rust code built to WASM) on every record of tests/data/tokenizer/corpus.bin, for
// cl100k_base and o200k_base. Invalid UTF-8 records are decoded by a WHATWG TextDecoder
// first, as a JS client would. Skips (77) when tests/node_modules/tiktoken is not installed.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { home, moongate, tiktoken } from "./lib/tiktoken.mjs";

const corpus = fs.readFileSync(path.join(home, "tests/data/tokenizer/corpus.bin"));
const sep = Buffer.from("\n\x1e\n");
const records = [];
for (let p = 0; ;) {
  let q = corpus.indexOf(sep, p);
  if (q < 0) q = corpus.length;
  records.push(corpus.subarray(p, q));
  if (q === corpus.length) break;
  p = q + sep.length;
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mg-tok-"));
const files = records.map((r, i) => {
  const f = path.join(dir, `r${String(i).padStart(5, "0")}`);
  fs.writeFileSync(f, r);
  return f;
});
const decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

let passed = 0, failed = 0;
function check(ok, what) {
  if (ok) passed++;
  else { failed++; console.log(`FAIL ${what}`); }
}

function run(args, input) {
  return execFileSync(moongate, ["tokens", ...args], {
    input, maxBuffer: 1 << 30, env: { ...process.env, MOONGATE_HOME: home },
  }).toString();
}

for (const name of ["cl100k_base", "o200k_base"]) {
  const enc = tiktoken.get_encoding(name);
  const out = run(["--encoding", name, "--ids", ...files]).split("\n");
  let bad = 0, tokens = 0, invalid = 0;
  records.forEach((r, i) => {
    const text = decoder.decode(r);
    if (!Buffer.from(text, "utf8").equals(r)) invalid++;
    const want = Array.from(enc.encode_ordinary(text)).join(" ");
    const line = out[i] ?? "";
    const got = line.slice(0, line.lastIndexOf("\t"));
    tokens += want ? want.split(" ").length : 0;
    if (got !== want) {
      if (bad++ < 5) console.log(`${name}: record ${i} differs\n  text ${JSON.stringify(text).slice(0, 200)}\n  want ${want.slice(0, 200)}\n  got  ${got.slice(0, 200)}`);
    }
  });
  check(bad === 0, `${name}: ${bad} of ${records.length} records differ`);
  console.log(`${name}: ${records.length} records (${invalid} with invalid UTF-8), ${tokens} tokens, ${bad} differ`);

  // the whole corpus as one text on standard input: the count alone
  const all = Array.from(enc.encode_ordinary(decoder.decode(corpus))).length;
  check(run(["--encoding", name], corpus).trim() === String(all), `${name}: count of the whole corpus`);

  // special tokens allowed: tiktoken's encode(text, "all")
  const sp = "<|endoftext|>Hello <|endofprompt|> world<|endoftext|>";
  const want = Array.from(enc.encode(sp, "all")).join(" ");
  check(run(["--encoding", name, "--special", "--ids"], sp).trim() === want, `${name}: --special ids`);
  enc.free();
}

// wc-like output for several files
const two = run(["--encoding", "cl100k_base", files[0], files[1]]).trim().split("\n");
check(two.length === 3 && two[0].endsWith(" " + files[0]) && two[2].endsWith(" total"), "wc-like lines");

fs.rmSync(dir, { recursive: true, force: true });
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
