#!/usr/bin/env bash
# `moongate goldens generate --index DIR`: one candidate per section, with its key sentence and
# citation, in the shape `moongate eval` reads; a missing index is a clear error.
. "$(dirname "$0")/lib/gateway.bash"
export MOONGATE_INDEX_CACHE=$GW_TMP/cache
cd "$MOONGATE_HOME"
"$MOONGATE" index --index "$GW_TMP/idx" tests/data/evals/corpus >/dev/null 2>&1
"$MOONGATE" goldens generate --index "$GW_TMP/idx" -o "$GW_TMP/gen.jsonl" 2>"$GW_TMP/gen.err"
check "count" "$(cat "$GW_TMP/gen.err")" "9 candidates"
check "first" "$(head -1 "$GW_TMP/gen.jsonl")" \
  '{"doc":"tests/data/evals/corpus/bikes.md","id":"gen-bikes-chains","key":"Clean and oil the chain every two hundred kilometres.","question":"What does Bicycle care say about chains?","section":"Chains","tags":["generated"]}'
check "sections" "$(python3 -c "import json,sys; print(','.join(json.loads(l)['section'] for l in open('$GW_TMP/gen.jsonl')))")" \
  "Chains,Tyres,Brakes,Watering,Pruning,Compost,Bread,Storage,Knives"
"$MOONGATE" eval "$GW_TMP/gen.jsonl" --index "$GW_TMP/idx" --db "$GW_TMP/e.db" --quiet > "$GW_TMP/eval.out" 2>&1
check "eval reads them" "$(head -1 "$GW_TMP/eval.out" | grep -o '[0-9]* cases, [0-9]* failed')" "9 cases, 0 failed"
"$MOONGATE" goldens generate --index "$GW_TMP/none" 2>"$GW_TMP/err"
check "no index" "$? $(cat "$GW_TMP/err")" "1 moongate goldens: no index at $GW_TMP/none (build one: moongate index --index $GW_TMP/none FILES...)"
finish
