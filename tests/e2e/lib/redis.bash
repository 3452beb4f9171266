# Shared by tests/e2e/*redis*.sh (after lib/gateway.bash): a throwaway redis-server on a free
# loopback port, without persistence, stopped with the test. Skips (77) without redis-server.
command -v redis-server >/dev/null || { echo "skip: redis-server is not installed"; exit 77; }
command -v redis-cli >/dev/null || { echo "skip: redis-cli is not installed"; exit 77; }

# start_redis -> sets REDIS_PORT (kept across restarts), REDIS_URL and REDIS_PID
start_redis() {
  REDIS_PORT=${REDIS_PORT:-$(free_port)}
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$GW_TMP" \
    >>"$GW_TMP/redis.log" 2>&1 &
  REDIS_PID=$!
  GW_PIDS+=("$REDIS_PID")
  REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
  for _ in $(seq 1 200); do
    [ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ] && return 0
    kill -0 "$REDIS_PID" 2>/dev/null || { echo "redis-server died:"; cat "$GW_TMP/redis.log"; exit 1; }
    sleep 0.05
  done
  echo "timed out waiting for redis-server"; cat "$GW_TMP/redis.log"; exit 1
}

stop_redis() {
  kill "$REDIS_PID" 2>/dev/null; wait "$REDIS_PID" 2>/dev/null
}

rcli() { redis-cli -p "$REDIS_PORT" "$@"; }
