#!/usr/bin/env bash
# moongate serve end to end with curl: routes, request ids, keep-alive, chunked and 100-continue
# uploads, a 20 MB body, streaming, handler errors (500) and deadlines (504), the access log.
source "$(dirname "$0")/lib/server.bash"
command -v curl >/dev/null || exit 77
command -v python3 >/dev/null || exit 77

start_server "$E2E_DIR/server_conf.lua"
URL="http://127.0.0.1:$PORT"

expect_eq "GET /health" '200 {"status":"ok"}' "$(curl -s -w '%{http_code} ' -o /dev/stdout "$URL/health" | sed 's/^\([0-9]*\) \(.*\)/\1 \2/' | python3 -c 'import sys; d=sys.stdin.read(); b=d[:-4]; print(d[-4:].strip(), b)')"
expect_eq "config app answers" "hello" "$(curl -s "$URL/hello")"

# request ids: given, from traceparent, generated; always echoed back and in the handler's context
hdrs=$(curl -s -D - -o /dev/null -H 'X-Request-Id: my-req.42' "$URL/hello" | tr -d '\r')
expect_eq "x-request-id kept" "x-request-id: my-req.42" "$(grep -i '^x-request-id' <<<"$hdrs")"
hdrs=$(curl -s -D - -o /dev/null -H 'traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' "$URL/hello" | tr -d '\r')
expect_eq "trace id from traceparent" "x-request-id: 4bf92f3577b34da6a3ce929d0e0e4736" "$(grep -i '^x-request-id' <<<"$hdrs")"
hdrs=$(curl -s -D - -o /dev/null -H 'X-Request-Id: bad id with spaces' "$URL/hello" | tr -d '\r')
if grep -Eq '^x-request-id: [0-9a-f]{32}$' <<<"$hdrs"; then pass "insane x-request-id replaced by a generated one"; else fail "generated id: $hdrs"; fi

# the request table
curl -s -H 'X-Request-Id: echo-1' -H 'X-Multi: a' -H 'X-Multi: b' -H 'Authorization: Bearer t' \
  "$URL/echo?a=1&b=x%20y&a=2&flag" -d 'hello body' >"$WORK/echo.json"
python3 - "$WORK/echo.json" <<'PY' || fail "request table"
import json, sys
d = json.load(open(sys.argv[1]))
want = {"method": "POST", "path": "/echo", "query": "a=1&b=x%20y&a=2&flag",
        "args": {"a": ["1", "2"], "b": "x y", "flag": True}, "body_len": 10,
        "body_head": "hello body", "body_tail": "hello body", "id": "echo-1", "ctx_id": "echo-1",
        "version": "1.1", "remote_ok": True, "start_ok": True}
for k, v in want.items():
    assert d[k] == v, (k, d[k], v)
h = d["headers"]
assert h["x-multi"] == "a, b", h
assert h["content-type"] == "application/x-www-form-urlencoded", h
assert h["authorization"] == "Bearer t"
print("ok: request table")
PY

# keep-alive: two requests on one connection
out=$(curl -sv "$URL/hello" "$URL/hello" 2>&1)
if grep -q "Re-using existing connection" <<<"$out"; then pass "keep-alive reuses the connection"; else fail "keep-alive: $out"; fi
# HTTP/1.0 closes by default
out=$(curl -s -0 -D - "$URL/hello" | tr -d '\r')
if grep -q "^connection: close" <<<"$out" && grep -q "^hello$" <<<"$(tail -n1 <<<"$out")"; then pass "HTTP/1.0 gets connection: close"; else fail "http/1.0: $out"; fi
# HEAD: headers with the length, no body
out=$(curl -s -I "$URL/hello" | tr -d '\r')
expect_eq "HEAD content-length" "content-length: 5" "$(grep '^content-length' <<<"$out")"

# uploads: chunked, Expect: 100-continue, 20 MB (the default limit), 20 MB + 1 -> 413
python3 -c 'import sys; sys.stdout.buffer.write(b"0123456789abcdef" * (20 * 2**20 // 16))' >"$WORK/20mb"
echo -n "x" | cat "$WORK/20mb" - >"$WORK/20mb1"
r=$(curl -s -H 'Transfer-Encoding: chunked' --data-binary "chunked-body" "$URL/echo" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["body_len"], d["headers"].get("transfer-encoding"))')
expect_eq "chunked upload" "12 chunked" "$r"
out=$(curl -sv -H 'Expect: 100-continue' --data-binary @"$WORK/20mb" "$URL/echo" 2>"$WORK/curl.err")
expect_eq "20 MB body with 100-continue" "20971520 0123456789abcdef 0123456789abcdef" \
  "$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print(d["body_len"], d["body_head"], d["body_tail"])' "$out")"
if grep -q "HTTP/1.1 100 Continue" "$WORK/curl.err"; then pass "100 Continue sent"; else fail "no 100 Continue"; fi
code=$(curl -s -o "$WORK/413.json" -w '%{http_code}' -H 'Expect:' --data-binary @"$WORK/20mb1" "$URL/echo")
expect_eq "20 MB + 1 byte -> 413" "413" "$code"
expect_eq "413 body" "request body too large body_too_large" \
  "$(python3 -c 'import json,sys; e=json.load(open(sys.argv[1]))["error"]; print(e["message"], e["code"])' "$WORK/413.json")"

# JSON bodies
expect_eq "req:json" '{"got":{"a":[1,2]}}' "$(curl -s -H 'content-type: application/json' -d '{"a":[1,2]}' "$URL/json")"
expect_eq "invalid JSON -> 400" '400 invalid_json' \
  "$(curl -s -w ' %{http_code}' -d '{"a":' "$URL/json" | python3 -c 'import json,sys; b,c=sys.stdin.read().rsplit(" ",1); print(c, json.loads(b)["error"]["code"])')"

# streaming
out=$(curl -sN -D "$WORK/sh" "$URL/stream?n=3")
expect_eq "SSE stream body" "$(printf 'data: 1\n\ndata: 2\n\ndata: 3\n\n')" "$out"
if grep -qi '^transfer-encoding: chunked' "$WORK/sh" && grep -qi '^content-type: text/event-stream' "$WORK/sh"; then pass "stream is chunked event-stream"; else fail "stream headers: $(cat "$WORK/sh")"; fi

# handler failures: raise -> 500 with the request id; no response -> 500; bad header -> 500;
# waiting past the deadline (1 s here) -> 504 at the deadline
check_err() { # NAME URL STATUS MESSAGE CODE
  local body code
  body=$(curl -s -D "$WORK/h" -H "X-Request-Id: rid-$3" "$URL$2")
  code=$(head -n1 "$WORK/h" | cut -d' ' -f2)
  expect_eq "$1" "$3 {\"error\":{\"message\":\"$4\",\"type\":\"server_error\",\"code\":\"$5\",\"request_id\":\"rid-$3\"}}" "$code $body"
}
check_err "handler raises -> 500" /raise 500 "internal server error" internal_error
check_err "handler returns nothing -> 500" /nothing 500 "internal server error" internal_error
t0=$(date +%s.%N)
check_err "handler waits forever -> 504" /forever 504 "the request handler timed out" timeout
t1=$(date +%s.%N)
python3 -c "import sys; d=$t1-$t0; sys.exit(0 if 0.9 <= d < 2.5 else 1)" && pass "504 at the 1 s deadline" || fail "504 took $(python3 -c "print($t1-$t0)") s"
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/bad-header")
expect_eq "header with CR LF from a handler -> 500" 500 "$code"
out=$(curl -s "$URL/stream-raise"; echo " rc=$?")
expect_eq "stream that raises is cut (curl sees a truncated body)" "data: 1 rc=18" "$(tr -d '\n' <<<"$out")"
sleep 0.1
expect_eq "still serving after failures" "hello" "$(curl -s "$URL/hello")"

# framing: the server's own for whole responses; connection: close from a handler is honoured;
# the handler deadline bounds the time to the first byte, not a stream's length; a started
# stream that stalls is cut after stream_idle_timeout
out=$(curl -s "$URL/stream-long"; echo " rc=$?")
expect_eq "a 2 s stream outlives the 1 s handler deadline" "data: 1data: 2data: 3data: 4data: 5data: 6data: 7data: 8 rc=0" "$(tr -d '\n' <<<"$out")"
t0=$(date +%s.%N)
out=$(curl -s "$URL/stream-stall"; echo " rc=$?")
t1=$(date +%s.%N)
expect_eq "a stalled stream is cut (truncated body)" "data: 1 rc=18" "$(tr -d '\n' <<<"$out")"
python3 -c "import sys; d=$t1-$t0; sys.exit(0 if 0.9 <= d < 2.5 else 1)" && pass "cut after the 1 s stream idle timeout" || fail "stall cut after $(python3 -c "print($t1-$t0)") s"

# an HTTP/1.0 stream is delimited by the close
out=$(curl -s -D - "$URL/framing" | tr -d '\r')
expect_eq "handler's content-length / transfer-encoding dropped" "content-length: 3|abc" \
  "$(grep -ci '^content-length' <<<"$out" | sed 's/^1$//')$(grep -i '^content-length' <<<"$out")|$(tail -n1 <<<"$out")"
if grep -qi '^transfer-encoding' <<<"$out"; then fail "transfer-encoding kept: $out"; else pass "no transfer-encoding on a whole response"; fi
out=$(curl -sv "$URL/close-me" "$URL/hello" 2>&1)
if grep -q "Re-using existing connection" <<<"$out"; then fail "connection: close not honoured"; else pass "handler's connection: close closes"; fi
out=$(curl -s -0 -D - -H 'Connection: keep-alive' "$URL/stream?n=2" | tr -d '\r')
expect_eq "HTTP/1.0 stream: one connection header, close" "1 connection: close" \
  "$(grep -ci '^connection' <<<"$out") $(grep -i '^connection' <<<"$out")"
if grep -qi '^transfer-encoding' <<<"$out"; then fail "chunked to HTTP/1.0: $out"; else pass "no chunking for HTTP/1.0"; fi
check_err "res:start with a bad header -> 500" /bad-stream-header 500 "internal server error" internal_error

# logs: one access line per request, the traceback of the raise, secrets redacted
curl -s -H 'X-Request-Id: log-1' -H 'Authorization: Bearer sk-live-secret' "$URL/log" >/dev/null
sleep 0.1
python3 - "$WORK/server.log" <<'PY' || fail "log lines"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
access = [l for l in lines if l.get("msg") == "request"]
hello = [l for l in access if l["path"] == "/hello" and l["method"] == "GET"]
assert hello and all(l["status"] == 200 and l["method"] == "GET" and l["bytes"] == 5
                     and isinstance(l["duration_ms"], float) and len(l["request_id"]) > 0 for l in hello), hello
raised = [l for l in lines if l.get("msg") == "handler raised"]
assert raised and raised[0]["request_id"] == "rid-500" and "boom in handler" in raised[0]["error"] \
    and "stack traceback" in raised[0]["traceback"], raised
a500 = [l for l in access if l["path"] == "/raise"][0]
assert a500["status"] == 500 and a500["request_id"] == "rid-500", a500
a504 = [l for l in access if l["path"] == "/forever"][0]
assert a504["status"] == 504 and 900 <= a504["duration_ms"] < 2500, a504
h = [l for l in lines if l.get("msg") == "from handler"][0]
assert h["request_id"] == "log-1" and h["authorization"] == "[redacted]" and h["n"] == 7 \
    and h["note"] == "key sk-[redacted]", h
text = open(sys.argv[1]).read()
assert "secret-token-123" not in text and "sk-live-secret" not in text and "abcdef123456" not in text
print("ok: access log, error traceback, redaction")
PY

# config: relative paths resolve against the config's folder
expect_eq "config.resolve" "{\"dir\":\"$E2E_DIR\",\"resolved\":\"$E2E_DIR/data/x.txt\",\"greeting\":\"hello\"}" \
  "$(curl -s "$URL/config" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(json.dumps({"dir":d["dir"],"resolved":d["resolved"],"greeting":d["greeting"]}, separators=(",",":")))')"

alive
stop_server

# an app's init refuses its config with nil, message: one line, exit 1; one that raises is a bug,
# shown with its traceback
printf 'return { init = function(c) if not c.greeting then return nil, "greeting: required" end end,\n  handle = function() return { status = 200 } end }\n' > "$WORK/refuses.lua"
printf 'return { app = "refuses" }\n' > "$WORK/refused.lua"
expect_eq "init refuses: its one line, exit 1" "moongate serve: greeting: required|rc=1" \
  "$({ timeout 10 "$MOONGATE" serve --listen 127.0.0.1:1 "$WORK/refused.lua" 2>&1; echo "rc=$?"; } | paste -sd'|')"
printf 'return { init = function() error("boom") end, handle = function() end }\n' > "$WORK/raises.lua"
printf 'return { app = "raises" }\n' > "$WORK/raising.lua"
out=$(timeout 10 "$MOONGATE" serve --listen 127.0.0.1:1 "$WORK/raising.lua" 2>&1)
expect_eq "init raises: prefixed, with its traceback" "moongate serve: app init failed: $WORK/raises.lua:1: boom|stack traceback:" \
  "$(sed -n '1p;2p' <<<"$out" | paste -sd'|')"
finish
