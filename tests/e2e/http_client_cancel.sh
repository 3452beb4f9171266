#!/usr/bin/env bash
# A handler's upstream transfer dies with its client: `moongate serve` cancels the handler task
# when the client goes away, and the task's moongate.http wait (a plain request or a stream
# being relayed) frees its transfer at once: http.stats() of the worker is back to zero.
set -u
MOONGATE=${MOONGATE:-}
if [ -z "$MOONGATE" ] || [ ! -x "$MOONGATE" ]; then echo "skip: MOONGATE is not set"; exit 77; fi
command -v python3 >/dev/null || { echo "skip: no python3"; exit 77; }
command -v curl >/dev/null || { echo "skip: no curl"; exit 77; }
HOME_DIR=${MOONGATE_HOME:-$(cd "$(dirname "$0")/../.." && pwd)}

TMP=$(mktemp -d /tmp/moongate-http-cancel-XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  rm -rf "$TMP"
}
trap cleanup EXIT
FAILED=0
check() {   # check NAME GOT WANT
  if [ "$2" == "$3" ]; then echo "ok   $1"; else echo "FAIL $1: got [$2], want [$3]"; FAILED=1; fi
}

python3 "$HOME_DIR/tests/lua/http_upstream.py" "$TMP/up.port" >"$TMP/up.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do [ -s "$TMP/up.port" ] && break; sleep 0.05; done
UP="http://127.0.0.1:$(cat "$TMP/up.port")"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$TMP/conf.lua" <<LUA
local http = require "moongate.http"
local UP = "$UP"
local routes = {}
routes["/proxy-stall"] = function()
  local res, err = http.request{ url = UP .. "/stall?s=20", timeout = 20 }
  return { status = 502, body = tostring(err) }
end
routes["/proxy-stream"] = function(req, res)
  local up = assert(http.request{ url = UP .. "/stream?n=400&gap=0.05", stream = true })
  res:start(200, { ["content-type"] = "text/plain" })
  while true do
    local chunk = up:read(5)
    if not chunk or not res:write(chunk) then break end
  end
  up:close()
  res:finish()
end
routes["/stats"] = function()
  local s = http.stats()
  return { status = 200, body = s.active .. " " .. s.handles .. " " .. s.streams }
end
return {
  listen = "127.0.0.1:$PORT",
  limits = { handler_timeout = 30 },
  app = function(req, res)
    local route = routes[req.path]
    if not route then return { status = 404, body = "no route" } end
    return route(req, res)
  end,
}
LUA
"$MOONGATE" serve --workers 1 "$TMP/conf.lua" >"$TMP/serve.log" 2>&1 &
PIDS+=($!)
SERVE=http://127.0.0.1:$PORT
for _ in $(seq 1 100); do curl -s -o /dev/null -m 1 "$SERVE/stats" && break; sleep 0.05; done
stats() { curl -s -m 2 "$SERVE/stats"; }

check "idle worker" "$(stats)" "0 0 0"

curl -s -o /dev/null -m 1 "$SERVE/proxy-stall" &
CURL=$!
sleep 0.5
check "a stalled upstream request in flight" "$(stats)" "1 1 0"
wait $CURL
sleep 0.3
check "client gone: the upstream request is freed" "$(stats)" "0 0 0"

curl -s -N -o "$TMP/relayed" -m 1 "$SERVE/proxy-stream" &
CURL=$!
sleep 0.5
check "a relayed stream in flight" "$(stats)" "1 1 1"
wait $CURL
sleep 0.3
check "client gone: the relayed stream is freed" "$(stats)" "0 0 0"
check "the client got chunks as they came" "$(head -1 "$TMP/relayed")" "chunk 1"

if [ $FAILED != 0 ]; then echo "--- serve log"; tail -20 "$TMP/serve.log"; fi
exit $FAILED
