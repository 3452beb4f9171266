#!/usr/bin/env bash
# Quotas are exact, not "limit x workers": 2 workers, 2,000 requests fired 32 at a time at a
# limit of 1,000 per minute — exactly 1,000 are answered and 1,000 get 429 with Retry-After and
# OpenAI's x-ratelimit-* headers; token budgets refuse before the upstream is called; caps.
. "$(dirname "$0")/lib/gateway.bash"
command -v node >/dev/null || { echo "skip: no node"; exit 77; }

start_mock p1
cat > "$GW_TMP/conf.lua" <<LUA
return {
  providers = { p1 = { kind = "mock", base_url = "$MOCK_p1_URL" } },
  models = { default = { route = { { provider = "p1", model = "m1" } } } },
  auth = { keys = { ["sk-burst"] = "burst", ["sk-tok"] = "tok", ["sk-cap"] = "cap", ["sk-trunc"] = "trunc",
                    ["sk-free"] = "free" } },
  tenants = {
    burst = { quota = { rpm = 1000 } },
    tok = { quota = { rpm = 10, tokens_in_per_min = 40 } },
    cap = { caps = { max_input_tokens = 20, max_output_tokens = 50, on_exceed = "refuse" } },
    trunc = { caps = { max_input_tokens = 30, max_output_tokens = 5, on_exceed = "truncate" } },
  },
}
LUA
start_gateway "$GW_TMP/conf.lua" --workers 2

RESULT=$(GW="$GW" node - <<'JS'
const url = process.env.GW + "/v1/models";
const counts = {}; let retryAfter = 0, headers = 0, next = 0;
async function worker() {
  while (next < 2000) {
    next++;
    const r = await fetch(url, { headers: { authorization: "Bearer sk-burst" } });
    await r.arrayBuffer();
    counts[r.status] = (counts[r.status] || 0) + 1;
    if (r.status === 429 && Number(r.headers.get("retry-after")) >= 1) retryAfter++;
    if (r.headers.get("x-ratelimit-limit-requests") === "1000") headers++;
  }
}
await Promise.all(Array.from({ length: 32 }, worker));
console.log(`${counts[200] || 0} ${counts[429] || 0} ${retryAfter} ${headers}`);
JS
)
check "2 workers, 2000 requests at 1000/min: exactly 1000 answered, 1000 refused" "${RESULT% * *}" "1000 1000"
check "every refusal says when to retry, every answer carries the limit" "${RESULT#* * }" "1000 2000"
curl -s -D "$HDR" -o "$OUT" -H 'authorization: Bearer sk-burst' "$GW/v1/models"
check "the refusal: 429 in OpenAI's shape" "$(json_field "d['error']['code'], d['error']['type']")" "rate_limit_exceeded rate_limit_error"
check "x-ratelimit-remaining-requests at 0" "$(header x-ratelimit-remaining-requests)" 0
check "another tenant is not limited" "$(curl -s -o /dev/null -w '%{http_code}' -H 'authorization: Bearer sk-free' "$GW/v1/models")" 200

# tokens in per minute: counted with the tokenizer before the call
LONG='{"model":"default","messages":[{"role":"user","content":"one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty"}]}'
mock_reset "$MOCK_p1"
chat "$LONG" -H 'authorization: Bearer sk-tok'
check "tokens: the first prompt fits" "$STATUS $(header x-ratelimit-limit-tokens)" "200 40"
REM=$(header x-ratelimit-remaining-tokens)
chat "$LONG" -H 'authorization: Bearer sk-tok'
check "tokens: the second does not: 429 before the upstream is called" "$STATUS $(mock_stat "$MOCK_p1" requests)" "429 1"
check "tokens: the message says what it needs" "$(json_field "d['error']['message'].startswith('rate limit reached for tokens: 40 per minute, this request needs ')")" True
check "tokens: what is left is what the first did not use" "$(( 40 - REM > 20 ))" 1
check "tokens: the refused request used none of the tenant's requests a minute" "$(header x-ratelimit-remaining-requests)" 9
chat '{"model":"default","messages":[{"role":"user","content":"hi"}]}' -H 'authorization: Bearer sk-tok'
check "tokens: a short one still fits, the second request counted" "$STATUS $(header x-ratelimit-remaining-requests)" "200 8"

# caps: refuse
chat "$LONG" -H 'authorization: Bearer sk-cap'
check "cap refuse: a long prompt" "$STATUS $(json_field "d['error']['code']")" "400 input_tokens_exceeded"
chat '{"model":"default","max_tokens":500,"messages":[{"role":"user","content":"hi"}]}' -H 'authorization: Bearer sk-cap'
check "cap refuse: max_tokens over the cap" "$STATUS $(json_field "d['error']['message']")" "400 max_tokens is 500; this tenant's limit is 50"
# caps: truncate — the oldest turns go, max_tokens is lowered, the answer is cut at 5 tokens
chat '{"model":"default","max_tokens":500,"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen"},{"role":"assistant","content":"ok"},{"role":"user","content":"say something long please"}]}' -H 'authorization: Bearer sk-trunc'
check "cap truncate: answered, cut to 5 tokens" "$STATUS $(json_field "d['choices'][0]['finish_reason'], d['usage']['completion_tokens'] <= 5") $(header x-moongate-truncated)" "200 length True input"

# caps alone, at the top of a config with no tenants and no quota, still hold
stop_gateway
cat > "$GW_TMP/caps.lua" <<LUA
return { providers = { p1 = { kind = "mock", base_url = "$MOCK_p1_URL" } },
         models = { default = { route = { { provider = "p1", model = "m1" } } } },
         caps = { max_input_tokens = 20, max_output_tokens = 50, on_exceed = "refuse" } }
LUA
start_gateway "$GW_TMP/caps.lua"
chat "$LONG"
check "top-level caps: a long prompt refused" "$STATUS $(json_field "d['error']['code']")" "400 input_tokens_exceeded"
chat '{"model":"default","max_tokens":500,"messages":[{"role":"user","content":"hi"}]}'
check "top-level caps: max_tokens over the cap refused" "$STATUS $(json_field "d['error']['code']")" "400 output_tokens_exceeded"
finish
