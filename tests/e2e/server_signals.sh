#!/usr/bin/env bash
# moongate serve and signals: SIGTERM drains in-flight requests (within `grace`) and exits 0,
# SIGHUP reloads the config and the app (a broken one keeps the old), --workers 2 shares the port.
source "$(dirname "$0")/lib/server.bash"
command -v curl >/dev/null || exit 77

make_app() { # VERSION
  cat >"$WORK/reload_app.lua" <<LUA
local mg = require "moongate"
local config = require "moongate.config"
local process = require "moongate._process"
return { handle = function(req)
  if req.path == "/slow" then mg.sleep(tonumber(req.args.s) or 1) return { status = 200, body = "slept" } end
  if req.path == "/pid" then return { status = 200, body = tostring(process.pid()) } end
  return { status = 200, body = "$1 " .. tostring(config.get().greeting) }
end }
LUA
}
make_conf() { # GREETING GRACE
  cat >"$WORK/conf.lua" <<LUA
return { app = "reload_app", greeting = "$1", grace = $2, limits = { handler_timeout = 10 } }
LUA
}

# --- SIGTERM: an in-flight request finishes, new connections are refused, exit 0
make_app v1; make_conf hi 5
start_server "$WORK/conf.lua"
URL="http://127.0.0.1:$PORT"
expect_eq "app from the config's folder" "v1 hi" "$(curl -s "$URL/")"
curl -s -D "$WORK/slow.h" "$URL/slow?s=1" >"$WORK/slow.out" &
CURL=$!
sleep 0.3
t0=$(date +%s.%N)
kill -TERM "$SERVER_PID"
sleep 0.2
curl -s -o /dev/null "$URL/" ; rc=$?
expect_eq "no new connections while draining (curl exit 7)" 7 "$rc"
wait "$CURL"
expect_eq "in-flight request finished" "slept" "$(cat "$WORK/slow.out")"
if grep -qi '^connection: close' "$WORK/slow.h"; then pass "drained response says connection: close"; else fail "no connection: close"; fi
code=0; wait "$SERVER_PID" || code=$?; SERVER_PID=
t1=$(date +%s.%N)
expect_eq "exit status after drain" 0 "$code"
python3 -c "import sys; sys.exit(0 if $t1-$t0 < 2.5 else 1)" && pass "exits once drained" || fail "drain took $(python3 -c "print($t1-$t0)") s"
grep -q '"msg":"draining"' "$WORK/server.log" && pass "draining logged" || fail "no draining line"

# --- grace runs out: the request still running is cut, exit 0 at the end of grace
make_conf hi 1
start_server "$WORK/conf.lua"
URL="http://127.0.0.1:$PORT"
curl -s "$URL/slow?s=5" >/dev/null &
CURL=$!
sleep 0.3
t0=$(date +%s.%N)
kill -TERM "$SERVER_PID"
code=0; wait "$SERVER_PID" || code=$?; SERVER_PID=
t1=$(date +%s.%N)
rc=0; wait "$CURL" || rc=$?
expect_eq "exit status after grace" 0 "$code"
python3 -c "import sys; sys.exit(0 if 0.9 <= $t1-$t0 < 3 else 1)" && pass "stopped at the 1 s grace" || fail "grace stop took $(python3 -c "print($t1-$t0)") s"
expect_eq "cut request: curl sees an empty reply (52)" 52 "$rc"

# --- a second SIGTERM does not wait for the grace period
make_conf hi 30
start_server "$WORK/conf.lua"
URL="http://127.0.0.1:$PORT"
curl -s "$URL/slow?s=5" >/dev/null &
CURL=$!
sleep 0.3
t0=$(date +%s.%N)
kill -TERM "$SERVER_PID"; sleep 0.2; kill -TERM "$SERVER_PID"
code=0; wait "$SERVER_PID" || code=$?; SERVER_PID=
t1=$(date +%s.%N)
wait "$CURL" || true
expect_eq "exit status after a second SIGTERM" 0 "$code"
python3 -c "import sys; sys.exit(0 if $t1-$t0 < 1.5 else 1)" && pass "second SIGTERM stops at once" || fail "second SIGTERM took $(python3 -c "print($t1-$t0)") s"

# --- SIGHUP: new config and app for new requests; a broken app keeps the old one
make_app v1; make_conf hi 5
start_server "$WORK/conf.lua"
URL="http://127.0.0.1:$PORT"
expect_eq "before reload" "v1 hi" "$(curl -s "$URL/")"
make_app v2; make_conf hello 5
sed -i 's/handler_timeout = 10/handler_timeout = 10, body_bytes = 10/' "$WORK/conf.lua"
kill -HUP "$SERVER_PID"; sleep 0.3
expect_eq "after SIGHUP" "v2 hello" "$(curl -s "$URL/")"
expect_eq "new limits after SIGHUP" 413 "$(curl -s -o /dev/null -w '%{http_code}' -d 'more than ten bytes' "$URL/")"
echo 'return { handle = function( }' >"$WORK/reload_app.lua"
kill -HUP "$SERVER_PID"; sleep 0.3
expect_eq "broken app: the old one keeps serving" "v2 hello" "$(curl -s "$URL/")"
grep -q '"msg":"reload failed; the old config keeps serving"' "$WORK/server.log" && pass "reload failure logged" || fail "reload failure not logged"
alive
stop_server

# --- --workers 2: two processes answer on one port; SIGTERM to the master stops both, exit 0
make_app v1; make_conf hi 5
start_server --workers 2 "$WORK/conf.lua"
URL="http://127.0.0.1:$PORT"
pids=$(for i in $(seq 1 60); do curl -s "$URL/pid"; echo; done | sort -u | grep -c .)
expect_eq "two workers answer" 2 "$pids"
kill -HUP "$SERVER_PID"; sleep 0.3
expect_eq "HUP forwarded to the workers" "v1 hi" "$(curl -s "$URL/")"
stop_server
expect_eq "port released" 7 "$(curl -s -o /dev/null "$URL/"; echo $?)"
finish
