# Shared by tests/e2e/gateway_*.sh: start `moongate mock` upstreams and a `moongate serve` gateway
# on free loopback ports, small assertion helpers, and cleanup of everything started at exit.
set -u
MOONGATE=${MOONGATE:-}
if [ -z "$MOONGATE" ] || [ ! -x "$MOONGATE" ]; then echo "skip: MOONGATE is not set"; exit 77; fi
command -v curl >/dev/null || { echo "skip: no curl"; exit 77; }
command -v python3 >/dev/null || { echo "skip: no python3"; exit 77; }

GW_TMP=$(mktemp -d /tmp/moongate-gw-XXXXXX)
export MOONGATE_TRACES=$GW_TMP/traces.db   # each test its own trace store
GW_PIDS=()
GW_FAILED=0
gw_cleanup() {
  for p in "${GW_PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${GW_PIDS[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$GW_TMP"
}
trap gw_cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_http() {   # wait_http URL PID LOG
  for _ in $(seq 1 100); do
    curl -s -o /dev/null -m 1 "$1" && return 0
    kill -0 "$2" 2>/dev/null || { echo "process died:"; cat "$3"; exit 1; }
    sleep 0.05
  done
  echo "timed out waiting for $1"; cat "$3"; exit 1
}

# start_mock NAME [args...] -> sets MOCK_<NAME>_URL (base, ending /v1) and MOCK_<NAME> (host:port)
start_mock() {
  local name=$1; shift
  local port; port=$(free_port)
  "$MOONGATE" mock --listen "127.0.0.1:$port" --name "$name" "$@" >"$GW_TMP/mock-$name.log" 2>&1 &
  local pid=$!
  GW_PIDS+=("$pid")
  wait_http "http://127.0.0.1:$port/mock/stats" "$pid" "$GW_TMP/mock-$name.log"
  printf -v "MOCK_${name}_URL" '%s' "http://127.0.0.1:$port/v1"
  printf -v "MOCK_${name}" '%s' "127.0.0.1:$port"
}

# start_gateway CONFIG [extra serve args...] -> sets GW (base URL without /v1) and GW_PID
start_gateway() {
  local config=$1; shift
  local port; port=$(free_port)
  "$MOONGATE" serve --listen "127.0.0.1:$port" "$@" "$config" >>"$GW_TMP/gateway.log" 2>&1 &
  GW_PID=$!
  GW_PIDS+=("$GW_PID")
  GW="http://127.0.0.1:$port"
  wait_http "$GW/health" "$GW_PID" "$GW_TMP/gateway.log"
}

stop_gateway() {
  kill "$GW_PID" 2>/dev/null; wait "$GW_PID" 2>/dev/null
}

# mock_stat HOST:PORT FIELD -> the counter from /mock/stats
mock_stat() {
  curl -s "http://$1/mock/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])"
}
mock_reset() { curl -s -XPOST "http://$1/mock/reset" >/dev/null; }
mock_fault() { curl -s -XPOST "http://$1/mock/fault" -d "$2" >/dev/null; }

# chat [curl args...]: POST a chat completion; the body goes to $OUT, headers to $HDR,
# the status to $STATUS, the elapsed seconds to $TIME.
OUT="$GW_TMP/out"; HDR="$GW_TMP/hdr"
post() {
  local path=$1 body=$2; shift 2
  local w
  w=$(curl -s -N -m 30 -o "$OUT" -D "$HDR" -w '%{http_code} %{time_total}' "$GW$path" \
        -H 'content-type: application/json' -d "$body" "$@")
  STATUS=${w% *}; TIME=${w#* }
}
chat() { post /v1/chat/completions "$1" "${@:2}"; }
header() { grep -i "^$1:" "$HDR" | head -1 | cut -d: -f2- | tr -d '\r' | sed 's/^ //'; }
json_field() {   # json_field EXPR: evaluate a Python expression on the decoded body `d`
  python3 -c "import json,sys; d=json.load(open('$OUT')); print($1)"
}

check() {   # check NAME GOT WANT
  if [ "$2" == "$3" ]; then echo "ok   $1"; else echo "FAIL $1: got [$2], want [$3]"; GW_FAILED=1; fi
}
check_lt() {   # check_lt NAME GOT LIMIT (floats)
  if python3 -c "import sys; sys.exit(0 if float('$2') < float('$3') else 1)"; then echo "ok   $1 ($2 < $3)"
  else echo "FAIL $1: $2 is not below $3"; GW_FAILED=1; fi
}
check_ge() {
  if python3 -c "import sys; sys.exit(0 if float('$2') >= float('$3') else 1)"; then echo "ok   $1 ($2 >= $3)"
  else echo "FAIL $1: $2 is below $3"; GW_FAILED=1; fi
}
finish() {
  # sanitizer reports from any process the test started (leaks show at exit) fail the test
  for p in "${GW_PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${GW_PIDS[@]}"; do wait "$p" 2>/dev/null; done
  if grep -l "AddressSanitizer\|LeakSanitizer\|runtime error:" "$GW_TMP"/*.log 2>/dev/null; then
    grep -h -A20 "AddressSanitizer\|LeakSanitizer\|runtime error:" "$GW_TMP"/*.log | head -60
    GW_FAILED=1
  fi
  if [ "$GW_FAILED" != 0 ]; then echo "--- gateway log (tail)"; tail -20 "$GW_TMP/gateway.log"; exit 1; fi
  echo "all passed"; exit 0
}
