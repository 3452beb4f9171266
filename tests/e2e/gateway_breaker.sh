#!/usr/bin/env bash
# Circuit breaker across 2 workers: after N failures the dead provider gets no traffic, after the
# cool-down one probe goes through, a good probe closes the circuit; state at /admin/breakers.
. "$(dirname "$0")/lib/gateway.bash"

start_mock p1
start_mock p2
cat > "$GW_TMP/conf.lua" <<LUA
return {
  providers = {
    primary = { kind = "mock", base_url = "$MOCK_p1_URL" },
    secondary = { kind = "mock", base_url = "$MOCK_p2_URL" },
  },
  models = {
    default = { route = { { provider = "primary", timeout = 2 }, { provider = "secondary", timeout = 2 } }, deadline = 5 },
    only = { route = { { provider = "primary", timeout = 2 } }, deadline = 5 },
  },
  breaker = { failures = 3, window = 30, cooldown = 12 },   -- room for a loaded machine between the checks
}
LUA
start_gateway "$GW_TMP/conf.lua" --workers 2
Q='{"model":"default","messages":[{"role":"user","content":"hi"}]}'
breaker_state() {   # no python here: this runs inside the cool-down's timing
  curl -s "$GW/admin/breakers" | grep -o "\"$1\":{[^}]*}" | grep -o '"state":"[a-z_]*"' | cut -d'"' -f4
}

check "starts closed" "$(breaker_state primary)" closed
mock_fault "$MOCK_p1" "status=503"
for i in 1 2 3; do chat "$Q"; check "failure $i still answered by the secondary" "$STATUS $(header x-moongate-provider)" "200 secondary"; done
check "primary called 3 times" "$(mock_stat "$MOCK_p1" chat)" 3
check "open after 3 failures (seen by every worker)" "$(breaker_state primary)$(breaker_state primary)$(breaker_state primary)" openopenopen
for i in 1 2 3 4 5 6; do chat "$Q"; done
check "open: no traffic to the primary" "$(mock_stat "$MOCK_p1" chat)" 3
check "open: answered by the secondary in one attempt" "$STATUS $(header x-moongate-attempts) $(header x-moongate-provider)" "200 1 secondary"
chat '{"model":"only","messages":[{"role":"user","content":"hi"}]}'
check "open with no other tier: 503 circuit_open" "$STATUS $(json_field "d['error']['code']")" "503 circuit_open"
check "503 carries Retry-After" "$( [ -n "$(header retry-after)" ] && echo yes)" yes
check "/v1/models shows the open breaker" "$(curl -s "$GW/v1/models" | python3 -c "import sys,json; print([t['breaker'] for m in json.load(sys.stdin)['data'] if m['id']=='default' for t in m['moongate']['route']])")" "['open', 'closed']"

sleep 12.2
chat "$Q"   # the half-open probe fails: open again
check "failed probe: one more call" "$(mock_stat "$MOCK_p1" chat)" 4
check "failed probe: open again" "$(breaker_state primary)" open
chat "$Q"
check "reopened: no traffic" "$(mock_stat "$MOCK_p1" chat)" 4

mock_fault "$MOCK_p1" ""
sleep 12.2
chat "$Q"
check "good probe answers from the primary" "$STATUS $(header x-moongate-provider)" "200 primary"
check "good probe closes the circuit" "$(breaker_state primary)" closed
for i in 1 2 3 4; do chat "$Q"; done
check "closed: traffic is back" "$(mock_stat "$MOCK_p1" chat)" 9
# closing a circuit by hand
mock_fault "$MOCK_p1" "status=503"
for i in 1 2 3; do chat "$Q"; done
check "open again" "$(breaker_state primary)" open
check "reset by hand" "$(curl -s -XPOST "$GW/admin/breakers/primary/reset" | python3 -c "import sys,json; print(json.load(sys.stdin)['breaker']['state'])")" closed
check "reset: closed for every worker" "$(breaker_state primary)$(breaker_state primary)" closedclosed
check "reset an unknown provider: 404" "$(curl -s -o /dev/null -w '%{http_code}' -XPOST "$GW/admin/breakers/nope/reset")" 404
finish
