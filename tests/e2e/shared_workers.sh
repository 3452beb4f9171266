#!/usr/bin/env bash
# moongate.shared under `moongate serve --workers 2`: clients hammer /incr on both workers at
# once; the shared counter ends at exactly the number of requests (no update lost) and equals the
# sum of the per-worker counts, with both workers having served.
source "$(dirname "$0")/lib/server.bash"
command -v curl >/dev/null || exit 77
command -v python3 >/dev/null || exit 77

start_server --workers 2 "$E2E_DIR/shared_conf.lua"
URL="http://127.0.0.1:$PORT"

# 8 threads x 500 requests, a new connection each (SO_REUSEPORT spreads connections, not requests)
python3 - "$URL" >"$WORK/load.out" <<'PY' || fail "load: $(cat "$WORK/load.out")"
import sys, threading, urllib.request
url, errors, pids = sys.argv[1], [], set()
def worker():
    for _ in range(500):
        try:
            with urllib.request.urlopen(url + "/incr", timeout=10) as r:
                pids.add(r.read().decode().split()[0])
        except Exception as e:
            errors.append(repr(e))
ts = [threading.Thread(target=worker) for _ in range(8)]
for t in ts: t.start()
for t in ts: t.join()
print(len(errors), len(pids))
sys.exit(1 if errors else 0)
PY
expect_eq "no request failed, 2 workers answered" "0 2" "$(cat "$WORK/load.out")"

out=$(curl -s "$URL/count")
r=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); p=d["per_worker"]; print(d["hits"], sum(p.values()), len(p))' "$out")
expect_eq "shared counter: hits, sum over workers, workers" "4000 4000 2" "$r"

stop_server
finish
