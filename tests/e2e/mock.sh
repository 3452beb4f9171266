#!/usr/bin/env bash
# `moongate mock` over real HTTP with curl: its routes, every fault as a client sees it, the
# counters, bad arguments, and a clean exit on SIGTERM.
set -uo pipefail
[ -x "${MOONGATE:-}" ] || { echo "skip: MOONGATE is not set"; exit 77; }
command -v curl >/dev/null || { echo "skip: curl missing"; exit 77; }

fails=0
check() {  # check NAME EXPECTED ACTUAL
  if [ "$2" == "$3" ]; then echo "ok - $1"; else echo "not ok - $1: expected [$2], got [$3]"; fails=$((fails + 1)); fi
}

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base=http://127.0.0.1:$port
log=$(mktemp)
"$MOONGATE" mock --listen 127.0.0.1:$port --name m1 --models a,b 2>"$log" &
pid=$!
trap 'kill $pid 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 100); do curl -s -o /dev/null "$base/mock/stats" && break; sleep 0.05; done

B='{"model":"mock-small","messages":[{"role":"user","content":"hello"}]}'
S='{"model":"mock-small","stream":true,"messages":[{"role":"user","content":"hello"}]}'
post() { curl -s -X POST "$base$1" -H 'content-type: application/json' "${@:2}"; }

check "chat answer" '"mock answer: hello"' "$(post /v1/chat/completions -d "$B" | grep -o '"mock answer: hello"')"
check "stream ends with [DONE]" "data: [DONE]" "$(post /v1/chat/completions -d "$S" | grep -v '^$' | tail -1)"
check "stream carries the answer in pieces" "mock |answer: |hello" \
  "$(post /v1/chat/completions -d "$S" | grep -o '"content":"[^"]\+"' | sed 's/"content":"//; s/"$//' | paste -sd'|')"
check "models list" '"a" "b"' "$(curl -s $base/v1/models | grep -o '"id":"[^"]*"' | sed 's/"id"://' | paste -sd' ')"
check "anthropic message" '"text":"mock answer: hi"' \
  "$(post /v1/messages -d '{"model":"c","max_tokens":50,"messages":[{"role":"user","content":"hi"}]}' | grep -o '"text":"mock answer: hi"')"
check "anthropic stream events" "message_start content_block_start ping content_block_delta content_block_delta content_block_delta content_block_stop message_delta message_stop" \
  "$(post /v1/messages -d '{"model":"c","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"hi"}]}' | sed -n 's/^event: //p' | paste -sd' ')"

check "status fault" "429 2" "$(post /v1/chat/completions -H 'x-mock-fault: status=429,retry_after=2' -d "$B" -o /dev/null -D - | awk 'NR==1{s=$2} tolower($1)=="retry-after:"{r=$2} END{gsub("\r","",r); print s, r}')"
post /v1/chat/completions -H 'x-mock-fault: reset' -d "$B" -o /dev/null; check "reset: curl sees a reset (56)" 56 $?
post /v1/chat/completions -H 'x-mock-fault: stall' -d "$B" -o /dev/null -m 0.5; check "stall: curl times out (28)" 28 $?
post /v1/chat/completions -d "$S" -H 'x-mock-fault: cut_after=2' -o /dev/null; check "cut_after: curl sees a partial body (18)" 18 $?
check "cut_after: two events" 2 "$(post /v1/chat/completions -d "$S" -H 'x-mock-fault: cut_after=2' | grep -c '^data: ')"
t=$(post /v1/chat/completions -d '{"model":"m","messages":[{"role":"user","content":"x"}],"mock":{"latency":300}}' -o /dev/null -w '%{time_total}')
check "latency: at least 300 ms" 1 "$(awk -v t="$t" 'BEGIN{print (t >= 0.3 && t < 2) ? 1 : 0}')"
check "malformed: not JSON" 1 "$(post /v1/chat/completions -H 'x-mock-fault: malformed' -d "$B" | python3 -c 'import json,sys
try: json.load(sys.stdin); print(0)
except ValueError: print(1)')"
check "target elsewhere: no fault" 200 "$(post /v1/chat/completions -H 'x-mock-fault: status=500,target=m2' -d "$B" -o /dev/null -w '%{http_code}')"
check "bad fault: 400" 400 "$(post /v1/chat/completions -H 'x-mock-fault: boom' -d "$B" -o /dev/null -w '%{http_code}')"
check "server fault set" '"fault":"status=503"' "$(post /mock/fault -d 'status=503' | grep -o '"fault":"status=503"')"
check "server fault applies" 503 "$(post /v1/chat/completions -d "$B" -o /dev/null -w '%{http_code}')"
post /mock/fault -d '' >/dev/null
check "server fault cleared" 200 "$(post /v1/chat/completions -d "$B" -o /dev/null -w '%{http_code}')"

stats=$(curl -s $base/mock/stats)
check "stats: requests" 17 "$(grep -o '"requests":[0-9]*' <<<"$stats" | cut -d: -f2)"
check "stats: resets" 1 "$(grep -o '"reset":[0-9]*' <<<"$stats" | cut -d: -f2)"
check "last request seen" '"path":"/v1/chat/completions"' "$(curl -s $base/mock/last | grep -o '"path":"[^"]*"')"
post /mock/reset >/dev/null
check "stats reset" 0 "$(curl -s $base/mock/stats | grep -o '"requests":[0-9]*' | cut -d: -f2)"

# --latency and --fault from the command line
port2=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$MOONGATE" mock --listen 127.0.0.1:$port2 --latency 200 --fault status=503 2>/dev/null &
pid2=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port2/mock/stats" && break; sleep 0.05; done
out=$(curl -s -X POST http://127.0.0.1:$port2/v1/chat/completions -d "$B" -o /dev/null -w '%{http_code} %{time_total}')
check "--fault status=503" 503 "${out% *}"
check "--latency 200: at least 200 ms" 1 "$(awk -v t="${out#* }" 'BEGIN{print (t >= 0.2 && t < 2) ? 1 : 0}')"
check "x-mock-fault: none overrides --fault" 200 "$(curl -s -X POST http://127.0.0.1:$port2/v1/chat/completions -H 'x-mock-fault: none' -d "$B" -o /dev/null -w '%{http_code}')"
kill -TERM $pid2; wait $pid2

"$MOONGATE" mock --fault nope >/dev/null 2>&1; check "bad --fault exits 2" 2 $?
check "bad --fault says why" "moongate mock: bad --fault: unknown fault 'nope'" "$("$MOONGATE" mock --fault nope 2>&1)"
"$MOONGATE" mock --listen nowhere >/dev/null 2>&1; check "bad --listen exits 2" 2 $?
"$MOONGATE" mock --help | grep -q '^usage: moongate mock'; check "--help" 0 $?

kill -TERM $pid; wait $pid; check "SIGTERM: exit 0" 0 $?
exit $((fails > 0))
