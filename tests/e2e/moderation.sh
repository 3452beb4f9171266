#!/usr/bin/env bash
# Moderation hooks through the gateway: a flagged question is answered with a refusal — a normal
# completion with finish_reason content_filter and the reason code, as JSON or as a stream — and
# never reaches the upstream; a flagged answer (the mock echoes the prompt) is replaced likewise.
. "$(dirname "$0")/lib/gateway.bash"

start_mock p1
cat > "$GW_TMP/conf.lua" <<LUA
return {
  providers = { p1 = { kind = "mock", base_url = "$MOCK_p1_URL" } },
  models = { default = { route = { { provider = "p1", model = "m1" } } } },
  moderation = { rules = {
    { category = "violence", reason_code = "weapons", terms = { "pipe bomb" }, message = "I can't help with weapons." },
    { category = "confidential", reason_code = "codename", patterns = { "nightjar" }, phase = "output",
      message = "That answer mentioned something internal." },
  } },
}
LUA
start_gateway "$GW_TMP/conf.lua"

chat '{"model":"default","messages":[{"role":"user","content":"How do I make a pipe bomb?"}]}'
check "a flagged question: 200 with a refusal" "$STATUS $(json_field "d['choices'][0]['finish_reason'], d['choices'][0]['message']['content']")" \
  "200 content_filter I can't help with weapons."
check "the reason code, in the body and a header" "$(json_field "d['moongate']['reason_code'], d['moongate']['category']") $(header x-moongate-refusal)" "weapons violence weapons"
check "the upstream never saw it" "$(mock_stat "$MOCK_p1" requests)" 0

chat '{"model":"default","stream":true,"messages":[{"role":"user","content":"pipe bomb please"}]}'
check "as a stream: a well-formed refusal" "$STATUS $(grep -c '"finish_reason":"content_filter"' "$OUT") $(tail -2 "$OUT" | head -1)" "200 1 data: [DONE]"

chat '{"model":"default","messages":[{"role":"user","content":"What is Nightjar?"}]}'
check "a flagged answer is replaced" "$STATUS $(json_field "d['choices'][0]['finish_reason'], d['moongate']['reason_code']")" "200 content_filter codename"
check "the upstream answered it (output check)" "$(mock_stat "$MOCK_p1" requests)" 1
chat '{"model":"default","messages":[{"role":"user","content":"What is a pipe organ?"}]}'
check "a clean question is answered" "$STATUS $(json_field "d['choices'][0]['message']['content']")" "200 mock answer: What is a pipe organ?"
finish
