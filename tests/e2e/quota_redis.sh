#!/usr/bin/env bash
# Quotas shared across machines: two `moongate serve` instances (2 workers each) on one real
# redis-server share one limit exactly — 400 requests fired 32 at a time across both at 150 per
# minute: exactly 150 answered, 250 refused with 429, Retry-After and OpenAI's headers; a token
# budget and a concurrency limit are shared too. With Redis stopped, each instance does what its
# on_error says: "deny" answers 503 quota_store_unavailable, "allow" serves, counts and logs it.
. "$(dirname "$0")/lib/gateway.bash"
. "$(dirname "$0")/lib/redis.bash"
command -v node >/dev/null || { echo "skip: no node"; exit 77; }

start_redis
start_mock p1
conf() {   # conf ON_ERROR -> a config on the shared Redis
  cat <<LUA
return {
  providers = { p1 = { kind = "mock", base_url = "$MOCK_p1_URL" } },
  models = { default = { route = { { provider = "p1", model = "m1" } } } },
  auth = { keys = { ["sk-burst"] = "burst", ["sk-tok"] = "tok", ["sk-conc"] = "conc" }, admin_key = "sk-admin" },
  quota = { backend = "$REDIS_URL", on_error = "$1", timeout = 0.5 },
  tenants = {
    burst = { quota = { rpm = 150 } },
    tok = { quota = { tokens_in_per_min = 40 } },
    conc = { quota = { concurrent = 3 } },
  },
}
LUA
}
conf deny > "$GW_TMP/a.lua"
conf allow > "$GW_TMP/b.lua"
start_gateway "$GW_TMP/a.lua" --workers 2; GW_A=$GW
start_gateway "$GW_TMP/b.lua" --workers 2; GW_B=$GW

# the burst must fall in one minute window (aligned on Redis's clock): not too close to its end
into_window() { local s=$(( $(rcli time | head -1) % 60 )); [ "$s" -lt 45 ] || sleep $((61 - s)); }
into_window
RESULT=$(GW_A="$GW_A" GW_B="$GW_B" node - <<'JS'
const urls = [process.env.GW_A + "/v1/models", process.env.GW_B + "/v1/models"];
const counts = {}, byInstance = [0, 0]; let retryAfter = 0, headers = 0, next = 0;
async function worker() {
  while (next < 400) {
    const i = next++ % 2;
    const r = await fetch(urls[i], { headers: { authorization: "Bearer sk-burst" } });
    await r.arrayBuffer();
    counts[r.status] = (counts[r.status] || 0) + 1;
    if (r.status === 200) byInstance[i]++;
    if (r.status === 429 && Number(r.headers.get("retry-after")) >= 1 &&
        r.headers.get("x-ratelimit-remaining-requests") === "0") retryAfter++;
    if (r.headers.get("x-ratelimit-limit-requests") === "150") headers++;
  }
}
await Promise.all(Array.from({ length: 32 }, worker));
console.log(`${counts[200] || 0} ${counts[429] || 0} ${retryAfter} ${headers} ${byInstance[0] > 0 && byInstance[1] > 0}`);
JS
)
read -r OK REFUSED RETRY HEADERS BOTH <<< "$RESULT"
check "2 instances x 2 workers, 400 requests at 150/min: exactly 150 answered, 250 refused" "$OK $REFUSED" "150 250"
check "both instances answered some of the 150" "$BOTH" true
check "every refusal has Retry-After and remaining 0, every answer the limit" "$RETRY $HEADERS" "250 400"
GW=$GW_B
curl -s -D "$HDR" -o "$OUT" -H 'authorization: Bearer sk-burst' "$GW/v1/models"
check "the refusal on the other instance: 429 in OpenAI's shape" \
  "$(json_field "d['error']['code'] + ' / ' + d['error']['message']")" "rate_limit_exceeded / rate limit reached for requests: 150 per minute"
check "the counter is in Redis, with its window's TTL" \
  "$(rcli --scan --pattern 'mgq:r:burst:*' | wc -l) $(( $(rcli ttl "$(rcli --scan --pattern 'mgq:r:burst:*')") <= 61 ))" "1 1"

# a token budget: the prompt counted on A leaves too little for B
LONG='{"model":"default","messages":[{"role":"user","content":"one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty"}]}'
GW=$GW_A; chat "$LONG" -H 'authorization: Bearer sk-tok'
check "tokens: the first prompt fits on A" "$STATUS $(header x-ratelimit-limit-tokens)" "200 40"
GW=$GW_B; chat "$LONG" -H 'authorization: Bearer sk-tok'
check "tokens: the second, on B, is refused before the upstream is called" "$STATUS $(mock_stat "$MOCK_p1" requests)" "429 1"

# concurrency: 3 slots across both instances; 8 slow calls at once -> 3 answered
mock_fault "$MOCK_p1" "latency=1500"
SHORT='{"model":"default","messages":[{"role":"user","content":"hi"}]}'
for i in 1 2 3 4 5 6 7 8; do
  g=$([ $((i % 2)) = 0 ] && echo "$GW_A" || echo "$GW_B")
  curl -s -o /dev/null -w '%{http_code}\n' "$g/v1/chat/completions" -H 'authorization: Bearer sk-conc' \
    -H 'content-type: application/json' -d "$SHORT" >> "$GW_TMP/conc" &
done
wait_codes() { for _ in $(seq 1 100); do [ "$(wc -l < "$GW_TMP/conc")" -ge 8 ] && return; sleep 0.05; done; }
wait_codes
check "concurrency 3 across both instances: 3 answered, 5 refused" "$(sort "$GW_TMP/conc" | uniq -c | awk '{print $2":"$1}' | xargs)" "200:3 429:5"
mock_fault "$MOCK_p1" ""
sleep 0.3   # the slots are given back by a task after each answer
check "every slot was given back" "$(rcli get mgq:c:conc)" 0

# Redis down: A (on_error = "deny") refuses with 503, B (on_error = "allow") serves, unmetered
stop_redis
GW=$GW_A; curl -s -D "$HDR" -o "$OUT" -H 'authorization: Bearer sk-burst' "$GW/v1/models"
check "redis down, deny: 503 quota_store_unavailable" \
  "$(head -1 "$HDR" | cut -d' ' -f2) $(json_field "d['error']['code'] + ' / ' + d['error']['message']")" \
  "503 quota_store_unavailable / the quota store is unavailable"
GW=$GW_B; curl -s -D "$HDR" -o "$OUT" -H 'authorization: Bearer sk-burst' "$GW/v1/models"
check "redis down, allow: served, marked unmetered" "$(head -1 "$HDR" | cut -d' ' -f2) $(header x-moongate-quota)" "200 unmetered"
sleep 1.2   # each worker adds its counts to the shared figures once a second
curl -s -H 'authorization: Bearer sk-admin' "$GW_B/metrics" -o "$GW_TMP/metrics"
check "redis down, allow: counted in a metric" \
  "$(grep -F 'moongate_quota_store_errors_total{policy="allow"} ' "$GW_TMP/metrics" | awk '{print $NF}')" 1
check "redis down: a log line says why" \
  "$(grep '"msg":"quota store unavailable"' "$GW_TMP/gateway.log" | grep -c '"policy":"allow"') $(grep '"msg":"quota store unavailable"' "$GW_TMP/gateway.log" | grep -c '"policy":"deny"')" "1 1"
check "no instance crashed" "$(kill -0 "${GW_PIDS[2]}" && kill -0 "${GW_PIDS[3]}" && echo alive)" alive

# Redis back (empty): both instances count again, from zero
start_redis
into_window
GW=$GW_A; curl -s -D "$HDR" -o "$OUT" -H 'authorization: Bearer sk-burst' "$GW/v1/models"
check "redis back: A counts again" "$(head -1 "$HDR" | cut -d' ' -f2) $(header x-ratelimit-remaining-requests)" "200 149"
GW=$GW_B; curl -s -D "$HDR" -o "$OUT" -H 'authorization: Bearer sk-burst' "$GW/v1/models"
check "redis back: B shares the same counter" "$(head -1 "$HDR" | cut -d' ' -f2) $(header x-ratelimit-remaining-requests)" "200 148"
# docs/quota.md's example: examples/quota/redis.lua on two instances, rpm 3 across both
rcli flushall >/dev/null
MOCK_URL=$MOCK_p1_URL REDIS_URL=$REDIS_URL start_gateway "$(dirname "$0")/../../examples/quota/redis.lua"; EX_A=$GW
MOCK_URL=$MOCK_p1_URL REDIS_URL=$REDIS_URL start_gateway "$(dirname "$0")/../../examples/quota/redis.lua"; EX_B=$GW
into_window
for g in "$EX_A" "$EX_B" "$EX_A" "$EX_B"; do
  curl -s -o /dev/null -w '%{http_code}\n' "$g/v1/models" -H 'authorization: Bearer sk-a'
done > "$GW_TMP/example"
check "the docs' example: 3 answered across both instances, the 4th refused" "$(xargs < "$GW_TMP/example")" "200 200 200 429"
finish
