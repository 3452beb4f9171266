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

# limits.connections: past it, new connections wait (in the backlog) until one closes
cat >"$WORK/conf.lua" <<'LUA'
return { limits = { connections = 3 } }
LUA
SERVER_NOFILE= start_server "$WORK/conf.lua"
python3 - <<'PY' || FAILED=1
import os, socket, time
port = int(os.environ["PORT"])
idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
time.sleep(0.2)
s = socket.create_connection(("127.0.0.1", port))   # the kernel completes the handshake
s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
s.settimeout(0.5)
try:
    got = s.recv(100)
except socket.timeout:
    got = None
assert got is None, got
print("ok: a 4th connection waits while 3 are open")
idle[0].close()
s.settimeout(5)
got = s.recv(1000)
assert got.startswith(b"HTTP/1.1 200 OK"), got
print("ok: answered once one closed")
PY
alive
stop_server
finish
