#!/usr/bin/env bash
# moongate.http against moongate's own server (`moongate mock`): the example of
# docs/http-client.md runs as written and prints what the page says; SSE chunks arrive as
# they are sent; a stream cut short and a stall give the documented errors.
set -u
MOONGATE=${MOONGATE:-}
if [ -z "$MOONGATE" ] || [ ! -x "$MOONGATE" ]; then echo "skip: MOONGATE is not set"; exit 77; fi
command -v python3 >/dev/null || { echo "skip: no python3"; exit 77; }
HOME_DIR=${MOONGATE_HOME:-$(cd "$(dirname "$0")/../.." && pwd)}

TMP=$(mktemp -d /tmp/moongate-http-e2e-XXXXXX)
PID=
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
FAILED=0
check() {   # check NAME GOT WANT
  if [ "$2" == "$3" ]; then echo "ok   $1"; else
    echo "FAIL $1"; echo "  got:  $2" | head -20; echo "  want: $3" | head -20; FAILED=1; fi
}

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$MOONGATE" mock --listen "127.0.0.1:$PORT" >"$TMP/mock.log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 1)" 2>/dev/null && break
  kill -0 "$PID" 2>/dev/null || { echo "mock died:"; cat "$TMP/mock.log"; exit 1; }
  sleep 0.05
done

# The page's first lua block, pointed at this mock.
python3 - "$HOME_DIR/docs/http-client.md" "$PORT" > "$TMP/example.lua" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
block = re.search(r"```lua\n(.*?)```", text, re.S).group(1)
print(block.replace("127.0.0.1:9000", "127.0.0.1:" + sys.argv[2]))
PY
got=$("$MOONGATE" run "$TMP/example.lua" 2>&1 | sed -E 's/after [0-9]+ ms/after N ms/')
want=$(printf '%s\n' \
  $'200\tapplication/json' \
  'mock answer: hello' \
  $'200\ttext/event-stream' \
  $'events\t7' \
  $'ok\t100' \
  $'nil\tconnect failed\tFailed to connect to 127.0.0.1 port 9 after N ms: Couldn\'t connect to server' \
  $'nil\ttimeout' \
  $'0\t0')
check "docs/http-client.md example output" "$got" "$want"

cat > "$TMP/faults.lua" <<LUA
local mg = require "moongate"
local http = require "moongate.http"
local url = "http://127.0.0.1:$PORT/v1/chat/completions"
local body = '{"model":"m","stream":true,"messages":[{"role":"user","content":"a b c d"}]}'
local function open(fault, timeout)
  return http.request{ method = "POST", url = url, body = body, stream = true, timeout = timeout or 5,
    headers = { ["content-type"] = "application/json", ["x-mock-fault"] = fault } }
end

-- chunk_delay=100: one SSE event every 100 ms; reads return them as they arrive (not all at
-- the end): the first and the last event are read >= 0.6 s apart (8 gaps of 0.1 s)
local res = assert(open("chunk_delay=100"))
local events, first, last = 0, nil, nil
while true do
  local c, err = res:read(2)
  if not c then assert(not err, err) break end
  for _ in c:gmatch("data: ") do events = events + 1 end
  first = first or mg.now()
  last = mg.now()
end
res:close()
print("events", events, "spread", last - first >= 0.6)

-- cut_after=2: the server drops the connection mid-stream
res = assert(open("cut_after=2"))
local c, err
repeat c, err = res:read(2) until not c
print("cut", err)
res:close()

-- stall: no headers within the timeout
print("stall", select(2, open("stall", 0.3)))

-- a reader that gives up: cancelling its task frees the transfer at once
local h = mg.spawn(function()
  local r = assert(open("chunk_delay=200"))
  while r:read(5) do end
end)
mg.sleep(0.3)
h:cancel()
local s = http.stats()
print("after cancel", s.active, s.handles)
LUA
got=$("$MOONGATE" run "$TMP/faults.lua" 2>&1)
want=$(printf '%s\n' $'events\t9\tspread\ttrue' $'cut\tclosed' $'stall\ttimeout' $'after cancel\t0\t0')
check "streams from moongate's server, faults" "$got" "$want"

exit $FAILED
