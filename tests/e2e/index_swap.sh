#!/usr/bin/env bash
# Separate read and write indexes across processes: a reader queries without pause while
# `moongate index` publishes new versions; every query must succeed, see whole versions
# only (never a mix), and move to each new version by itself.
set -euo pipefail
mg=${MOONGATE:?MOONGATE is not set}
work=$(mktemp -d)
reader=
trap '[ -n "$reader" ] && kill $reader 2>/dev/null; rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

mkdir -p "$work/docs"
gen() {   # VERSION: 40 documents that all name the version they belong to
  for i in $(seq 40); do
    printf '# Doc %d\n\nThis document belongs to release r%d of the handbook, section %d.\n' "$i" "$1" "$i" \
      > "$work/docs/doc$i.md"
  done
}
gen 1
"$mg" index --quiet --index "$work/idx" "$work/docs" > /dev/null

cat > "$work/reader.lua" <<'EOF'
-- query until told to stop; one line per query: version, hits, releases seen in the hits
local retrieval = require "moongate.retrieval"
local idx = assert(retrieval.open(arg[1], { refresh_interval = 0.05 }))
local out = assert(io.open(arg[2], "w"))
local stop = arg[3]
while not io.open(stop) do
  local hits, info = idx:search { query = "which release of the handbook", k = 40, mode = "bm25" }
  if not hits then
    out:write("error ", tostring(info), "\n")
  else
    local releases = {}
    for _, h in ipairs(hits) do releases[h.text:match("release (r%d+)")] = true end
    local r = {}
    for k in pairs(releases) do r[#r + 1] = k end
    table.sort(r)
    out:write(info.version, " ", #hits, " ", table.concat(r, ","), " ", idx.refresh_error or "", "\n")
  end
  out:flush()
  require("moongate").sleep(0.01)
end
out:close()
EOF
wait_for_version() {   # V: until the reader has answered from version V (10 s at most)
  for _ in $(seq 200); do
    [ -f "$work/log" ] && grep -q "^$1 " "$work/log" && return 0
    sleep 0.05
  done
  fail "the reader never answered from version $1"
}
"$mg" run "$work/reader.lua" "$work/idx" "$work/log" "$work/stop" &
reader=$!
wait_for_version 1
gen 2
"$mg" index --quiet --index "$work/idx" "$work/docs" > /dev/null
wait_for_version 2
gen 3
"$mg" index --quiet --index "$work/idx" "$work/docs" > /dev/null
wait_for_version 3
sleep 0.2
touch "$work/stop"
wait $reader
reader=

grep -q '^error' "$work/log" && fail "a query failed: $(grep '^error' "$work/log" | head -1)"
# each version answers with its own 40 documents, all of one release
bad=$(awk '!(($1 == 1 && $3 == "r1") || ($1 == 2 && $3 == "r2") || ($1 == 3 && $3 == "r3")) || $2 != 40' "$work/log" | head -1)
[ -z "$bad" ] || fail "a query saw a mixed or partial version: $bad"
# versions only move forward, and the reader reached each of them
seen=$(awk '{print $1}' "$work/log" | uniq | tr '\n' ' ')
[ "$seen" == "1 2 3 " ] || fail "versions seen in order: [$seen]"
echo "index_swap: $(wc -l < "$work/log") queries across 3 versions, all whole; passed"
