#!/usr/bin/env bash
# `moongate flags show` end to end: the table of flags and rules, per-tenant values, the kill
# list, the version hash (and a new one after an edit), --json, and the errors that exit 2.
set -euo pipefail
mg=${MOONGATE:?MOONGATE is not set}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
expect_eq() { [ "$1" == "$2" ] || fail "$3: expected [$2], got [$1]"; }

cat > "$work/flags.lua" <<'EOF'
return {
  flags = {
    new_ui = { enabled = true, description = "the new chat UI" },
    beta = { rollout = 25 },
    pilot = { tenants = { "acme", "globex" }, deny = { "initech" } },
    rag = { variants = { { name = "rag_qa", weight = 90 }, { name = "rag_qa_v2", weight = 10 } } },
  },
  kill = { providers = { "openai" }, models = { ["gpt-4"] = "incident 7" } },
}
EOF

out=$("$mg" flags show "$work/flags.lua")
version=$(echo "$out" | sed -n 2p | awk '{print $2}')
[[ "$version" =~ ^[0-9a-f]{16}$ ]] || fail "version line: $out"
expect_eq "$out" "file     $work/flags.lua
version  $version

FLAG    RULE
beta    rollout 25%
new_ui  on
pilot   deny initech; tenants acme, globex
rag     variants rag_qa 90, rag_qa_v2 10

KILL SWITCH
providers  openai (switched off by the kill switch)
pipelines  -
tools      -
models     gpt-4 (incident 7)" "show"

# per tenant: acme's rollout bucket for beta is 940251 (out), umbrella's rag bucket picks v2
out=$("$mg" flags show "$work/flags.lua" --tenant acme)
expect_eq "$(echo "$out" | sed -n 3p)" "tenant   acme" "tenant line"
expect_eq "$(echo "$out" | sed -n 5,9p)" "FLAG    RULE                                VALUE
beta    rollout 25%                         false
new_ui  on                                  true
pilot   deny initech; tenants acme, globex  true
rag     variants rag_qa 90, rag_qa_v2 10    rag_qa" "values for acme"
out=$("$mg" flags show "$work/flags.lua" --tenant umbrella)
expect_eq "$(echo "$out" | awk '$1 == "rag" {print $NF} $1 == "pilot" {print $NF}')" "false
rag_qa_v2" "values for umbrella"
# the same tenant and user: the same answer every time
a=$("$mg" flags show "$work/flags.lua" --tenant acme --user alice --json | jq -c '[.flags[] | .value]')
b=$("$mg" flags show "$work/flags.lua" --tenant acme --user alice --json | jq -c '[.flags[] | .value]')
expect_eq "$a" "$b" "stable values"
expect_eq "$a" '[false,true,true,"rag_qa"]' "values for acme/alice"

# --json: what /admin/flags answers
j=$("$mg" flags show "$work/flags.lua" --json)
expect_eq "$(echo "$j" | jq -r .version)" "$version" "json version"
expect_eq "$(echo "$j" | jq -r .path)" "$work/flags.lua" "json path"
expect_eq "$(echo "$j" | jq -c '[.flags[] | [.name, .kind, .rule]]')" \
  '[["beta","rollout","rollout 25%"],["new_ui","switch","on"],["pilot","tenants","deny initech; tenants acme, globex"],["rag","variants","variants rag_qa 90, rag_qa_v2 10"]]' "json flags"
expect_eq "$(echo "$j" | jq -c '.flags[1].description')" '"the new chat UI"' "json description"
expect_eq "$(echo "$j" | jq -cS .kill)" \
  '{"models":[{"name":"gpt-4","reason":"incident 7"}],"pipelines":[],"providers":[{"name":"openai","reason":"switched off by the kill switch"}],"tools":[]}' "json kill"

# an edit is a new version; the default file is ./flags.lua
sed -i 's/rollout = 25/rollout = 100/' "$work/flags.lua"
out=$(cd "$work" && "$mg" flags show --tenant acme)
v2=$(echo "$out" | sed -n 2p | awk '{print $2}')
[ "$v2" != "$version" ] || fail "the version did not change after an edit"
expect_eq "$(echo "$out" | awk '$1 == "beta" {print $NF}')" "true" "beta at 100%"

# errors: exit 2 and say why
set +e
msg=$("$mg" flags show "$work/nope.lua" 2>&1); rc=$?
expect_eq "$rc" 2 "missing file status"
expect_eq "$msg" "moongate flags: $work/nope.lua: No such file or directory" "missing file message"
printf 'return { flags = { beta = { rollot = 25 } } }\n' > "$work/bad.lua"
msg=$("$mg" flags show "$work/bad.lua" 2>&1); rc=$?
expect_eq "$rc" 2 "bad file status"
expect_eq "$msg" "moongate flags: $work/bad.lua: flag 'beta': unknown field 'rollot' (expected enabled, rollout, tenants, deny, variants, description)" "bad file message"
printf 'return { flags = { beta = { rollout = 25 } }\n' > "$work/broken.lua"
msg=$("$mg" flags show "$work/broken.lua" 2>&1); rc=$?
expect_eq "$rc" 2 "broken file status"
expect_eq "$msg" "moongate flags: $work/broken.lua:2: '}' expected (to close '{' at line 1) near '<eof>'" "broken file message"
msg=$("$mg" flags show "$work/flags.lua" --user alice 2>&1); rc=$?
expect_eq "$rc:$msg" "2:moongate flags: --user needs --tenant" "--user alone"
msg=$("$mg" flags show "$work/flags.lua" --colour 2>&1); rc=$?
expect_eq "$rc:$msg" "2:moongate flags: unknown option --colour (see \`moongate flags --help\`)" "unknown option"
msg=$("$mg" flags list 2>&1); rc=$?
expect_eq "$rc:$msg" "2:moongate flags: unknown subcommand 'list' (see \`moongate flags --help\`)" "unknown subcommand"
"$mg" flags >/dev/null 2>&1; rc=$?
expect_eq "$rc" 2 "no subcommand"
set -e
"$mg" flags --help | head -1 | grep -q '^usage: moongate flags show \[FILE\]' || fail "--help"
echo "ok"
