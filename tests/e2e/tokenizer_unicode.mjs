// tokenizer_unicode.mjs: every code point, in contexts whose split depends on its class
// (letter, upper or lower case, mark, digit, whitespace, other), gets the same ids from
// `moongate tokens` as from npm tiktoken, for both encodings: the Unicode tables agree.
// Unassigned and private-use code points (Cn, Co in Node's newer Unicode) are left out:
// every table reads them as symbols.
// Skips (77) when tests/node_modules/tiktoken is not installed.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { home, moongate, tiktoken } from "./lib/tiktoken.mjs";

const PER_FILE = 1024;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mg-ucd-"));
const files = [], texts = [], cps = [];
const skip = /^[\p{Cn}\p{Co}]$/u;
let lines = [];
const flush = () => {
  const f = path.join(dir, `u${String(files.length).padStart(4, "0")}`);
  const text = lines.join("\n");
  fs.writeFileSync(f, text);
  files.push(f);
  texts.push(text);
  lines = [];
};
for (let cp = 0; cp <= 0x10ffff; cp++) {
  if (cp >= 0xd800 && cp <= 0xdfff) continue;
  const c = String.fromCodePoint(cp);
  if (skip.test(c)) continue;
  if (lines.length === 0) cps.push([]);
  cps[cps.length - 1].push(cp);
  lines.push(`a${c}a A${c}a 1${c}1 ${c}x${c}${c}'s`);
  if (lines.length === PER_FILE) flush();
}
if (lines.length) flush();

let passed = 0, failed = 0;
for (const name of ["cl100k_base", "o200k_base"]) {
  const enc = tiktoken.get_encoding(name);
  const out = execFileSync(moongate, ["tokens", "--encoding", name, "--ids", ...files], {
    maxBuffer: 1 << 30, env: { ...process.env, MOONGATE_HOME: home },
  }).toString().split("\n");
  let bad = 0;
  texts.forEach((text, i) => {
    const want = Array.from(enc.encode_ordinary(text)).join(" ");
    const line = out[i] ?? "";
    if (line.slice(0, line.lastIndexOf("\t")) !== want) {
      if (bad++ < 5) {
        // name the first differing code point of the block
        const ls = text.split("\n");
        for (let j = 0; j < ls.length; j++) {
          const w = Array.from(enc.encode_ordinary(ls[j])).join(" ");
          const g = execFileSync(moongate, ["tokens", "--encoding", name, "--ids"], { input: ls[j] }).toString().trim();
          if (w !== g) { console.log(`${name}: U+${cps[i][j].toString(16)} differs: want ${w} got ${g}`); break; }
        }
      }
    }
  });
  console.log(`${name}: ${cps.flat().length} code points in ${files.length} blocks, ${bad} blocks differ`);
  if (bad) failed++; else passed++;
  enc.free();
}
fs.rmSync(dir, { recursive: true, force: true });
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
