#!/usr/bin/env bash
# `moongate admin init`, `moongate tenants` and `moongate keys` end to end on a real database:
# exact tables and JSON, --db / MOONGATE_DB, refusal without the admin key (exit 2), bad input.
. "$(dirname "$0")/lib/gateway.bash"
unset MOONGATE_ADMIN_KEY MOONGATE_DB
DB="$GW_TMP/cli.db"
M() { "$MOONGATE" "$@" --db "$DB"; }
NEEDS="moongate: this needs the admin key: --admin-key KEY or MOONGATE_ADMIN_KEY (see \`moongate admin init\`)"

check "tenants --help: exit 0" "$("$MOONGATE" tenants --help | head -1; echo "rc=${PIPESTATUS[0]}")" \
  "usage: moongate tenants COMMAND [ARGS] [--db PATH] [--admin-key KEY] [--json]
rc=0"
check "keys --help" "$("$MOONGATE" keys --help | head -1)" \
  "usage: moongate keys COMMAND [ARGS] [--db PATH] [--admin-key KEY] [--json]"
check "admin --help" "$("$MOONGATE" admin --help | head -1)" "usage: moongate admin init [--db PATH]"

# Before admin init nothing works without a key, and a fresh db has none.
M tenants list >/dev/null 2>"$GW_TMP/err"
check "tenants list before init: exit 2" "$? $(cat "$GW_TMP/err")" "2 $NEEDS"
ADMIN=$(M admin init 2>"$GW_TMP/err")
check "admin init: exit 0, one key" "$? $(echo "$ADMIN" | grep -c '^mg-[0-9a-f]\{8\}-[A-Za-z0-9_-]\{43\}$')" "0 1"
check "admin init: shown once" "$(cat "$GW_TMP/err")" "This admin key will not be shown again. Keep it secret."
M admin init >/dev/null 2>"$GW_TMP/err"
check "admin init again without the key: exit 2" "$? $(cat "$GW_TMP/err")" \
  "2 moongate: this database has an admin key already; give it with --admin-key to create another"
ADMIN2=$(M admin init --admin-key "$ADMIN" 2>/dev/null)
check "admin init with the key: a second admin key" "$(M tenants list --admin-key "$ADMIN2" | head -1)" \
  "id  name  disabled  policy"

for cmd in "tenants list" "tenants add x" "tenants show x" "keys list" "keys create x" "keys revoke x" "keys rotate x"; do
  # shellcheck disable=SC2086
  M $cmd >/dev/null 2>"$GW_TMP/err"
  check "$cmd without the admin key: exit 2" "$? $(cat "$GW_TMP/err")" "2 $NEEDS"
done
M keys list --admin-key "mg-00000000-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" >/dev/null 2>"$GW_TMP/err"
check "a wrong admin key: exit 2" "$? $(cat "$GW_TMP/err")" "2 moongate: the admin key is not valid for $DB"
TK=$(M keys create nobody --admin-key "$ADMIN" 2>/dev/null)

export MOONGATE_ADMIN_KEY=$ADMIN
check "tenants add" "$(M tenants add acme --name 'Acme Corp' --policy '{"models":["default"],"quota":{"rpm":60}}')" \
  "added tenant acme"
check "tenants add globex" "$(M tenants add globex)" "added tenant globex"
M tenants add acme >/dev/null 2>"$GW_TMP/err"
check "a tenant that exists: exit 1" "$? $(cat "$GW_TMP/err")" "1 moongate: tenant acme exists"
M tenants add typo --policy '{"modles":["default"]}' >/dev/null 2>"$GW_TMP/err"
check "a policy typo: exit 1" "$? $(cat "$GW_TMP/err")" "1 moongate: unknown policy field 'modles'"
M tenants add bad --policy '[1]' >/dev/null 2>"$GW_TMP/err"
check "a policy that is not an object: exit 2" "$? $(cat "$GW_TMP/err")" "2 moongate: --policy must be a JSON object"
M tenants frob >/dev/null 2>"$GW_TMP/err"
check "an unknown command: exit 2" "$? $(cat "$GW_TMP/err")" "2 moongate: unknown tenants command 'frob'"
M tenants add initech --polcy '{}' >/dev/null 2>"$GW_TMP/err"
check "a mistyped option: exit 2, nothing added" "$? $(cat "$GW_TMP/err") $(M tenants list | grep -c initech)" \
  "2 moongate: unknown option --polcy (see --help) 0"
check "tenants list" "$(M tenants list)" \
  'id      name       disabled  policy
acme    Acme Corp  no        {"models":["default"],"quota":{"rpm":60}}
globex  globex     no        {}'
check "tenants list --json" "$(M tenants list --json | python3 -c '
import json, sys
print([(t["id"], t["name"], t["disabled"], t["policy"]) for t in json.load(sys.stdin)])')" \
  "[('acme', 'Acme Corp', False, {'models': ['default'], 'quota': {'rpm': 60}}), ('globex', 'globex', False, {})]"
check "tenants set" "$(M tenants set globex --policy '{"tools":["clock"],"redaction":{"mode":"mask"}}')" "updated tenant globex"
check "tenants show: the new policy" "$(M tenants show globex | sed -n 4p)" \
  'policy   {"redaction":{"mode":"mask"},"tools":["clock"]}'
M tenants set globex --policy '{"caps":{"on_exceed":"drop"}}' >/dev/null 2>"$GW_TMP/err"
check "tenants set: a bad value" "$? $(cat "$GW_TMP/err")" '1 moongate: caps.on_exceed must be "refuse" or "truncate"'

# Keys: printed once, listed without secrets, revoked, rotated.
KEY=$(M keys create acme --name app 2>"$GW_TMP/err")
ID=$(echo "$KEY" | cut -d- -f2)
check "keys create: the key" "$(echo "$KEY" | grep -c '^mg-[0-9a-f]\{8\}-[A-Za-z0-9_-]\{43\}$')" 1
check "keys create: not shown again" "$(cat "$GW_TMP/err")" "key $ID for tenant acme. It will not be shown again."
check "keys create for no tenant" "$(M keys create nobody 2>&1; echo "rc=$?")" "moongate: no tenant nobody
rc=1"
check "keys create --expires-in soon: exit 2" "$(M keys create acme --expires-in soon 2>&1; echo "rc=$?")" \
  "moongate: --expires-in must be a number of seconds
rc=2"
EXP=$(M keys create acme --name ci --expires-in 3600 --json)
EID=$(echo "$EXP" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
check "keys create --json" "$(echo "$EXP" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(sorted(d), d["tenant"], d["key"].startswith("mg-" + d["id"] + "-"))')" \
  "['id', 'key', 'tenant'] acme True"
check "keys list acme: id, tenant, name, status" "$(M keys list acme | awk '{print $1, $2, $3, $4}')" \
  "id tenant name status
$ID acme app active
$EID acme ci active"
check "keys list never shows a secret" "$( (M keys list --json; M tenants show acme --json) | grep -c -- "${KEY#mg-*-}")" 0
check "keys list --json: the fields" "$(M keys list --json | python3 -c '
import json, sys
print(sorted(set(f for k in json.load(sys.stdin) for f in k)))')" \
  "['created_at', 'expires_at', 'id', 'name', 'status', 'tenant_id']"
check "keys list --json: an expiry an hour out" "$(M keys list acme --json | python3 -c '
import json, sys
for k in json.load(sys.stdin):
    print(k["id"], k["status"], None if k.get("expires_at") is None else round(k["expires_at"] - k["created_at"]))')" \
  "$ID active None
$EID active 3600"
check "keys revoke" "$(M keys revoke "$EID")" "revoked key $EID"
check "keys revoke: unknown id" "$(M keys revoke ffffffff 2>&1; echo "rc=$?")" "moongate: no key ffffffff
rc=1"
NEW=$(M keys rotate "$ID" --overlap 60 2>"$GW_TMP/err")
NID=$(echo "$NEW" | cut -d- -f2)
check "keys rotate: a new key, shown once" "$(cat "$GW_TMP/err")" "key $NID for tenant acme. It will not be shown again."
check "keys rotate a revoked key" "$(M keys rotate "$EID" 2>&1; echo "rc=$?")" "moongate: key $EID is revoked
rc=1"
check "after revoke and rotate" "$(M keys list | awk 'NR > 1 {print $1, $4}' | sort)" \
  "$(printf '%s\n' "$EID revoked" "$ID active" "$NID active" | sort)"
check "the rotated key expires after the overlap" "$(M keys list acme --json | python3 -c '
import json, sys, time
k = [k for k in json.load(sys.stdin) if k["id"] == "'"$ID"'"][0]
print(30 < k["expires_at"] - time.time() <= 60)')" "True"

check "tenants disable" "$(M tenants disable acme)" "disabled tenant acme"
check "tenants show: disabled" "$(M tenants show acme | sed -n 3p)" "disabled yes"
check "tenants enable" "$(M tenants enable acme)" "enabled tenant acme"
check "tenants show: an unknown tenant" "$(M tenants show nobody 2>&1; echo "rc=$?")" "moongate: no tenant nobody
rc=1"

# MOONGATE_DB is the default database; the key of one database is not the admin key of another.
check "MOONGATE_DB" "$(MOONGATE_DB=$DB "$MOONGATE" tenants list | awk 'NR > 1 {print $1}' | tr '\n' ' ')" "acme globex "
"$MOONGATE" tenants list --db "$GW_TMP/other.db" >/dev/null 2>"$GW_TMP/err"
check "another database refuses this admin key" "$? $(cat "$GW_TMP/err")" \
  "2 moongate: the admin key is not valid for $GW_TMP/other.db"
check "no key printed earlier without the admin key" "$TK" ""
check "the plaintext keys are nowhere in the file" \
  "$(cat "$DB"* | grep -c -a -e "${KEY#mg-*-}" -e "${ADMIN#mg-*-}" -e "${NEW#mg-*-}")" 0
# set without --policy is a usage error, and the policy stays
M tenants set globex 2>"$GW_TMP/err"
check "set without --policy: exit 2, the policy kept" "$? $(cat "$GW_TMP/err") $(M tenants show globex --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["policy"] != {})')" \
  "2 moongate: tenants set needs --policy JSON True"
finish
