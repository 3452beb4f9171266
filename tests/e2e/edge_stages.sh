#!/usr/bin/env bash
# A config's own edge stage (examples/edge/business_hours.lua) runs after the built-in ones:
# it sees the tenant auth found, can refuse, adds headers to answers both streamed and not,
# and stages run in the order the config lists them.
. "$(dirname "$0")/lib/gateway.bash"
HERE=$(cd "$(dirname "$0")/../.." && pwd)

start_mock p1
cp "$HERE/examples/edge/business_hours.lua" "$GW_TMP/business_hours.lua"
cat > "$GW_TMP/conf.lua" <<LUA
return {
  providers = { p1 = { kind = "mock", base_url = "$MOCK_p1_URL" } },
  models = { default = { route = { { provider = "p1", model = "m1" } } } },
  auth = { keys = { ["sk-day"] = "day-shop", ["sk-any"] = "always" } },
  plans = { ["day-shop"] = "business-hours", always = "24x7" },
  clock_hour = function() return 22 end,   -- 22:00 UTC: outside business hours
  edge = { extra = { "business_hours.lua" } },
}
LUA
start_gateway "$GW_TMP/conf.lua"
Q='{"model":"default","messages":[{"role":"user","content":"hi"}]}'

chat "$Q" -H 'authorization: Bearer sk-day'
check "the stage refuses at 22:00" "$STATUS $(json_field "d['error']['code']") $(header x-plan)" "403 outside_business_hours business-hours"
chat "$Q" -H 'authorization: Bearer sk-any'
check "another plan is answered, stamped" "$STATUS $(header x-plan) $(header x-stages-seen)" "200 24x7 2"
chat '{"model":"default","stream":true,"messages":[{"role":"user","content":"hi"}]}' -H 'authorization: Bearer sk-any'
check "a streamed answer carries the stage's header" "$STATUS $(header x-plan) $(tail -c 200 "$OUT" | grep -c 'data: \[DONE\]')" "200 24x7 1"
chat "$Q"
check "auth runs first: no key, 401 before the stage" "$STATUS $(header x-plan)" "401 "
check "the upstream saw only the two answered requests" "$(mock_stat "$MOCK_p1" requests)" 2
check "the stage's own settings (plans, clock_hour) are not warned of" "$(grep -c 'settings nothing reads' "$GW_TMP/gateway.log")" 0
stop_gateway

# a mistyped tier timeout is named at startup (a routing policy may read settings of its own, so
# it is a warning there; a retry setting nothing reads stops the start)
sed -i 's/model = "m1" }/model = "m1", timeuot = 3 }/' "$GW_TMP/conf.lua"
start_gateway "$GW_TMP/conf.lua"
check "a typo is warned of" "$(grep 'settings nothing reads' "$GW_TMP/gateway.log" | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["settings"])')" "['models.default.route[1].timeuot']"
stop_gateway

# a stage that does not load is a startup error that names it
cat > "$GW_TMP/bad.lua" <<LUA
return { providers = { p1 = { kind = "mock", base_url = "$MOCK_p1_URL" } },
         models = { default = { route = { { provider = "p1", model = "m1" } } } },
         edge = { extra = { "no_such_stage" } } }
LUA
OUTPUT=$("$MOONGATE" serve --listen 127.0.0.1:1 "$GW_TMP/bad.lua" 2>&1); RC=$?
check "an unknown stage: exit 1" "$RC" 1
check "an unknown stage: named in the error" "$(echo "$OUTPUT" | grep -c "edge: stage no_such_stage: module 'no_such_stage' not found")" 1
finish
