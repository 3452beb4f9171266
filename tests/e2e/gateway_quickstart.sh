#!/usr/bin/env bash
# The embedded default: `moongate serve` with no config (and examples/quickstart) answers chat
# completions with the extractive provider, from moongate's own docs, with citations; no network.
. "$(dirname "$0")/lib/gateway.bash"
export MOONGATE_INDEX_CACHE="$GW_TMP/index-cache"

port=$(free_port)
"$MOONGATE" serve --listen "127.0.0.1:$port" >>"$GW_TMP/gateway.log" 2>&1 &
GW_PID=$!; GW_PIDS+=("$GW_PID"); GW="http://127.0.0.1:$port"
wait_http "$GW/health" "$GW_PID" "$GW_TMP/gateway.log"

chat '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"How does the circuit breaker decide to open?"}]}'
check "no config: 200 from extractive" "$STATUS $(header x-moongate-provider) $(json_field "d['model']")" "200 extractive extractive"
check "answered from the docs, with citations" "$(json_field "any(c['source'].endswith('.md') for c in d['citations']) and len(d['choices'][0]['message']['content']) > 20")" True
chat '{"model":"anything","messages":[{"role":"system","content":"Our support line is open from 8am to 5pm. Refunds take 5 days."},{"role":"user","content":"How long do refunds take?"}]}'
check "the conversation's own context comes first" "$(json_field "'5 days' in d['choices'][0]['message']['content'], d['citations'][0]['source']")" "True messages[0]"
chat '{"model":"x","stream":true,"messages":[{"role":"user","content":"What is the routing policy?"}]}'
check "streams too" "$STATUS $(header content-type) $(grep -c '^data: \[DONE\]' "$OUT")" "200 text/event-stream 1"
post /v1/embeddings '{"model":"text-embedding-3-small","input":["offline embeddings","no network"]}'
check "no config: embeddings offline" "$STATUS $(json_field "len(d['data']), d['data'][1]['index'], abs(sum(x*x for x in d['data'][0]['embedding']) - 1) < 1e-4")" "200 2 1 True"
post /v1/embeddings '{"model":"e","input":"x","encoding_format":"base64"}'
check "embeddings as base64 (the SDK's default)" "$STATUS $(json_field "type(d['data'][0]['embedding']).__name__")" "200 str"
post /v1/embeddings '{"model":"e","input":[[1,2,3]]}'
check "token arrays: 400" "$STATUS $(json_field "d['error']['type']")" "400 invalid_request_error"
stop_gateway

start_gateway "$MOONGATE_HOME/examples/quickstart/moongate.lua"
chat '{"model":"moongate","messages":[{"role":"user","content":"What does the routing policy decide?"}]}'
check "quickstart config: 200 from docs" "$STATUS $(header x-moongate-provider)" "200 docs"
check "quickstart: cites the docs" "$(json_field "any('/docs/' in c['source'] for c in d['citations'])")" True
stop_gateway

# scripts/quickstart answers its questions, then keeps serving in the foreground until Ctrl-C.
# It runs in its own process group with SIGINT restored (a background job of this script would
# start with it ignored), so the INT sent to the group below reaches it the way Ctrl-C does.
port=$(free_port)
python3 -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.setsid(); os.execvp(sys.argv[1], sys.argv[1:])' \
  "$MOONGATE_HOME/scripts/quickstart" --port "$port" "What does the routing policy decide?" \
  >"$GW_TMP/qs.out" 2>"$GW_TMP/qs.err" &
QS=$!; GW_PIDS+=("$QS")
for _ in $(seq 1 200); do grep -q "the web console: " "$GW_TMP/qs.out" && break; sleep 0.05; done  # its last "try it" line
check "quickstart: answered its question" "$(grep -c '^A: Which provider answers a request is decided by a Lua file' "$GW_TMP/qs.out")" 1
printed=$(grep -o "curl -s http://127.0.0.1:$port/v1/chat/completions" "$GW_TMP/qs.out")
check "quickstart: prints a curl line for its own port" "$printed" "curl -s http://127.0.0.1:$port/v1/chat/completions"
check "quickstart: prints the console's address" "$(grep -c "^  the web console: http://127.0.0.1:$port/console\$" "$GW_TMP/qs.out")" 1
check "quickstart: the console answers" "$(curl -s -o /dev/null -w '%{http_code} %{content_type}' "http://127.0.0.1:$port/console")" "200 text/html; charset=utf-8"
GW="http://127.0.0.1:$port"
chat '{"model":"moongate","messages":[{"role":"user","content":"What is moongate?"}]}'
check "quickstart: still serving after its questions" "$STATUS $(header x-moongate-provider)" "200 docs"
kill -INT -- "-$QS"
wait "$QS"; rc=$?
check "quickstart: Ctrl-C stops it cleanly" "$rc $(tail -n1 "$GW_TMP/qs.out")" "0 moongate stopped."
check "quickstart: the server is gone" "$(curl -s -o /dev/null -w '%{http_code}' -m 1 "$GW/health")" "000"
finish
