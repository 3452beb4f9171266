#!/usr/bin/env bash
# The gateway in front of two `moongate mock` upstreams: each fault on the primary falls back to the
# secondary within the deadline; with both failing, the exact error status; request validation.
. "$(dirname "$0")/lib/gateway.bash"

start_mock p1
start_mock p2

# --- the shipped example, as documented ------------------------------------------------------
MOONGATE_PRIMARY_URL=$MOCK_p1_URL MOONGATE_SECONDARY_URL=$MOCK_p2_URL \
  start_gateway "$MOONGATE_HOME/examples/fallback/moongate.lua"
Q='{"model":"default","messages":[{"role":"user","content":"hello there"}]}'
chat "$Q"
check "example: status" "$STATUS" 200
check "example: answer" "$(json_field "d['choices'][0]['message']['content']")" "mock answer: hello there"
check "example: provider" "$(header x-moongate-provider)" primary
check "example: upstream model" "$(header x-moongate-model)" gpt-4o-mini
check "example: attempts" "$(header x-moongate-attempts)" 1
check "example: request id" "$(header x-request-id | wc -c | tr -d ' ')" 33
check_lt "example: overhead header" "$(header x-moongate-overhead-ms)" 50
chat "$Q" -H 'x-mock-fault: status=503,target=p1'
check "example: primary 503 -> secondary" "$STATUS $(header x-moongate-provider) $(header x-moongate-attempts)" "200 secondary 2"
chat "$Q" -H 'x-mock-fault: status=503'
check "example: both 503 -> 502" "$STATUS" 502
check "example: 502 shape" "$(json_field "d['error']['code'], d['error']['type']")" "upstream_error upstream_error"
stop_gateway

# --- every fault, with a breaker that stays closed ---------------------------------------------
cat > "$GW_TMP/conf.lua" <<LUA
return {
  providers = {
    primary = { kind = "mock", base_url = "$MOCK_p1_URL" },
    secondary = { kind = "mock", base_url = "$MOCK_p2_URL" },
  },
  models = {
    default = { route = { { provider = "primary", model = "m1", timeout = 1 },
                          { provider = "secondary", model = "m2", timeout = 1 } }, deadline = 3 },
    solo = { route = { { provider = "primary", model = "m1", timeout = 1, attempts = 3 } }, deadline = 3 },
    slow = { route = { { provider = "primary", timeout = 5 }, { provider = "secondary", timeout = 5 } }, deadline = 0.5 },
    capped = { route = { { provider = "primary" } }, max_input_tokens = 20, max_output_tokens = 16 },
  },
  retry = { max_attempts = 3, backoff = 0.01, backoff_max = 0.05 },
  breaker = { failures = 1000 },
}
LUA
start_gateway "$GW_TMP/conf.lua"

for fault in "status=503" "status=500" "status=429,retry_after=2" "reset" "stall" "stall_first_byte=5000" "malformed"; do
  mock_reset "$MOCK_p1"; mock_reset "$MOCK_p2"
  chat "$Q" -H "x-mock-fault: $fault,target=p1"
  check "$fault on primary: answered by secondary" "$STATUS $(header x-moongate-provider) $(header x-moongate-model)" "200 secondary m2"
  check "$fault on primary: answer" "$(json_field "d['choices'][0]['message']['content']")" "mock answer: hello there"
  check "$fault on primary: one call each" "$(mock_stat "$MOCK_p1" chat) $(mock_stat "$MOCK_p2" chat)" "1 1"
  check_lt "$fault on primary: within the deadline" "$TIME" 3
done
chat "$Q" -H "x-mock-fault: latency=200"
check "latency=200 is not a failure" "$STATUS $(header x-moongate-provider)" "200 primary"
check_ge "latency=200 is upstream time, not overhead" "$TIME" 0.2
check_lt "latency=200: overhead stays small" "$(header x-moongate-overhead-ms)" 50

# both failing: the exact status
chat "$Q" -H "x-mock-fault: status=503"
check "both 503: 502" "$STATUS $(json_field "d['error']['code']")" "502 upstream_error"
chat "$Q" -H "x-mock-fault: reset"
check "both reset: 502" "$STATUS" 502
chat "$Q" -H "x-mock-fault: malformed"
check "both malformed: 502" "$STATUS" 502
chat "$Q" -H "x-mock-fault: status=429,retry_after=7"
check "both 429: 429" "$STATUS $(json_field "d['error']['code']")" "429 rate_limited"
check "both 429: Retry-After" "$(header retry-after)" 7
chat "$Q" -H "x-mock-fault: stall"
check "both stall: 504 after the per-attempt timeouts" "$STATUS $(json_field "d['error']['code']")" "504 upstream_timeout"
chat '{"model":"slow","messages":[{"role":"user","content":"x"}]}' -H "x-mock-fault: stall"
check "stall past the request deadline: 504" "$STATUS $(json_field "d['error']['code']")" "504 deadline_exceeded"
check_lt "504 at the deadline, not later" "$TIME" 1.2
check "a client error is not retried: 400 as the upstream said" \
  "$(chat "$Q" -H 'x-mock-fault: status=400'; echo "$STATUS $(mock_stat "$MOCK_p2" chat)")" "400 $(mock_stat "$MOCK_p2" chat)"

# retries on one tier: never more than the cap, with backoff
mock_reset "$MOCK_p1"
chat '{"model":"solo","messages":[{"role":"user","content":"x"}]}' -H "x-mock-fault: status=503"
check "solo tier: 502 after its attempts" "$STATUS $(header x-moongate-attempts)" "502 3"
check "solo tier: upstream calls = cap" "$(mock_stat "$MOCK_p1" chat)" 3

# streams: fallback before the first byte, error event after it
chat '{"model":"default","stream":true,"messages":[{"role":"user","content":"hello there"}]}' -H "x-mock-fault: stall_first_byte=5000,target=p1"
check "stream: stalled primary -> secondary" "$STATUS $(header x-moongate-provider)" "200 secondary"
check "stream: content-type" "$(header content-type)" "text/event-stream"
check "stream: ends with [DONE]" "$(grep -c '^data: \[DONE\]' "$OUT")" 1
check "stream: text" "$(grep '^data: {' "$OUT" | sed 's/^data: //' | python3 -c "import sys,json; print(''.join((json.loads(l)['choices'][0]['delta'].get('content') or '') for l in sys.stdin if json.loads(l)['choices']))")" "mock answer: hello there"
check "stream: usage chunk removed when not asked for" "$(grep -c '"prompt_tokens"' "$OUT")" 0
chat '{"model":"default","stream":true,"messages":[{"role":"user","content":"hello there"}]}' -H "x-mock-fault: chunk_delay=1500,target=p1"
check "stream: role chunk then a stall is no first token -> secondary" "$STATUS $(header x-moongate-provider) $(grep -c '^data: \[DONE\]' "$OUT")" "200 secondary 1"
check "stream: one role chunk only (the primary's never reached the client)" "$(grep -c '"role":"assistant"' "$OUT")" 1
chat '{"model":"default","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}'
check "stream: usage chunk kept when asked for" "$(grep -c '"prompt_tokens"' "$OUT")" 1
chat '{"model":"solo","stream":true,"messages":[{"role":"user","content":"one two three four five six"}]}' -H "x-mock-fault: cut_after=2"
check "stream cut after the first byte: 200 already sent" "$STATUS" 200
check "stream cut: no [DONE]" "$(grep -c '^data: \[DONE\]' "$OUT")" 0
check "stream cut: ends with an error event" "$(grep '^data: ' "$OUT" | tail -1 | sed 's/^data: //' | python3 -c "import sys,json; print(json.load(sys.stdin)['error']['code'])")" upstream_error
chat '{"model":"solo","stream":true,"messages":[{"role":"user","content":"x"}]}' -H "x-mock-fault: status=503"
check "stream: failure before the first byte is a real status" "$STATUS" 502

# requests moongate refuses itself
chat '{"model":"nope","messages":[{"role":"user","content":"x"}]}'
check "unknown model: 404" "$STATUS $(json_field "d['error']['code']")" "404 model_not_found"
chat '{"model":"default","messages":'
check "malformed JSON: 400" "$STATUS $(json_field "d['error']['code']")" "400 invalid_json"
chat '{"model":"default"}'
check "no messages: 400" "$STATUS" 400
chat '{"messages":[{"role":"user","content":"x"}]}'
check "no model: 400" "$STATUS $(json_field "d['error']['message']")" "400 you must provide a model parameter"
check "GET on chat: 405" "$(curl -s -o /dev/null -w '%{http_code}' "$GW/v1/chat/completions")" 405
check "unknown path: 404" "$(curl -s -o /dev/null -w '%{http_code}' "$GW/v2/nothing")" 404

# the client's Authorization never goes upstream; fields moongate does not use do
chat '{"model":"default","messages":[{"role":"user","content":"x"}],"seed":9007199254740993,"logit_bias":{"50256":-100}}' -H 'authorization: Bearer client-secret'
LAST=$(curl -s "http://$MOCK_p1/mock/last")
check "Authorization not forwarded" "$(echo "$LAST" | grep -c client-secret)" 0
check "the request id goes upstream" "$(echo "$LAST" | python3 -c "import sys,json; print(json.load(sys.stdin)['headers'].get('x-request-id'))")" "$(header x-request-id)"
check "unknown fields forwarded byte for byte" "$(echo "$LAST" | grep -c '\\"seed\\":9007199254740993,\\"logit_bias\\":{\\"50256\\":-100}')" 1

# token caps, enforced by moongate
chat '{"model":"capped","messages":[{"role":"user","content":"'"$(printf 'word %.0s' $(seq 1 40))"'"}]}'
check "prompt over max_input_tokens: 400" "$STATUS $(json_field "d['error']['code']")" "400 context_length_exceeded"
chat '{"model":"capped","max_tokens":1000,"messages":[{"role":"user","content":"short"}]}'
check "max_tokens above the cap is lowered" "$STATUS $(curl -s "http://$MOCK_p1/mock/last" | python3 -c "import sys,json; print(json.loads(json.load(sys.stdin)['body'])['max_tokens'])")" "200 16"
chat '{"model":"capped","messages":[{"role":"user","content":"short"}]}'
check "no max_tokens: the cap is set" "$(curl -s "http://$MOCK_p1/mock/last" | python3 -c "import sys,json; print(json.loads(json.load(sys.stdin)['body'])['max_tokens'])")" 16

# models and embeddings
check "GET /v1/models" "$(curl -s "$GW/v1/models" | python3 -c "import sys,json; print(sorted(m['id'] for m in json.load(sys.stdin)['data']))")" "['capped', 'default', 'slow', 'solo']"
post /v1/embeddings '{"model":"default","input":["a","b"]}'
check "embeddings: 200, two vectors" "$STATUS $(json_field "len(d['data'])")" "200 2"
post /v1/embeddings '{"model":"default","input":"a"}' -H "x-mock-fault: status=503,target=p1"
check "embeddings fall back too" "$STATUS $(header x-moongate-provider)" "200 secondary"
finish
