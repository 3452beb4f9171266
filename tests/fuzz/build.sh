#!/usr/bin/env bash
# tests/fuzz/build.sh [OUT_DIR] [-- LIBFUZZER_ARGS...]: build the tokenizer's libFuzzer target
# with clang (ASan + UBSan) into OUT_DIR (default build-fuzz/), and run it when arguments
# follow `--`, e.g.  tests/fuzz/build.sh build-fuzz -- -max_total_time=60
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$root/build-fuzz}
[ "${1:-}" = "--" ] && out=$root/build-fuzz
shift || true
[ "${1:-}" = "--" ] && shift
if ! command -v clang >/dev/null; then
  echo "tokenizer fuzz: clang is needed (apt-get install clang)" >&2
  exit 1
fi
mkdir -p "$out"
clang -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -iquote "$root/core" "$root/tests/fuzz/tokenizer_fuzz.c" "$root/core/tokenizer.c" \
  $(pkg-config --cflags --libs libutf8proc) -lpthread -o "$out/tokenizer_fuzz"
echo "built $out/tokenizer_fuzz"
if (($#)); then
  corpus="$out/tokenizer_corpus"
  mkdir -p "$corpus"
  # seed with the comparison corpus, one record per file
  if [ -z "$(ls -A "$corpus")" ]; then
    node -e '
      const fs = require("fs"), b = fs.readFileSync(process.argv[1]), sep = Buffer.from("\n\x1e\n");
      let p = 0, i = 0;
      for (;;) { let q = b.indexOf(sep, p); if (q < 0) q = b.length;
        fs.writeFileSync(`${process.argv[2]}/seed${i++}`, b.subarray(p, q));
        if (q === b.length) break; p = q + 3; }' "$root/tests/data/tokenizer/corpus.bin" "$corpus"
  fi
  cd "$out" # with -jobs, libFuzzer writes fuzz-N.log files into the current folder
  MOONGATE_HOME="$root" "$out/tokenizer_fuzz" "$@" "$corpus"
fi
