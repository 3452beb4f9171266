#!/usr/bin/env bash
# Tenants and keys from the sqlite store, end to end: the CLI (admin init, tenants, keys) and a
# gateway with auth.db — no key, wrong key, revoked, rotated inside and after the overlap,
# disabled tenant, a model the policy does not allow, admin endpoints with a tenant's key.
. "$(dirname "$0")/lib/gateway.bash"
export MOONGATE_DB="$GW_TMP/tenants.db"
unset MOONGATE_ADMIN_KEY

ADMIN=$("$MOONGATE" admin init 2>"$GW_TMP/init.err")
check "admin init prints a key once" "$(echo "$ADMIN" | grep -c '^mg-[0-9a-f]\{8\}-')" 1
check "and says it will not be shown again" "$(cat "$GW_TMP/init.err")" "This admin key will not be shown again. Keep it secret."
"$MOONGATE" admin init >/dev/null 2>&1
check "a second init without the key: exit 2" "$?" 2
"$MOONGATE" tenants list >/dev/null 2>"$GW_TMP/err"
check "tenants without the admin key: exit 2" "$? $(cat "$GW_TMP/err")" "2 moongate: this needs the admin key: --admin-key KEY or MOONGATE_ADMIN_KEY (see \`moongate admin init\`)"
"$MOONGATE" tenants list --admin-key mg-00000000-nope >/dev/null 2>&1
check "a wrong admin key: exit 2" "$?" 2
export MOONGATE_ADMIN_KEY=$ADMIN
check "tenants add" "$("$MOONGATE" tenants add acme --name 'Acme Corp' --policy '{"models":["default"]}')" "added tenant acme"
check "tenants add globex" "$("$MOONGATE" tenants add globex)" "added tenant globex"
"$MOONGATE" tenants add bad --policy '{"quota":{"rpn":5}}' >/dev/null 2>"$GW_TMP/err"
check "a policy with a typo is refused" "$? $(cat "$GW_TMP/err")" "1 moongate: quota: unknown field 'rpn'"
KA=$("$MOONGATE" keys create acme --name app 2>/dev/null)
KG=$("$MOONGATE" keys create globex 2>/dev/null)
KR=$("$MOONGATE" keys create acme --name old 2>/dev/null)
check "keys list shows ids, never secrets" "$("$MOONGATE" keys list acme | grep -c -- "${KA#mg-*-}")" 0
check "keys list: two for acme" "$("$MOONGATE" keys list acme --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" 2

start_mock p1
cat > "$GW_TMP/conf.lua" <<LUA
return {
  providers = { p1 = { kind = "mock", base_url = "$MOCK_p1_URL" } },
  models = { default = { route = { { provider = "p1", model = "m1" } } },
             other = { route = { { provider = "p1", model = "m2" } } } },
  auth = { db = "tenants.db", cache_ttl = 0 },
}
LUA
start_gateway "$GW_TMP/conf.lua"
Q='{"model":"default","messages":[{"role":"user","content":"hi"}]}'
chat "$Q"
check "no key: 401" "$STATUS $(json_field "d['error']['code']")" "401 invalid_api_key"
chat "$Q" -H "authorization: Bearer ${KA%?}x"
check "a wrong secret: 401" "$STATUS" 401
chat "$Q" -H "authorization: Bearer $KA"
check "acme's key: 200" "$STATUS" 200
chat "$Q" -H "x-api-key: $KG"
check "x-api-key works too" "$STATUS" 200
chat '{"model":"other","messages":[{"role":"user","content":"hi"}]}' -H "authorization: Bearer $KA"
check "a model acme's policy does not allow: 403" "$STATUS $(json_field "d['error']['code']")" "403 model_not_allowed"

"$MOONGATE" keys revoke "$(echo "$KR" | cut -d- -f2)" >/dev/null
chat "$Q" -H "authorization: Bearer $KR"
check "a revoked key: 401" "$STATUS $(json_field "d['error']['message']")" "401 this API key has been revoked"

NEW=$("$MOONGATE" keys rotate "$(echo "$KA" | cut -d- -f2)" --overlap 2 2>/dev/null)
chat "$Q" -H "authorization: Bearer $KA"
check "rotated: the old key works inside the overlap" "$STATUS" 200
chat "$Q" -H "authorization: Bearer $NEW"
check "rotated: the new key works" "$STATUS" 200
sleep 2.2
chat "$Q" -H "authorization: Bearer $KA"
check "rotated: the old key after the overlap: 401 expired" "$STATUS $(json_field "d['error']['message']")" "401 this API key has expired"

"$MOONGATE" tenants disable globex >/dev/null
chat "$Q" -H "authorization: Bearer $KG"
check "a disabled tenant: 403" "$STATUS $(json_field "d['error']['code']")" "403 tenant_disabled"
"$MOONGATE" tenants enable globex >/dev/null
chat "$Q" -H "authorization: Bearer $KG"
check "enabled again: 200" "$STATUS" 200

check "admin endpoint with a tenant's key: 403" "$(curl -s -o /dev/null -w '%{http_code}' -H "authorization: Bearer $NEW" "$GW/admin/usage")" 403
check "admin endpoint with the store's admin key: 200" "$(curl -s -o /dev/null -w '%{http_code}' -H "authorization: Bearer $ADMIN" "$GW/admin/usage")" 200
check "the plaintext keys are nowhere in the database" "$(cat "$GW_TMP"/tenants.db* | grep -c -a -- "${NEW#mg-*-}")" 0
finish
