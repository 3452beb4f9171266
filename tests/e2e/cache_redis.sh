#!/usr/bin/env bash
# The exact cache's shared tier in Redis through two real gateways (`moongate serve` twice, one
# redis-server): an answer cached through instance A is a hit on instance B without an upstream
# call, tenant B never gets tenant A's answer on either, a flush through B empties the tenant for
# A too (its own LRU included), and with Redis down both answer from upstream (miss), never fail.
. "$(dirname "$0")/lib/gateway.bash"
. "$(dirname "$0")/lib/redis.bash"
unset MOONGATE_ADMIN_KEY

start_redis
start_mock up
CONF="$(dirname "$0")/../../examples/caches/redis.lua"   # docs/caches.md's example
export MOCK_URL=$MOCK_up_URL REDIS_URL
start_gateway "$CONF"; GW_A=$GW
start_gateway "$CONF"; GW_B=$GW
A=(-H "authorization: Bearer sk-a")
B=(-H "authorization: Bearer sk-b")
calls() { mock_stat "$MOCK_up" chat; }
Q='{"model":"default","temperature":0,"messages":[{"role":"user","content":"what is two plus two"}]}'

GW=$GW_A; chat "$Q" "${A[@]}"
check "instance A: miss, answered upstream" "$STATUS $(header x-moongate-cache) $(calls)" "200 miss 1"
FIRST_ID=$(json_field "d['id']")
GW=$GW_B; chat "$Q" "${A[@]}"
check "instance B, same request: hit, upstream not called" \
  "$STATUS $(header x-moongate-cache) $(header x-moongate-cache-kind) $(calls)" "200 hit exact 1"
check "B's hit is the answer A cached" "$(json_field "d['id']") $(json_field "d['choices'][0]['message']['content']")" \
  "$FIRST_ID mock answer: what is two plus two"
check "the entry lives in Redis" "$(rcli --scan --pattern 'mgc:x:*' | wc -l)" 1

GW=$GW_B; chat "$Q" "${B[@]}"
check "tenant B on B: miss, its own upstream call" "$STATUS $(header x-moongate-cache) $(calls)" "200 miss 2"
check "tenant B got its own answer" "$([ "$(json_field "d['id']")" != "$FIRST_ID" ] && echo own)" own
B_ID=$(json_field "d['id']")
GW=$GW_A; chat "$Q" "${B[@]}"
check "tenant B on A: hit on B's own answer, not A's" "$(header x-moongate-cache) $(json_field "d['id']") $(calls)" "hit $B_ID 2"
GW=$GW_A; chat "$Q" "${A[@]}"
check "tenant A on A again: its LRU answers" "$(header x-moongate-cache) $(json_field "d['id']") $(calls)" "hit $FIRST_ID 2"

# a flush through B: A stops answering team-a from cache at once; team-b keeps its entry
check "flush team-a through B" "$(curl -s "$GW_B/admin/cache/flush" -H 'authorization: Bearer sk-admin' -d '{"tenant":"team-a"}')" \
  '{"flushed":1,"tenant":"team-a"}'
GW=$GW_A; chat "$Q" "${A[@]}"
check "after the flush, A misses for team-a (its LRU copy is of the old generation)" "$(header x-moongate-cache) $(calls)" "miss 3"
GW=$GW_A; chat "$Q" "${B[@]}"
check "team-b kept its entry" "$(header x-moongate-cache) $(json_field "d['id']") $(calls)" "hit $B_ID 3"

# Redis down: answers come from upstream, the flush says the tier is unavailable
stop_redis
GW=$GW_B; chat "$Q" "${A[@]}"
check "redis down: served from upstream (miss)" "$STATUS $(header x-moongate-cache) $(calls)" "200 miss 4"
curl -s -o "$OUT" -w '%{http_code}' "$GW_B/admin/cache/flush" -H 'authorization: Bearer sk-admin' -d '{"tenant":"team-a"}' > "$GW_TMP/code"
check "redis down: flush is 503 cache_store_unavailable" "$(cat "$GW_TMP/code") $(json_field "d['error']['code']")" "503 cache_store_unavailable"
check "no instance crashed" "$(kill -0 "${GW_PIDS[2]}" && kill -0 "${GW_PIDS[3]}" && echo alive)" alive
finish
