// What the tokenizer tests against npm tiktoken share: where moongate is, and the tiktoken
// package from tests/node_modules — or a skip (exit 77) when scripts/setup has not installed it.
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
export const home = process.env.MOONGATE_HOME || path.resolve(here, "../../..");
export const moongate = process.env.MOONGATE || path.join(home, "build/moongate");

let mod;
try {
  mod = createRequire(path.join(home, "tests/"))("tiktoken");
} catch {
  console.log("skip: tests/node_modules/tiktoken is not installed (scripts/setup installs it)");
  process.exit(77);
}
export const tiktoken = mod;
