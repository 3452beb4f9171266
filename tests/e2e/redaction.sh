#!/usr/bin/env bash
# Redaction before prompting, end to end: the mock upstream answers "mock answer: <the prompt it
# received>", so what it saw is in its answer. A masking tenant's card and email never reach it;
# a placeholder tenant's do not either, yet its non-streamed answer has them put back; a refusing
# tenant gets 400 pii_detected and the upstream is not called.
. "$(dirname "$0")/lib/gateway.bash"

start_mock p1
cat > "$GW_TMP/conf.lua" <<LUA
return {
  providers = { p1 = { kind = "mock", base_url = "$MOCK_p1_URL" } },
  models = { default = { route = { { provider = "p1", model = "m1" } } } },
  auth = { keys = { ["sk-mask"] = "masker", ["sk-ph"] = "holder", ["sk-no"] = "refuser", ["sk-raw"] = "raw" } },
  tenants = { masker = { redaction = { mode = "mask" } }, holder = { redaction = { mode = "placeholder" } },
              refuser = { redaction = { mode = "refuse" } }, raw = {} },
}
LUA
start_gateway "$GW_TMP/conf.lua"
Q='{"model":"default","messages":[{"role":"user","content":"Refund card 4111 1111 1111 1111 and mail jane@example.com"}]}'
answer() { json_field "d['choices'][0]['message']['content']"; }

chat "$Q" -H 'authorization: Bearer sk-mask'
check "mask: the upstream saw no card, no email" "$STATUS $(answer)" "200 mock answer: Refund card [CARD] and mail [EMAIL]"
check "mask: the count is in a header" "$(header x-moongate-redactions)" 2

chat "$Q" -H 'authorization: Bearer sk-ph'
check "placeholder: the caller gets its own values back" "$STATUS $(answer)" "200 mock answer: Refund card 4111 1111 1111 1111 and mail jane@example.com"
chat "${Q%\}}, \"stream\": true}" -H 'authorization: Bearer sk-ph'
check "placeholder: what the upstream saw (a stream is not restored)" \
  "$(grep -o 'CARD_1\|EMAIL_1\|4111\|jane' "$OUT" | sort -u | tr '\n' ' ')" "CARD_1 EMAIL_1 "

mock_reset "$MOCK_p1"
chat "$Q" -H 'authorization: Bearer sk-no'
check "refuse: 400 pii_detected, naming the kinds" "$STATUS $(json_field "d['error']['code'], d['error']['message']")" \
  "400 pii_detected the request contains personal data this tenant may not send (card, email)"
check "refuse: the upstream was not called" "$(mock_stat "$MOCK_p1" requests)" 0

chat "$Q" -H 'authorization: Bearer sk-raw'
check "a tenant without a redaction policy: untouched" "$(answer)" "mock answer: Refund card 4111 1111 1111 1111 and mail jane@example.com"

# index-time: masked before it is stored, so no search can return it
printf '%s\n' '{"_id":"t1","title":"Ticket from jane@example.com","text":"The refund for card 4111 1111 1111 1111 was approved; reply to jane@example.com."}' > "$GW_TMP/tickets.jsonl"
"$MOONGATE" index --quiet --redact mask --embedder hash --index "$GW_TMP/idx" "$GW_TMP/tickets.jsonl" > /dev/null
HITS=$("$MOONGATE" search --index "$GW_TMP/idx" --format json "refund card approved jane")
check "indexed with --redact mask: found, masked" "$(echo "$HITS" | grep -c 'refund for card \[CARD\] was approved; reply to \[EMAIL\]')" 1
check "no raw value anywhere in the index" "$(cat "$GW_TMP"/idx/index.sqlite* "$GW_TMP"/idx/v*/* 2>/dev/null | grep -a -c '4111 1111\|jane@example')" 0
"$MOONGATE" index --redact placeholder --index "$GW_TMP/idx2" "$GW_TMP/tickets.jsonl" > /dev/null 2>"$GW_TMP/err"
check "--redact takes mask only" "$? $(head -1 "$GW_TMP/err")" "2 moongate index: --redact takes mask"
finish
