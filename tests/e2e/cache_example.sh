#!/usr/bin/env bash
# docs/caches.md's example, as written: examples/caches/moongate.lua in front of `moongate mock`,
# and the answers the page shows (exact hit, semantic hit, a look-alike's miss, the flush).
. "$(dirname "$0")/lib/gateway.bash"
start_mock local
export MOCK_URL=$MOCK_local_URL
start_gateway "$(cd "$(dirname "$0")/../.." && pwd)/examples/caches/moongate.lua"
A=(-H "authorization: Bearer sk-a")
ask() { chat "{\"model\":\"$1\",$2\"messages\":[{\"role\":\"user\",\"content\":\"$3\"}]}" "${A[@]}"; }
answer() { json_field "d['choices'][0]['message']['content']"; }

ask default '"temperature":0,' "What is the capital of France?"
check "exact: first ask" "$(header x-moongate-cache)" "miss"
ask default '"temperature":0,' "What is the capital of France?"
check "exact: again" "$(header x-moongate-cache) $(header x-moongate-cache-kind)" "hit exact"
ask faq "" "How do I reset my password?"
ask faq "" "What is the way to reset my password?"
check "semantic: a paraphrase" "$(header x-moongate-cache) $(header x-moongate-cache-kind) $(answer)" \
  "hit semantic mock answer: How do I reset my password?"
ask faq "" "How do I not reset my password?"
check "semantic: a negation is another question" "$(header x-moongate-cache)" "miss"
ask chat '"temperature":0,' "hi"
check "cache = false" "$(header x-moongate-cache)" "bypass"
post /admin/cache/flush '{"tenant":"team-a"}' -H "authorization: Bearer sk-admin"
check "flush" "$(cat "$OUT")" '{"flushed":5,"tenant":"team-a"}'
ask default '"temperature":0,' "What is the capital of France?"
check "after the flush" "$(header x-moongate-cache)" "miss"
finish
