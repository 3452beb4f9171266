#!/usr/bin/env bash
# moongate serve against bad input over raw sockets: each answered with its exact status and
# JSON body and a clean (lingering) close; slowloris, pipelining, clients that leave mid-stream.
source "$(dirname "$0")/lib/server.bash"
command -v python3 >/dev/null || exit 77
start_server "$E2E_DIR/server_conf.lua"
export PORT

PYTHONPATH="$E2E_DIR/lib" python3 - <<'PY' || FAILED=1
import json, socket, time
from rawhttp import *

IR = "invalid_request_error"

check_error("garbage -> 400", exchange(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n"),
            400, "bad request: invalid http method", "bad_request")
check_error("malformed request line -> 400", exchange(b"GET /a b c HTTP/1.1\r\n\r\n"),
            400, "bad request: invalid constant string", "bad_request")
check_error("no url -> 400", exchange(b"GET\r\n\r\n"), 400, "bad request: invalid http method", "bad_request")
check_error("HTTP/2.0 -> 505", exchange(b"GET / HTTP/2.0\r\nHost: x\r\n\r\n"),
            505, "http version not supported", "http_version_not_supported")
check_error("HTTP/9.9 -> 505", exchange(b"GET / HTTP/9.9\r\nHost: x\r\n\r\n"),
            505, "http version not supported", "http_version_not_supported")

many = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(100)) + b"\r\n"
check_error("101 headers -> 431", exchange(many), 431, "too many header fields", "too_many_headers")
ok100 = b"GET /hello HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(99)) + b"\r\n"
check("100 headers -> 200", exchange(ok100)[0] == 200)
big = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 70000 + b"\r\n\r\n"
check_error("70 KB header -> 431", exchange(big), 431, "request header fields too large", "header_too_large")
longurl = b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
check_error("70 KB url -> 431", exchange(longurl), 431, "request header fields too large", "header_too_large")

r = exchange(b"POST /echo HTTP/1.1\r\nHost: x\r\nX-Request-Id: big-1\r\nContent-Length: 99999999\r\n\r\n")
check("an error after the headers keeps the client's request id",
      r[0] == 413 and r[1]["x-request-id"] == "big-1" and json.loads(r[2])["error"]["request_id"] == "big-1", r)

# Content-Length over the limit: 413 at once, before any body byte is sent
s = connect()
s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 20971521\r\n\r\n")
t0 = time.time()
r = read_response(s)
check_error("content-length over the limit -> 413", r, 413, "request body too large", "body_too_large")
check("413 before the body, at once", time.time() - t0 < 1)
# ... and the client that still sends its body reads the status, then a clean close (no reset)
try:
    s.sendall(b"x" * 300000)
except OSError:
    pass
check("lingering close after 413: FIN, not reset", closed_cleanly(s))
s.close()

check_error("bad chunk size -> 400",
            exchange(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"),
            400, "bad request: invalid character in chunk size header", "bad_request")
check_error("content-length and transfer-encoding -> 400",
            exchange(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            400, "bad request: content-length with transfer-encoding, or repeated content-length", "bad_request")
check_error("two different content-lengths -> 400",
            exchange(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"),
            400, "bad request: content-length with transfer-encoding, or repeated content-length", "bad_request")
check_error("chunk larger than the body limit -> 413 at once",
            exchange(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1400001\r\n"),
            413, "request body too large", "body_too_large")
check_error("chunks adding up past the limit -> 413",
            exchange(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     + b"100000\r\n" + b"x" * 0x100000 + b"\r\n" + b"1400000\r\n"),
            413, "request body too large", "body_too_large")
check_error("space before the colon -> 400",
            exchange(b"GET /hello HTTP/1.1\r\nHost : x\r\n\r\n"),
            400, "bad request: invalid header name", "bad_request")
check_error("transfer-encoding other than chunked -> 400",
            exchange(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nabc"),
            400, "bad request: request has invalid transfer-encoding", "bad_request")
check_error("NUL in a header -> 400",
            exchange(b"GET /hello HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n"),
            400, "bad request: invalid character in header", "bad_request")
check_error("HTTP/1.1 without Host -> 400", exchange(b"GET /hello HTTP/1.1\r\nX-A: b\r\n\r\n"),
            400, "bad request: missing host header", "bad_request")
check_error("two Host headers -> 400", exchange(b"GET /hello HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
            400, "bad request: more than one host header", "bad_request")
check("HTTP/1.0 without Host -> 200", exchange(b"GET /hello HTTP/1.0\r\n\r\n")[:3:2] == (200, b"hello"))
check_error("unknown expectation -> 417",
            exchange(b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\nContent-Length: 1\r\n\r\nx"),
            417, "unsupported expect header", "expectation_failed")

# a 500 KB garbage burst: 400 and a clean close even with unread input
s = connect()
s.sendall(b"BLAH\r\n" + b"\x00\xff" * 1000)
r = read_response(s)
check("garbage burst -> 400", r[0] == 400)
try:
    s.sendall(b"more" * 100000)
except OSError:
    pass
check("lingering close after 400", closed_cleanly(s))
s.close()

# pipelining: three requests in one write, three answers in order
s = connect()
s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Request-Id: p1\r\n\r\n"
          b"POST /echo HTTP/1.1\r\nHost: x\r\nX-Request-Id: p2\r\nContent-Length: 3\r\n\r\nabc"
          b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Request-Id: p3\r\nConnection: close\r\n\r\n")
a, b, c = read_response(s), read_response(s), read_response(s)
check("pipelined answers in order",
      (a[0], a[1]["x-request-id"], a[2]) == (200, "p1", b"hello")
      and (b[0], b[1]["x-request-id"], json.loads(b[2])["body_len"]) == (200, "p2", 3)
      and (c[0], c[1]["x-request-id"], c[1].get("connection")) == (200, "p3", "close"))
check("connection: close honoured", closed_cleanly(s, 3))
s.close()

# slowloris, silent: nothing at all for header_timeout (1 s) -> 408
s = connect()
t0 = time.time()
r = read_response(s)
check_error("silent client -> 408", r, 408, "request header timeout", "request_timeout")
check("408 at the 1 s header timeout", 0.9 <= time.time() - t0 < 2.5, time.time() - t0)
s.close()

# slowloris, trickling one byte every 0.1 s: the timeout counts the whole head, not each byte
s = connect()
t0 = time.time()
req = b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100
sent_all = True
for ch in req:
    try:
        s.send(bytes([ch]))
    except OSError:
        break
    time.sleep(0.1)
    if time.time() - t0 > 1.5:
        break
r = read_response(s)
check_error("trickling client -> 408", r, 408, "request header timeout", "request_timeout")
check("trickle cut at 1 s", time.time() - t0 < 2.5, time.time() - t0)
s.close()

# a body that stops arriving: 408 after body_timeout (2 s)
s = connect()
s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
t0 = time.time()
r = read_response(s)
check_error("stalled body -> 408", r, 408, "request body timeout", "request_timeout")
check("stalled body cut at 2 s", 1.9 <= time.time() - t0 < 3.5, time.time() - t0)
s.close()

# an idle keep-alive connection is closed silently after keepalive_timeout; a busy one is not
s = connect()
s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
check("keep-alive answer", read_response(s)[0] == 200)
time.sleep(0.5)
s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
check("second request on the same connection", read_response(s)[0] == 200)
s.close()

# a client that leaves mid-stream: the handler task is cancelled, the server goes on
def stats():
    return json.loads(exchange(b"GET /stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")[2])
before = stats()
s = connect()
s.sendall(b"GET /stream-forever HTTP/1.1\r\nHost: x\r\nX-Request-Id: gone-1\r\n\r\n")
got = b""
while got.count(b"data:") < 3:
    got += s.recv(4096)
s.close()
time.sleep(0.3)
after = stats()
check("stream handler started", after["streams"]["started"] == before["streams"]["started"] + 1)
check("handler cancelled when the client left (no task left behind)",
      after["live_tasks"] == before["live_tasks"] and after["streams"]["cancelled_after"] == 0, (before, after))

# keep-alive, then a bare CRLF (skipped by the parser) until the header timeout: a 408 that
# knows nothing of the previous request
s = connect()
s.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\nX-Request-Id: prev-2\r\n\r\n")
r1 = read_response(s)
s.sendall(b"\r\n")
r2 = read_response(s)
check("bare CRLF on a kept-alive connection -> 408 with a fresh id",
      r1[0] == 200 and r2[0] == 408 and r2[1]["x-request-id"] != "prev-2"
      and json.loads(r2[2])["error"]["code"] == "request_timeout", (r1[:2], r2))
s.close()

# a client that leaves while its handler waits (no bytes written yet): cancelled at once
s = connect()
s.sendall(b"GET /slow?s=0.8 HTTP/1.1\r\nHost: x\r\nX-Request-Id: gone-2\r\n\r\n")
time.sleep(0.2)
s.close()
time.sleep(0.2)
check("waiting handler cancelled when the client left", stats()["live_tasks"] == before["live_tasks"])

# a slow reader of an 8 MiB response: res:write waits (backpressure), nothing is lost
s = connect()
s.sendall(b"GET /big?mb=8 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
time.sleep(0.5)   # the server fills the socket buffers, then its res:write waits
st, h, body = read_response(s)
check("8 MiB streamed to a slow reader", st == 200 and len(body) == 8 * 2**20 and body.count(b"x") == len(body))
check("res:write waited for the reader", stats()["streams"].get("waited", 0) >= 1)
s.close()
# ... and one that leaves half way
s = connect()
s.sendall(b"GET /big?mb=64 HTTP/1.1\r\nHost: x\r\n\r\n")
s.recv(100000)
s.close()
time.sleep(0.3)
check("no task left after the slow reader left", stats()["live_tasks"] == before["live_tasks"])

# res:abort(): before the answer the connection is reset; after res:start it is closed, and the
# client has a truncated body (no final chunk)
for path, want_reset in ((b"/abort", True), (b"/abort?after=1", False)):
    s = connect()
    s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nX-Request-Id: abort-1\r\n\r\n")
    got, reset = b"", False
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
    except ConnectionResetError:
        reset = True
    s.close()
    if want_reset:
        check("res:abort before the answer: reset, nothing sent", reset and got == b"", got)
    else:
        check("res:abort mid-answer: truncated body, clean close",
              not reset and got.endswith(b"7\r\npartial\r\n") and b"\r\n0\r\n\r\n" not in got, got)
check("writes after abort say closed", stats()["streams"].get("after_abort") == "closed")

# after all this the server still answers
check("still answering", exchange(b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")[2] == b"hello")
done()
PY

sleep 0.2
python3 - "$WORK/server.log" <<'PY' || fail "499 logged"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
gone = [l for l in lines if l.get("request_id") == "gone-1" and l.get("msg") == "request"]
assert gone and gone[0]["status"] == 499 and gone[0]["path"] == "/stream-forever", gone
gone2 = [l for l in lines if l.get("request_id") == "gone-2" and l.get("msg") == "request"]
assert gone2 and gone2[0]["status"] == 499 and 150 <= gone2[0]["duration_ms"] < 1000, gone2
bad = [l for l in lines if l.get("msg") == "request" and l["status"] == 431]
assert bad and bad[0]["error"] == "too many header fields", bad
ab = [l for l in lines if l.get("request_id") == "abort-1" and l.get("msg") == "request"]
assert len(ab) == 2 and all(l["status"] == 444 and l["error"] == "aborted by the handler" for l in ab), ab
print("ok: 499, 444 and error statuses in the access log")
PY
alive
stop_server
finish
