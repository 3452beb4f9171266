#!/usr/bin/env bash
# moongate serve under a storm of random, broken and abandoned requests (fixed seeds), with
# reloads: it keeps answering, every log line stays valid JSON, and SIGTERM still exits 0.
source "$(dirname "$0")/lib/server.bash"
command -v python3 >/dev/null || exit 77
cat >"$WORK/conf.lua" <<'LUA'
return { app = "server_app", grace = 2,
  limits = { header_timeout = 1, body_timeout = 1, handler_timeout = 1, keepalive_timeout = 2,
             body_bytes = 100000, header_bytes = 8192, headers = 20 } }
LUA
cp "$E2E_DIR/server_app.lua" "$WORK/"
start_server "$WORK/conf.lua"
export PORT
( for _ in 1 2 3; do sleep 1.5; kill -HUP "$SERVER_PID" 2>/dev/null; done ) &
PYTHONPATH="$E2E_DIR/lib" python3 - <<'PY' || FAILED=1
import os, random, socket, threading, time
P = int(os.environ["PORT"])
pieces = [b"GET / HTTP/1.1\r\n", b"Host: x\r\n", b"\r\n", b"\r\n\r\n", b"0\r\n\r\n", b"zz\r\n", b"5\r\nhello\r\n",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", b"Content-Length: 5\r\n", b"\x00\xff",
    b"GET /stream-forever HTTP/1.1\r\nHost: x\r\n\r\n", b"GET /big?mb=1 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"HEAD /big?mb=1 HTTP/1.1\r\nHost: x\r\n\r\n", b"Expect: 100-continue\r\n", b"X-A: " + b"a" * 3000 + b"\r\n",
    b"GET /slow?s=0.3 HTTP/1.1\r\nHost: x\r\n\r\n", b"HTTP/1.0\r\n", b"GET /abort HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /abort?after=1 HTTP/1.1\r\nHost: x\r\n\r\n", b"GET /raise HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /forever HTTP/1.1\r\nHost: x\r\n\r\n", b"GET /stream-raise HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /bad-stream-header HTTP/1.1\r\nHost: x\r\n\r\n", b"POST /json HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n{1}",
    b"GET /framing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", b"GET /stream?n=3 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n\r\n", b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"]

def worker(k):
    rnd = random.Random(k)
    end = time.time() + 6
    while time.time() < end:
        try:
            s = socket.create_connection(("127.0.0.1", P), timeout=2)
            for _ in range(rnd.randint(1, 8)):
                s.sendall(b"".join(rnd.choice(pieces) for _ in range(rnd.randint(1, 5))))
                if rnd.random() < 0.3:
                    time.sleep(rnd.random() * 0.05)
                if rnd.random() < 0.3:
                    try:
                        s.recv(rnd.choice([10, 1000, 100000]))
                    except OSError:
                        pass
            if rnd.random() < 0.3:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            if rnd.random() < 0.2:
                s.shutdown(socket.SHUT_WR)
                time.sleep(0.05)
            s.close()
        except OSError:
            pass

ts = [threading.Thread(target=worker, args=(k,)) for k in range(16)]
[t.start() for t in ts]
[t.join() for t in ts]
print("ok: storm done")
PY
sleep 1.5
expect_eq "still answering after the storm" "hello" "$(curl -s "http://127.0.0.1:$PORT/hello")"
alive
stop_server
python3 - "$WORK/server.log" <<'PY' || fail "log"
import collections, json, sys
c = collections.Counter()
for line in open(sys.argv[1]):
    d = json.loads(line)          # every line is JSON
    if d.get("msg") == "request":
        c[d["status"]] += 1
    elif d.get("level") == "error":
        assert d["msg"] in ("handler raised", "bad response from handler"), d
assert c[200] > 100 and c[400] > 0, c
print("ok: every log line is JSON; statuses", dict(c))
PY
finish
