#!/usr/bin/env bash
# Flags through the gateway: evaluated once per request (the version answered in a header),
# the kill switch for a model and for a provider (the router skips it to the next tier), a
# hot edit that takes effect without a restart, a broken edit that keeps the old version, and
# GET /admin/flags behind the admin key.
. "$(dirname "$0")/lib/gateway.bash"

start_mock p1
start_mock p2
cat > "$GW_TMP/flags.lua" <<'LUA'
return { flags = { new_prompt = { enabled = true } }, kill = { models = { "retired" } } }
LUA
cat > "$GW_TMP/conf.lua" <<LUA
return {
  providers = { p1 = { kind = "mock", base_url = "$MOCK_p1_URL" }, p2 = { kind = "mock", base_url = "$MOCK_p2_URL" } },
  models = { default = { route = { { provider = "p1", model = "m1" }, { provider = "p2", model = "m2" } } },
             retired = { route = { { provider = "p1", model = "old" } } },
             solo = { route = { { provider = "p1", model = "m1" } } } },
  auth = { keys = { ["sk-a"] = "acme" }, admin_key = "sk-admin" },
  flags = "flags.lua",
}
LUA
start_gateway "$GW_TMP/conf.lua"
Q='{"model":"default","messages":[{"role":"user","content":"hi"}]}'
A=(-H 'authorization: Bearer sk-a')

chat "$Q" "${A[@]}"
V1=$(header x-moongate-flags-version)
check "answered, with the flags version" "$STATUS $([ -n "$V1" ] && echo yes)" "200 yes"
chat '{"model":"retired","messages":[{"role":"user","content":"hi"}]}' "${A[@]}"
check "a killed model: 503 model_disabled" "$STATUS $(json_field "d['error']['code']")" "503 model_disabled"

cat > "$GW_TMP/flags.lua" <<'LUA'
return { flags = { new_prompt = { enabled = true } }, kill = { models = { "retired" }, providers = { "p1" } } }
LUA
sleep 1.3
chat "$Q" "${A[@]}"
check "killing provider p1: the next tier answers" "$STATUS $(header x-moongate-provider)" "200 p2"
check "the new version is answered" "$([ "$(header x-moongate-flags-version)" != "$V1" ] && echo changed)" changed
chat '{"model":"solo","messages":[{"role":"user","content":"hi"}]}' "${A[@]}"
check "every tier killed: 503 provider_disabled" "$STATUS $(json_field "d['error']['code']")" "503 provider_disabled"
V2=$(header x-moongate-flags-version)

echo 'return { flags = { broken = { rollout = 300 } } }' > "$GW_TMP/flags.lua"
sleep 1.3
chat "$Q" "${A[@]}"
check "a broken edit keeps the last good version" "$STATUS $(header x-moongate-provider) $([ "$(header x-moongate-flags-version)" = "$V2" ] && echo same)" "200 p2 same"

curl -s -o "$OUT" -w '%{http_code}' -H 'authorization: Bearer sk-admin' "$GW/admin/flags" > "$GW_TMP/code"
check "GET /admin/flags: the serving version and the refused edit" "$(cat "$GW_TMP/code") $(json_field "d['version'] == '$V2', d['reload']['ok']")" "200 True False"
check "GET /admin/flags with a tenant key: 403" "$(curl -s -o /dev/null -w '%{http_code}' "${A[@]}" "$GW/admin/flags")" 403
finish
