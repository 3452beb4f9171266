#!/usr/bin/env bash
# moongate serve out of file descriptors: accept pauses (logged) instead of spinning or dying,
# and the server answers again once connections close.
source "$(dirname "$0")/lib/server.bash"
command -v python3 >/dev/null || exit 77
SERVER_NOFILE=32 start_server
export PORT
python3 - <<'PY' || FAILED=1
import os, socket, time, urllib.request
port = int(os.environ["PORT"])
socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(40)]
time.sleep(0.5)
for s in socks:
    s.close()
time.sleep(0.5)
body = urllib.request.urlopen("http://127.0.0.1:%d/health" % port, timeout=5).read()
assert body == b'{"status":"ok"}', body
print("ok: answers again after running out of descriptors")
PY
grep -q 'pausing accept for 100 ms' "$WORK/server.log" && pass "EMFILE logged, accept paused" || fail "no EMFILE line"
alive
stop_server
finish
