#!/usr/bin/env bash
# Spans, the trace store and /metrics end to end: a request with a fallback gives the exact span
# tree (over HTTP and in `moongate traces show`), joined to the caller's traceparent and passed on
# upstream; step budgets (an overrun is an event and a counter; enforced, the attempt is cut and
# the fallback answers); /metrics passes promtool; raw text only for a log_raw tenant and only
# with the admin key; `moongate traces` filters and `moongate stats`.
. "$(dirname "$0")/lib/gateway.bash"
command -v promtool >/dev/null || { echo "skip: no promtool (Debian's prometheus package)"; exit 77; }
export MOONGATE_DB="$GW_TMP/tenants.db"
unset MOONGATE_ADMIN_KEY
ADMIN=$("$MOONGATE" admin init 2>/dev/null)
export MOONGATE_ADMIN_KEY=$ADMIN
"$MOONGATE" tenants add acme --policy '{"log_raw":true}' >/dev/null
"$MOONGATE" tenants add globex >/dev/null
KA=$("$MOONGATE" keys create acme 2>/dev/null)
KG=$("$MOONGATE" keys create globex 2>/dev/null)
"$MOONGATE" tenants add tiny --policy '{"quota":{"rpm":1}}' >/dev/null
KT=$("$MOONGATE" keys create tiny 2>/dev/null)

start_mock p1
start_mock p2
for m in "$MOCK_p1_URL" "$MOCK_p2_URL"; do   # the mocks' first answer loads their tokenizer
  curl -s -o /dev/null "$m/chat/completions" -H 'content-type: application/json' \
    -d '{"model":"m","messages":[{"role":"user","content":"warm"}]}'
done
cat > "$GW_TMP/conf.lua" <<LUA
return {
  providers = {
    primary = { kind = "mock", base_url = "$MOCK_p1_URL" },
    secondary = { kind = "mock", base_url = "$MOCK_p2_URL" },
  },
  models = {
    default = { route = { { provider = "primary", model = "m1", timeout = 2 },
                          { provider = "secondary", model = "m2", timeout = 2 } }, deadline = 5 },
    watched = { route = { { provider = "primary", model = "m1" }, { provider = "secondary", model = "m2" } },
                budgets = { upstream = 0.05 } },
    enforced = { route = { { provider = "primary", model = "m1", timeout = 2 },
                           { provider = "secondary", model = "m2", timeout = 2 } },
                 budgets = { upstream = 0.1, enforce = true } },
  },
  breaker = { failures = 1000 },
  prices = { m1 = { input = 1, output = 2 }, m2 = { input = 3, output = 4 } },
  auth = { db = "tenants.db", cache_ttl = 0 },
}
LUA
start_gateway "$GW_TMP/conf.lua"
A=(-H "authorization: Bearer $KA")
G=(-H "authorization: Bearer $KG")
ADM=(-H "authorization: Bearer $ADMIN")
Q='{"model":"default","messages":[{"role":"user","content":"hello there"}]}'
TRACE=4bf92f3577b34da6a3ce929d0e0e4736
PARENT=00f067aa0ba902b7

# --- a fallback, inside the caller's trace ------------------------------------------------------
chat "$Q" "${A[@]}" -H "traceparent: 00-$TRACE-$PARENT-01" -H "tracestate: vendor=1" \
  -H 'x-mock-fault: status=503,target=p1'
check "fallback: answered by the secondary" "$STATUS $(header x-moongate-provider) $(header x-moongate-attempts)" "200 secondary 2"
check "the caller's trace id is the request id" "$(header x-request-id)" "$TRACE"
# the secondary got a traceparent in the same trace, whose parent is moongate's attempt span
curl -s "http://$MOCK_p2/mock/last" -o "$GW_TMP/last.json"
UP=$(python3 -c "import json; print(json.load(open('$GW_TMP/last.json'))['headers'].get('traceparent',''))")
check "upstream traceparent: same trace, sampled" "$(echo "$UP" | cut -d- -f1,2,4)" "00-$TRACE-01"
check "upstream tracestate passed on" \
  "$(python3 -c "import json; print(json.load(open('$GW_TMP/last.json'))['headers'].get('tracestate',''))")" "vendor=1"

# spans reach the store within the export interval (1 s)
for _ in $(seq 1 40); do
  [ "$(curl -s -o /dev/null -w '%{http_code}' "${ADM[@]}" "$GW/admin/traces/$TRACE")" = 200 ] && break
  sleep 0.1
done
curl -s "${ADM[@]}" "$GW/admin/traces/$TRACE" -o "$OUT"
# the tree: depth, name, kind, status; children in start order
TREE=$(python3 - "$OUT" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
spans = d["spans"]
kids = {}
for s in spans: kids.setdefault(s.get("parentSpanId"), []).append(s)
ids = {s["spanId"] for s in spans}
roots = [s for s in spans if s.get("parentSpanId") not in ids]
def attrs(s): return {a["key"]: list(a["value"].values())[0] for a in s["attributes"]}
def draw(s, depth):
    st = {0: "unset", 1: "ok", 2: "error"}[s["status"].get("code", 0)]
    print("  " * depth + s["name"], s["kind"], st)
    for c in sorted(kids.get(s["spanId"], []), key=lambda c: int(c["startTimeUnixNano"])): draw(c, depth + 1)
for r in roots: draw(r, 0)
r = roots[0]; a = attrs(r)
print("parent", r.get("parentSpanId"), "trace", {s["traceId"] for s in spans} == {d["trace_id"]})
print("root", a["http.request.method"], a["http.route"], a["http.response.status_code"], a["moongate.tenant"],
      a["gen_ai.request.model"], a["gen_ai.response.model"], a["gen_ai.provider.name"],
      a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"], a["moongate.cost"])
att = [attrs(s) for s in spans if s["name"].startswith("chat ")]
print("attempts", [(x["gen_ai.provider.name"], x["gen_ai.request.model"], x.get("error.type", "-")) for x in att])
rt = attrs([s for s in spans if s["name"] == "route"][0])
print("route", rt["moongate.route.tiers"]["values"] if isinstance(rt["moongate.route.tiers"], dict) else rt["moongate.route.tiers"])
print("hashes", len(a["moongate.prompt.sha256"]), len(a["moongate.response.sha256"]))
PY
)
check "the exact span tree of a fallback" "$(echo "$TREE" | sed -n 1,7p)" "POST /v1/chat/completions 2 unset
  auth 1 unset
  quota 1 unset
  redact 1 unset
  route 1 unset
  chat m1 3 error
  chat m2 3 unset"
check "the root's parent is the caller's span, every span in its trace" "$(echo "$TREE" | sed -n 8p)" "parent $PARENT trace True"
# cost: 8 tokens in at 3/1M + 5 out at 4/1M on m2
check "root attributes (HTTP and gen_ai semconv, tenant, cost)" "$(echo "$TREE" | sed -n 9p)" \
  "root POST /v1/chat/completions 200 acme default m2 secondary 8 5 4.4e-05"
check "one attempt span per provider call, the failure typed" "$(echo "$TREE" | sed -n 10p)" \
  "attempts [('primary', 'm1', 'status_503'), ('secondary', 'm2', '-')]"
check "the routing decision" "$(echo "$TREE" | sed -n 11p)" \
  "route [{'stringValue': 'primary/m1'}, {'stringValue': 'secondary/m2'}]"
check "prompt and response hashes" "$(echo "$TREE" | sed -n 12p)" "hashes 64 64"
# raw: the request body and the answer as the client got them
check "raw text for a log_raw tenant, with the admin key" \
  "$(json_field "json.loads(d['raw']['prompt'])['messages'][0]['content'], json.loads(d['raw']['response'])['choices'][0]['message']['content']")" \
  "hello there mock answer: hello there"
check "a tenant key cannot read traces" \
  "$(curl -s -o /dev/null -w '%{http_code}' "${A[@]}" "$GW/admin/traces/$TRACE")" 403

# the same tree in the terminal, from the store
"$MOONGATE" traces show "$TRACE" --db "$MOONGATE_TRACES" > "$GW_TMP/show"
check "traces show: the header" "$(head -1 "$GW_TMP/show" | tr -s ' ' | cut -d' ' -f1-4,6-7)" "request $TRACE trace $TRACE status 200"
check "traces show: the waterfall's spans" "$(sed -n '3,$p' "$GW_TMP/show" | sed 's/  *[0-9.]* ms.*//')" \
  "POST /v1/chat/completions
  auth
  quota
  redact
  route
  chat m1
  chat m2"
check "traces show: the root's totals" "$(sed -n 3p "$GW_TMP/show" | grep -o 'provider=.*')" \
  "provider=secondary model=default answered=m2 in=8 out=5 cost=4.4e-05 tenant=acme"
check "traces show: the failed attempt says why" "$(grep -c 'chat m1 .*status=503 error=status_503 FAILED: mock fault: status 503' "$GW_TMP/show")" 1
"$MOONGATE" traces show "$TRACE" --raw --db "$MOONGATE_TRACES" --tenants-db "$MOONGATE_DB" > "$GW_TMP/raw"
check "traces show --raw with the admin key" "$(grep -A1 -x 'prompt:' "$GW_TMP/raw")" 'prompt:
{"model":"default","messages":[{"role":"user","content":"hello there"}]}'
check "traces show --raw: the response" "$(grep -A1 -x 'response:' "$GW_TMP/raw" | grep -c '"content":"mock answer: hello there"')" 1
"$MOONGATE" traces show "$TRACE" --raw --db "$MOONGATE_TRACES" --tenants-db "$MOONGATE_DB" \
  --admin-key mg-00000000-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA >/dev/null 2>"$GW_TMP/err"
check "traces show --raw with a wrong key: exit 2" "$?" 2

# globex's policy keeps hashes only
chat "$Q" "${G[@]}" -H "x-request-id: globex-1"
sleep 1.3
curl -s "${ADM[@]}" "$GW/admin/traces/globex-1" -o "$OUT"
check "no raw text for a tenant without log_raw" "$(json_field "d.get('raw'), d['tenant'], d['status']")" "None globex 200"

# --- step budgets --------------------------------------------------------------------------------
W='{"model":"watched","messages":[{"role":"user","content":"slow"}]}'
chat "$W" "${A[@]}" -H "x-request-id: budget-1" -H 'x-mock-fault: latency=1200,target=p1'
check "an overrun alone does not change the answer" "$STATUS $(header x-moongate-provider)" "200 primary"
E='{"model":"enforced","messages":[{"role":"user","content":"slow"}]}'
chat "$E" "${A[@]}" -H "x-request-id: budget-2" -H 'x-mock-fault: latency=1000,target=p1'
check "an enforced budget cuts the attempt and takes the fallback" \
  "$STATUS $(header x-moongate-provider) $(header x-moongate-attempts)" "200 secondary 2"
check_lt "...at the budget, not the tier's 2 s timeout" "$TIME" 0.6
sleep 1.3
curl -s "${ADM[@]}" "$GW/admin/traces/budget-1" -o "$OUT"
check "the overrun is an event on the step's span" "$(json_field "[(s['name'], e['name'], [a['value'] for a in e['attributes'] if a['key']=='moongate.step']) for s in d['spans'] for e in s.get('events', []) if e['name']=='budget exceeded']")" \
  "[('chat m1', 'budget exceeded', [{'stringValue': 'upstream'}])]"
curl -s "${ADM[@]}" "$GW/admin/traces/budget-2" -o "$OUT"
check "the cut attempt is a timeout" "$(json_field "[[a['value'] for a in s['attributes'] if a['key']=='error.type'] for s in d['spans'] if s['name']=='chat m1']")" \
  "[[{'stringValue': 'timeout'}]]"

# --- quota rejections and reloads are counted ---------------------------------------------------
chat "$Q" -H "authorization: Bearer $KT"
chat "$Q" -H "authorization: Bearer $KT"
check "the tenant's second request in the minute" "$STATUS" 429
kill -HUP "$GW_PID"
for _ in $(seq 1 40); do grep -q '"msg":"reloaded"' "$GW_TMP/gateway.log" && break; sleep 0.05; done

# --- /metrics ------------------------------------------------------------------------------------
curl -s -o /dev/null -w '%{http_code}' "${A[@]}" "$GW/metrics" > "$GW_TMP/code"
check "/metrics needs the admin key" "$(cat "$GW_TMP/code")" 403
curl -s "${ADM[@]}" "$GW/metrics" -o "$GW_TMP/metrics"
check "/metrics passes promtool check metrics" "$(promtool check metrics < "$GW_TMP/metrics" 2>&1; echo "rc=$?")" "rc=0"
metric() { grep -F "$1 " "$GW_TMP/metrics" | head -1 | awk '{print $NF}'; }
check "requests by route, tenant, model, provider, status" \
  "$(metric 'moongate_requests_total{route="chat",tenant="acme",model="default",provider="secondary",status="200"}')" 1
check "attempts by outcome" \
  "$(metric 'moongate_upstream_attempts_total{provider="primary",model="m1",outcome="status_503"}')" 1
check "fallbacks" "$(metric 'moongate_fallbacks_total{model="default"}')" 1
check "tokens by tenant, upstream model and direction" \
  "$(metric 'moongate_tokens_total{tenant="globex",model="m1",direction="input"}') $(metric 'moongate_tokens_total{tenant="globex",model="m1",direction="output"}')" "8 5"
check "budget overruns by step" "$(metric 'moongate_step_budget_overruns_total{step="upstream"}')" 2
check "a step histogram's count" "$(metric 'moongate_step_duration_seconds_count{step="auth"}')" 6
check "quota rejections by tenant and limit" "$(metric 'moongate_quota_rejections_total{tenant="tiny",limit="rpm"}')" 1
check "reloads by unit and result" "$(metric 'moongate_reloads_total{unit="config",result="ok"}')" 1
check "breaker state" "$(metric 'moongate_breaker_state{provider="primary"}')" 0
check "open connections" "$(grep -c '^moongate_open_connections{worker="0"} [1-9]' "$GW_TMP/metrics")" 1
check "scrapes are not traced" "$(curl -s "${ADM[@]}" "$GW/admin/traces?limit=100" | python3 -c \
  'import json,sys; print(sorted({r["route"] for r in json.load(sys.stdin)["data"]}))')" "['chat']"

# --- the CLI over the store ----------------------------------------------------------------------
chat "$Q" "${A[@]}" -H "x-request-id: failed-1" -H 'x-mock-fault: status=503'
check "both failing: 502" "$STATUS" 502
sleep 1.3
check "traces --errors: newest first" "$("$MOONGATE" traces --errors --db "$MOONGATE_TRACES" | awk 'NR > 1 {print $4, $6}')" "502 acme
429 tiny"
check "traces --errors --tenant tiny: the 429" "$("$MOONGATE" traces --errors --tenant tiny --db "$MOONGATE_TRACES" | awk 'NR > 1 {print $4, $6}')" "429 tiny"
check "traces --tenant globex" "$("$MOONGATE" traces --tenant globex --db "$MOONGATE_TRACES" | awk 'NR > 1 {print $2}')" "globex-1"
check "traces --slow=1000: the slow one" "$("$MOONGATE" traces --slow=1000 --db "$MOONGATE_TRACES" | awk 'NR > 1 {print $2}')" "budget-1"
"$MOONGATE" stats --db "$MOONGATE_TRACES" --json > "$GW_TMP/stats"
check "stats: requests counted per step" "$(python3 -c "import json; d=json.load(open('$GW_TMP/stats')); print({s['name']: s['count'] for s in d['steps']}.get('auth'))")" 7
check "stats: per model alias and per upstream" "$(python3 -c "import json; d=json.load(open('$GW_TMP/stats')); print(sorted(m['name'] for m in d['models']))")" \
  "['default', 'primary/m1', 'secondary/m2']"
"$MOONGATE" stats --db "$MOONGATE_TRACES" > "$GW_TMP/stats.txt"
check "stats: the table's head" "$(head -1 "$GW_TMP/stats.txt" | tr -s ' ')" "step count p50 ms p95 ms p99 ms"

# --- the documented example (docs/observability.md) ---------------------------------------------
stop_gateway
export MOONGATE_TRACES=$GW_TMP/example-traces.db
MOONGATE_PRIMARY_URL=$MOCK_p1_URL MOONGATE_SECONDARY_URL=$MOCK_p2_URL \
  start_gateway "$MOONGATE_HOME/examples/observability/moongate.lua"
chat "$Q" -H "traceparent: 00-$TRACE-$PARENT-01" -H 'x-mock-fault: status=503,target=p1'
check "example: the fallback answers" "$STATUS $(header x-moongate-provider)" "200 secondary"
sleep 1.3
"$MOONGATE" traces show "$TRACE" > "$GW_TMP/show"
check "example: traces show" "$(sed -n '3,$p' "$GW_TMP/show" | sed 's/  *[0-9.]* ms.*//')" "POST /v1/chat/completions
  route
  chat m1
  chat m2"
check "example: stats per upstream" "$("$MOONGATE" stats --json | python3 -c 'import json,sys; print([m["name"] for m in json.load(sys.stdin)["models"]])')" "['secondary/m2']"
check "example: /metrics passes promtool" "$(curl -s "$GW/metrics" | promtool check metrics 2>&1; echo "rc=$?")" "rc=0"

# a mistyped trace setting stops the start with one line that names it (no Lua traceback)
cat > "$GW_TMP/bad.lua" <<LUA
return { providers = { p1 = { kind = "mock", base_url = "$MOCK_p1_URL" } },
         models = { default = { route = { { provider = "p1", model = "m1" } } } }, trace = { sampel = 0.1 } }
LUA
check "a mistyped setting: exit 1 and its one line" "$("$MOONGATE" serve --listen 127.0.0.1:1 "$GW_TMP/bad.lua" 2>&1; echo "rc=$?")" \
  "moongate serve: config: trace: unknown setting 'sampel'
rc=1"
finish
