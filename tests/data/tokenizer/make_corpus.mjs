// make_corpus.mjs: writes corpus.bin, the mixed tokenizer corpus compared id for id with
// tiktoken by tests/e2e/tokenizer_tiktoken.mjs. Deterministic (seeded); records are separated
// by "\n\x1e\n" and never contain \x1e. Usage: node make_corpus.mjs [out] [cranfield.jsonl]
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../../..");
const out = process.argv[2] || path.join(here, "corpus.bin");
const cranfield = process.argv[3] || path.join(root, "../shared/data/cranfield/corpus.jsonl");

let seed = Number(process.env.CORPUS_SEED || 0x6d6f6f6e);
function rnd() { // mulberry32
  seed = (seed + 0x6d2b79f5) | 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (a) => a[Math.floor(rnd() * a.length)];
const int = (lo, hi) => lo + Math.floor(rnd() * (hi - lo + 1));
const enc = (s) => Buffer.from(s, "utf8");

const records = [];
const add = (x) => records.push(typeof x === "string" ? enc(x) : Buffer.from(x));

// --- hand-written prose in several scripts -------------------------------------------------
const prose = [
  "The quick brown fox jumps over the lazy dog. It's 9:41 AM; the meeting starts at 10:00.",
  "Token counts drive budgets, truncation and cost accounting — an estimate that is \"about right\" lets budgets leak.",
  "We'll see; they'd said they're sure you've got it, but I'm not. SHE'LL GO. He'S here. We'Re 'RE 'VE 'll 'LL 'Ll 'lL.",
  "  Leading spaces, trailing spaces   \n\n\n  and blank lines\r\n\r\nwith CRLF endings.\r\n",
  "Das Wetter in München ist schön; Straße, Größe, Äpfel und Öl. Ça va? Où est l'hôtel? Él comió piñas.",
  "Съешь же ещё этих мягких французских булок, да выпей чаю. Ελληνικά: Γειά σου Κόσμε.",
  "日本語のテキストを正しく数えます。東京は晴れです。漢字、ひらがな、カタカナ、ｶﾀｶﾅ（半角）。",
  "中文文本：今天天气很好，我们去公园散步吧！数字１２３和123。",
  "한국어 문장입니다. 토큰 수를 정확하게 계산합니다.",
  "مرحبا بالعالم! هذه جملة باللغة العربية تحتوي على أرقام ١٢٣٤٥ وعلامات ترقيم؟",
  "नमस्ते दुनिया। यह हिंदी में एक वाक्य है, जिसमें संयुक्ताक्षर क्ष त्र ज्ञ हैं। संख्या १२३४५",
  "שלום עולם. ภาษาไทยไม่มีช่องว่างระหว่างคำ. Tiếng Việt có dấu: Người, được, những.",
  "Emoji: 👍👍🏽👍🏿 👨‍👩‍👧‍👦 👩🏽‍💻 🏳️‍🌈 🇫🇷🇯🇵 ❤️‍🔥 🧑🏻‍🤝‍🧑🏿 1️⃣ #️⃣ ©️ ™ ☃ ⚡️",
  "Math: ∑ᵢ xᵢ² ≤ ∞, ½ + ¼ = ¾, x₁…xₙ, √2 ≈ 1.41421356, π≈3.14159, e^(iπ)+1=0, Ⅻ ⅷ ①②③.",
  "Combining: e\u0301 a\u0300\u0323 \u0301start ñ vs n\u0303, Z\u0351\u0358a\u0324l\u0325g\u033bo\u0353, ǅungla ǈ ǋ ᾈ ʰʲ ˢ.",
  "Odd spaces:\u00a0nbsp\u2003em\u3000ideo\u0085nel\u2028ls\u2029ps\u200bzwsp\u202fnnbsp\u205fmmsp\u1680ogham\u001cfs\u001fus.",
  "Long s: it'ſ, IT'ſ, 'ſ and 'ſt; Kelvin K and Ångström Å; ﬁ ﬂ ligatures.",
  "Tabs\tand\t\ttabs\t \t mixed\t\n\tindent\n\t\t\tdeep\n \n \t \r\n",
];
for (const p of prose) add(p);

// --- cranfield abstracts (lower-case technical prose) -----------------------------------
if (fs.existsSync(cranfield)) {
  const lines = fs.readFileSync(cranfield, "utf8").split("\n").filter(Boolean);
  for (let i = 0; i < lines.length && i < 300; i += 3) {
    const d = JSON.parse(lines[i]);
    add(`${d.title}\n\n${d.text}`);
  }
}

// --- source code and JSON ---------------------------------------------------------------
const docs = fs.existsSync(path.join(root, "docs")) ? fs.readdirSync(path.join(root, "docs")).sort().map((f) => "docs/" + f) : [];
for (const f of ["core/tokenizer.c", "core/tokenizer.h", "lua/moongate/tokenizer.lua", "CMakeLists.txt", "README.md", ...docs]) {
  const p = path.join(root, f);
  if (fs.existsSync(p)) add(fs.readFileSync(p).toString("utf8").replaceAll("\x1e", ""));
}
add(`def fib(n: int) -> int:\n    """Return the n-th Fibonacci number."""\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n\nif __name__ == "__main__":\n    print([fib(i) for i in range(20)])\n`);
add(`fn main() {\n    let v: Vec<u64> = (1..=10).map(|x| x * x).collect();\n    println!("{:?}", v);\n}\n// path/to/file.rs:12:5\n/* a /* nested */ comment */\nhttps://example.com/a/b?c=d&e=f#g\n`);
add(`<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Ünïcödé &amp; HTML</title></head>\n<body><p class='x'>Hello,&nbsp;world!</p><br/></body></html>\n`);
add(`SELECT id, name FROM users WHERE email LIKE '%@example.com' AND created_at >= '2024-01-01';\n`);
const jsonDocs = [];
for (let i = 0; i < 40; i++) {
  jsonDocs.push({
    id: `req_${(rnd() * 1e12).toFixed(0)}`, model: pick(["gpt-4o", "gpt-4.1-mini", "o3", "gpt-3.5-turbo"]),
    messages: [{ role: "system", content: "You are helpful." }, { role: "user", content: pick(prose) }],
    temperature: Math.round(rnd() * 100) / 100, max_tokens: int(1, 4096), stream: rnd() < 0.5,
    usage: { prompt_tokens: int(1, 9999), completion_tokens: int(1, 9999) }, tags: ["a/b", "c\\d", "e\"f"],
  });
}
add(JSON.stringify(jsonDocs));
add(JSON.stringify(jsonDocs, null, 2));
add(JSON.stringify(jsonDocs.slice(0, 5), null, "\t"));

// --- runs and numbers -------------------------------------------------------------------
add(" ".repeat(1000) + "x" + " ".repeat(999));
add("\n".repeat(500) + "y" + "\r\n".repeat(300) + "\t".repeat(200) + " \n".repeat(100));
add("\t \t \t  \n\n \t" + "a" + "   \n   " + "b" + "  \r  \n  ");
add("1234567890".repeat(50) + " 3.14159 1,000,000 -42 +7 0x1F 1e-9 ١٢٣ ४५६ ７８９");
add("a".repeat(3000));
add("ab".repeat(1500) + "!".repeat(1000) + "🙂".repeat(300));
add("/".repeat(200) + "!\n/\n/" + "--\n//\r\n/x" + "''''" + "'s's's" + "''s");

// --- contractions in all cases ------------------------------------------------------------
{
  const parts = [];
  for (const c of ["s", "t", "re", "ve", "m", "ll", "d", "S", "T", "RE", "Re", "rE", "VE", "Ve", "vE", "M", "LL", "Ll", "lL", "D", "ſ", "x", "r", "l", "v"]) {
    for (const pre of ["it", "IT", "It", " ", "", "1", "ÉTÉ", "été", "中", "'", "\n", "x\u0301"]) {
      for (const post of ["", " ", "x", "X", "'", "!", "\n"]) parts.push(pre + "'" + c + post);
    }
  }
  add(parts.join(""));
  add(parts.join(" "));
  add(parts.map((p) => p.replaceAll("'", "\u2019")).join(" "));
}

// --- random mixtures from fragments (exercise every branch of the splitter) ------------------
const frags = [
  "a", "b", "Z", "Hello", "WORLD", "camelCase", "PascalCase", "snake_case", "kebab-case", "x1", "é", "É",
  "ǅ", "ʰ", "中", "文", "ひ", "カ", "ｶ", "한", "ا", "ل", "ह", "ि", "्", "क", "\u0301", "\u0300", "\u20dd",
  "\u0903", "0", "7", "42", "12345", "½", "²", "Ⅻ", "١", "४", "𝟙", " ", "  ", "   ", "\t", "\n", "\r",
  "\r\n", "\n\n", " \n", "\u00a0", "\u3000", "\u2028", "\u0085", "\u000b", "\u000c", "\u001c", "\u200b",
  "'", "'s", "'S", "'t", "'re", "'VE", "'m", "'ll", "'LL", "'d", "'ſ", "\u2019", "\"", "!", "?", ".", ",",
  ";", ":", "...", "—", "-", "_", "/", "//", "\\", "(", ")", "[", "]", "{", "}", "<", ">", "<|", "|>",
  "<|endoftext|>", "<|endofprompt|>", "<|fim_prefix|>", "#", "@", "$", "%", "^", "&", "*", "+", "=", "~",
  "`", "|", "👍", "🏽", "\u200d", "👩‍💻", "🇫🇷", "\ufe0f", "\ufeff", "�", "𐍈", "𝔘𝔫𝔦", "🫠",
  "Ω", "ω", "ß", "ẞ", "İ", "ı", "Ⓐ", "ⓐ", "ᾈ", "ﬁ", "ℌ", "K", "Å",
];
for (let r = 0; r < 5000; r++) {
  const n = int(1, 60);
  let s = "";
  for (let i = 0; i < n; i++) s += pick(frags);
  add(s);
}

// --- invalid UTF-8 -------------------------------------------------------------------------
const bad = [
  [0x80], [0xbf], [0xc0, 0xaf], [0xc1, 0xbf], [0xc2], [0xc2, 0x41], [0xe0, 0x80, 0xaf], [0xe0, 0xa0],
  [0xed, 0xa0, 0x80], [0xed, 0xbf, 0xbf], [0xef, 0xbf], [0xf0, 0x8f, 0xbf, 0xbf], [0xf0, 0x9f, 0x98],
  [0xf0, 0x9f], [0xf4, 0x90, 0x80, 0x80], [0xf5, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xfe], [0xff],
  [0xe2, 0x82], [0xe2, 0x28, 0xa1], [0xf0, 0x28, 0x8c, 0xbc], [0xc3, 0x28],
];
for (let r = 0; r < 1500; r++) {
  const parts = [];
  const n = int(1, 30);
  for (let i = 0; i < n; i++) {
    if (rnd() < 0.35) parts.push(Buffer.from(pick(bad)));
    else parts.push(enc(pick(frags)));
  }
  add(Buffer.concat(parts));
}
for (let r = 0; r < 400; r++) { // raw random bytes
  const b = Buffer.alloc(int(1, 200));
  for (let i = 0; i < b.length; i++) { b[i] = Math.floor(rnd() * 256); if (b[i] === 0x1e) b[i] = 0x1f; }
  add(b);
}

const sep = Buffer.from("\n\x1e\n");
const body = [];
records.forEach((r, i) => { if (i) body.push(sep); body.push(r); });
fs.writeFileSync(out, Buffer.concat(body));
console.log(`${records.length} records, ${Buffer.concat(body).length} bytes -> ${out}`);
