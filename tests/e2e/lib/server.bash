# Helpers for the server's end-to-end tests: start `moongate serve` on a free loopback port,
# wait until it answers, stop it, and check what it logged. Sourced by tests/e2e/server_*.sh.
set -u
: "${MOONGATE:?MOONGATE must point at the binary}"
: "${MOONGATE_HOME:?}"
E2E_DIR="$MOONGATE_HOME/tests/e2e"
WORK=$(mktemp -d /tmp/mg-e2e.XXXXXX)
export MOONGATE_TRACES=$WORK/traces.db   # each test its own trace store
SERVER_PID=
FAILED=0

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# start_server ARGS... : runs `moongate serve --listen 127.0.0.1:$PORT ARGS`, logs in $WORK/server.log
start_server() {
  PORT=$(free_port)
  # SERVER_NOFILE=N caps the server's descriptors (the tests' clients keep theirs)
  if [ -n "${SERVER_NOFILE:-}" ]; then
    bash -c 'ulimit -n "$0" && exec "$@"' "$SERVER_NOFILE" "$MOONGATE" serve --listen "127.0.0.1:$PORT" "$@" 2>"$WORK/server.log" &
  else
    "$MOONGATE" serve --listen "127.0.0.1:$PORT" "$@" 2>"$WORK/server.log" &
  fi
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    if curl -s -o /dev/null "http://127.0.0.1:$PORT/health" 2>/dev/null; then return 0; fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then echo "server died at start:"; cat "$WORK/server.log"; exit 1; fi
    sleep 0.05
  done
  echo "server did not come up"; cat "$WORK/server.log"; exit 1
}

# stop_server: SIGTERM, wait, and require exit status 0
stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  kill -TERM "$SERVER_PID" 2>/dev/null
  local code=0
  wait "$SERVER_PID" || code=$?
  SERVER_PID=
  if [ "$code" != 0 ]; then fail "server exited with $code"; fi
}

cleanup() {
  if [ -n "$SERVER_PID" ]; then kill -KILL "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

fail() { echo "FAIL: $*"; FAILED=1; }
pass() { echo "ok: $*"; }

# expect_eq WHAT EXPECTED ACTUAL
expect_eq() {
  if [ "$2" == "$3" ]; then pass "$1"; else fail "$1: expected [$2], got [$3]"; fi
}

alive() {
  if kill -0 "$SERVER_PID" 2>/dev/null; then pass "server still running"; else fail "server died"; cat "$WORK/server.log"; fi
}

finish() {
  if [ "$FAILED" != 0 ]; then echo "--- server log"; tail -n 50 "$WORK/server.log"; exit 1; fi
  echo "all passed"; exit 0
}
