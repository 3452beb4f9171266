#!/usr/bin/env bash
# The exact cache through the real gateway: a hit never reaches the upstream (the mock's own
# call counter says so), tenant B never gets tenant A's answer, only reproducible requests are
# cached, Cache-Control no-cache / no-store, failures are not kept, the header on every answer,
# spans and metrics of a hit, the admin flush per tenant, and the shared tier across 2 workers.
. "$(dirname "$0")/lib/gateway.bash"
unset MOONGATE_ADMIN_KEY

start_mock up
cp "$(cd "$(dirname "$0")/../.." && pwd)/pipelines/route.lua" "$GW_TMP/route.lua"
cat > "$GW_TMP/conf.lua" <<LUA
return {
  route_policy = "$GW_TMP/route.lua",
  providers = { up = { kind = "mock", base_url = "$MOCK_up_URL" } },
  models = {
    default = { route = { { provider = "up", model = "m1", timeout = 3 } } },
    classify = { route = { { provider = "up", model = "m1", timeout = 3 } }, cache = { idempotent = true } },
    nocache = { route = { { provider = "up", model = "m1", timeout = 3 } }, cache = false },
  },
  prices = { m1 = { input = 1, output = 2 } },
  auth = { keys = { ["sk-a"] = "team-a", ["sk-b"] = "team-b" }, admin_key = "sk-admin" },
  cache = { exact = { ttl = 600, max_entries = 100 } },
  breaker = { failures = 1000 },
}
LUA
start_gateway "$GW_TMP/conf.lua"
A=(-H "authorization: Bearer sk-a")
B=(-H "authorization: Bearer sk-b")
ADM=(-H "authorization: Bearer sk-admin")
calls() { mock_stat "$MOCK_up" chat; }
Q='{"model":"default","temperature":0,"messages":[{"role":"user","content":"what is two plus two"}]}'

# --- hit, miss, tenants ----------------------------------------------------------------------------
chat "$Q" "${A[@]}"
check "first ask: miss, answered upstream" "$STATUS $(header x-moongate-cache) $(calls)" "200 miss 1"
FIRST_ID=$(json_field "d['id']")
chat "$Q" "${A[@]}"
check "same ask: hit, upstream not called" "$STATUS $(header x-moongate-cache) $(header x-moongate-cache-kind) $(calls)" "200 hit exact 1"
check "the hit is the first answer" "$(json_field "d['id']") $(json_field "d['choices'][0]['message']['content']")" \
  "$FIRST_ID mock answer: what is two plus two"
chat "$Q" "${B[@]}"
check "tenant B, same request: miss, its own upstream call" "$STATUS $(header x-moongate-cache) $(calls)" "200 miss 2"
check "tenant B got its own answer, not A's" "$([ "$(json_field "d['id']")" != "$FIRST_ID" ] && echo own)" "own"
chat '{"messages":[{"content":"what is two plus two","role":"user"}],"temperature":0,"model":"default"}' "${A[@]}"
check "keys in another order: the same request, hit" "$(header x-moongate-cache) $(json_field "d['id']") $(calls)" "hit $FIRST_ID 2"
chat '{"model":"default","temperature":0,"max_tokens":5,"messages":[{"role":"user","content":"what is two plus two"}]}' "${A[@]}"
check "another max_tokens: another key, miss" "$(header x-moongate-cache) $(calls)" "miss 3"
chat '{"model":"default","temperature":0,"stop":["."],"messages":[{"role":"user","content":"what is two plus two"}]}' "${A[@]}"
check "another stop: miss" "$(header x-moongate-cache) $(calls)" "miss 4"

# --- only reproducible answers ---------------------------------------------------------------------
R='{"model":"default","temperature":0.7,"messages":[{"role":"user","content":"a poem"}]}'
chat "$R" "${A[@]}"; chat "$R" "${A[@]}"
check "temperature 0.7: bypass, both asked upstream" "$(header x-moongate-cache) $(calls)" "bypass 6"
S='{"model":"default","temperature":0.7,"seed":42,"messages":[{"role":"user","content":"a poem"}]}'
chat "$S" "${A[@]}"; chat "$S" "${A[@]}"
check "a seed: miss then hit" "$(header x-moongate-cache) $(calls)" "hit 7"
I='{"model":"classify","messages":[{"role":"user","content":"spam or not: win a prize"}]}'
chat "$I" "${A[@]}"; chat "$I" "${A[@]}"
check "an idempotent model, no temperature: hit" "$(header x-moongate-cache) $(calls)" "hit 8"
N='{"model":"nocache","temperature":0,"messages":[{"role":"user","content":"x"}]}'
chat "$N" "${A[@]}"; chat "$N" "${A[@]}"
check "a model with cache = false: bypass" "$(header x-moongate-cache) $(calls)" "bypass 10"

# --- Cache-Control ---------------------------------------------------------------------------------
chat "$Q" "${A[@]}" -H 'cache-control: no-cache'
check "no-cache: bypass, asked upstream" "$(header x-moongate-cache) $(calls)" "bypass 11"
NEW_ID=$(json_field "d['id']")
chat "$Q" "${A[@]}"
check "no-cache stored its answer: the next ask gets it" "$(header x-moongate-cache) $(json_field "d['id']") $(calls)" "hit $NEW_ID 11"
NS='{"model":"default","temperature":0,"messages":[{"role":"user","content":"secret question"}]}'
chat "$NS" "${A[@]}" -H 'Cache-Control: max-age=0, no-store'
check "no-store: bypass" "$(header x-moongate-cache) $(calls)" "bypass 12"
chat "$NS" "${A[@]}"
check "no-store kept nothing: the next ask is a miss" "$(header x-moongate-cache) $(calls)" "miss 13"

# --- failures are not kept -------------------------------------------------------------------------
F='{"model":"default","temperature":0,"messages":[{"role":"user","content":"fails once"}]}'
chat "$F" "${A[@]}" -H 'x-mock-fault: status=400'
check "an upstream 400: the error, marked miss" "$STATUS $(header x-moongate-cache)" "400 miss"
chat "$F" "${A[@]}"
check "the error was not cached: asked again" "$STATUS $(header x-moongate-cache) $(calls)" "200 miss 15"
chat '{"model":"default","messages":"nope"}' "${A[@]}"
check "a bad request still says bypass" "$STATUS $(header x-moongate-cache)" "400 bypass"

# --- streams ---------------------------------------------------------------------------------------
ST='{"model":"default","temperature":0,"stream":true,"messages":[{"role":"user","content":"stream me"}]}'
chat "$ST" "${A[@]}"
check "a stream: miss" "$STATUS $(header x-moongate-cache) $(tail -c 15 "$OUT" | tr -d '\n')" "200 miss data: [DONE]"
chat '{"model":"default","temperature":0,"messages":[{"role":"user","content":"stream me"}]}' "${A[@]}"
check "the stream's answer serves a plain request" \
  "$(header x-moongate-cache) $(json_field "d['object']") $(json_field "d['choices'][0]['message']['content']") $(calls)" \
  "hit chat.completion mock answer: stream me 16"
chat "$ST" "${A[@]}"
check "and a stream again, replayed" "$(header x-moongate-cache) $(grep -c '^data: ' "$OUT") $(tail -c 15 "$OUT" | tr -d '\n')" \
  "hit 4 data: [DONE]"

# --- spans and metrics -----------------------------------------------------------------------------
chat "$Q" "${A[@]}" -H "x-request-id: cachehit00000000000000000000001"
check "hit" "$(header x-moongate-cache)" "hit"
for _ in $(seq 1 40); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "${ADM[@]}" "$GW/admin/traces/cachehit00000000000000000000001")" = 200 ] && break
  sleep 0.1
done
curl -s "${ADM[@]}" "$GW/admin/traces/cachehit00000000000000000000001" -o "$OUT"
check "the hit's spans: a cache span, savings on the root, no upstream span" "$(python3 - "$OUT" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
def attrs(s): return {a["key"]: list(a["value"].values())[0] for a in s["attributes"]}
names = [s["name"] for s in d["spans"]]
c = attrs([s for s in d["spans"] if s["name"] == "cache"][0])
ids = {s["spanId"] for s in d["spans"]}
r = attrs([s for s in d["spans"] if s.get("parentSpanId") not in ids][0])
print(c["moongate.cache.result"], c["moongate.cache.kind"], c["moongate.cache.tier"],
      r["moongate.cache.result"], r["moongate.cache.saved_input_tokens"], r["moongate.cache.saved_output_tokens"],
      r["moongate.cache.saved_cost"], any(n.startswith("chat ") for n in names))
PY
)" "hit exact local hit 11 8 2.7e-05 False"
sleep 1.2   # metrics are flushed to the shared dict once a second
curl -s "${ADM[@]}" "$GW/metrics" -o "$OUT"
metric() { grep -F "$1" "$OUT" | awk '{print $2}'; }
check "metrics: exact hits, misses, bypasses" \
  "$(metric 'moongate_cache_requests_total{cache="exact",result="hit"}') $(metric 'moongate_cache_requests_total{cache="exact",result="miss"}') $(metric 'moongate_cache_requests_total{cache="exact",result="bypass"}')" \
  "8 10 4"
check "metrics: tokens saved (input) are counted" "$(metric 'moongate_cache_saved_tokens_total{cache="exact",direction="input"}' | awk '{print ($1 > 0) ? "yes" : "no"}')" "yes"

# --- the admin flush -------------------------------------------------------------------------------
post /admin/cache/flush '{"tenant":"team-a"}' "${A[@]}"
check "flush needs the admin key" "$STATUS" "403"
post /admin/cache/flush '{}' "${ADM[@]}"
check "flush without a tenant: 400" "$STATUS $(json_field "d['error']['code']")" "400 invalid_request"
post /admin/cache/flush '{"tenant":"team-a"}' "${ADM[@]}"
check "flush team-a" "$STATUS $(json_field "d['tenant']")" "200 team-a"
before=$(calls)
chat "$Q" "${A[@]}"
check "team-a after its flush: miss" "$(header x-moongate-cache) $(( $(calls) - before ))" "miss 1"
chat "$Q" "${B[@]}"
check "team-b kept its entries: hit" "$(header x-moongate-cache) $(( $(calls) - before ))" "hit 1"

# --- a new routing policy version: new keys ---------------------------------------------------------
V1=$(header x-moongate-route-version)
echo "-- a new version of the policy" >> "$GW_TMP/route.lua"
for _ in $(seq 1 50); do
  chat "$Q" "${B[@]}"
  [ "$(header x-moongate-route-version)" != "$V1" ] && break
  sleep 0.1
done
check "the policy changed: the same request is a miss under the new version" \
  "$(header x-moongate-cache) $([ "$(header x-moongate-route-version)" != "$V1" ] && echo new-version)" "miss new-version"
chat "$Q" "${B[@]}"
check "and a hit again after that" "$(header x-moongate-cache)" "hit"
stop_gateway

# --- a hit spends no tokens: the quota gets back what it reserved ----------------------------------
sed 's/^  breaker = { failures = 1000 },/  breaker = { failures = 1000 }, quota = { tokens_in_per_min = 40 },/' "$GW_TMP/conf.lua" > "$GW_TMP/quota.lua"
start_gateway "$GW_TMP/quota.lua"
QQ='{"model":"default","temperature":0,"messages":[{"role":"user","content":"what is two plus two"}]}'
# the header is the budget left once this request's 12 estimated tokens are reserved; the miss is
# reconciled to the 11 the upstream reported. Without the refund the third hit would be refused.
chat "$QQ" "${A[@]}"
check "a miss reserves its input tokens" "$STATUS $(header x-moongate-cache) $(header x-ratelimit-remaining-tokens)" "200 miss 28"
for i in 1 2 3 4 5; do chat "$QQ" "${A[@]}"; echo "$STATUS" >> "$GW_TMP/quota_status"; done
check "five hits all answered, each given its reservation back" \
  "$(sort -u "$GW_TMP/quota_status") $(header x-moongate-cache) $(header x-ratelimit-remaining-tokens)" "200 hit 17"
stop_gateway

# --- the shared tier across 2 workers --------------------------------------------------------------
mock_reset "$MOCK_up"
: > "$GW_TMP/gateway.log"
start_gateway "$GW_TMP/conf.lua" --workers 2
W='{"model":"default","temperature":0,"messages":[{"role":"user","content":"shared between workers"}]}'
for i in $(seq 1 30); do   # a new connection each: SO_REUSEPORT spreads them over both workers
  chat "$W" "${A[@]}"
  echo "$(header x-moongate-cache)" >> "$GW_TMP/results"
done
PIDS=$(grep '"msg":"request"' "$GW_TMP/gateway.log" | grep -o '"pid":[0-9]*' | sort -u | wc -l)
check "30 asks over 2 workers: 1 miss, 29 hits, 1 upstream call" \
  "$(grep -c miss "$GW_TMP/results") $(grep -c hit "$GW_TMP/results") $(calls) $PIDS" "1 29 1 2"
finish
