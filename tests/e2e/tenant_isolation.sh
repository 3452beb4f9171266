#!/usr/bin/env bash
# Tenant isolation through the gateway: two tenants' documents in one index; each tenant's
# questions are answered from its own documents only, whatever it asks for, and a provider
# pinned to a tenant (`tenant = ""`) serves the shared corpus to everyone.
. "$(dirname "$0")/lib/gateway.bash"

cat > "$GW_TMP/docs.jsonl" <<'JSONL'
{"_id":"acme-1","tenant":"acme","title":"Acme discount","text":"The discount code for Acme orders is ORCHID-77. It expires at the end of the quarter."}
{"_id":"globex-1","tenant":"globex","title":"Globex discount","text":"The discount code for Globex orders is FALCON-12. It expires at the end of the year."}
{"_id":"shared-1","title":"Opening hours","text":"The support desk opens at 9am and closes at 5pm on weekdays."}
JSONL
"$MOONGATE" index --quiet --embedder hash --index "$GW_TMP/idx" "$GW_TMP/docs.jsonl" >"$GW_TMP/index.log" 2>&1 \
  || { cat "$GW_TMP/index.log"; exit 1; }
cat > "$GW_TMP/conf.lua" <<LUA
return {
  providers = { docs = { kind = "extractive", index = "$GW_TMP/idx" },
                shared = { kind = "extractive", index = "$GW_TMP/idx", tenant = "" } },
  models = { default = { route = { { provider = "docs", model = "extractive" } } },
             faq = { route = { { provider = "shared", model = "extractive" } } } },
  auth = { keys = { ["sk-acme"] = "acme", ["sk-globex"] = "globex" } },
}
LUA
start_gateway "$GW_TMP/conf.lua"
ask() {   # ask KEY MODEL QUESTION
  chat "{\"model\":\"$2\",\"messages\":[{\"role\":\"user\",\"content\":\"$3\"}]}" -H "authorization: Bearer $1"
}
answer() { json_field "d['choices'][0]['message']['content']"; }

ask sk-acme default "What is the discount code for Acme orders?"
check "acme reads its own document" "$STATUS $(answer | grep -o 'ORCHID-77')" "200 ORCHID-77"
ask sk-acme default "What is the discount code for Globex orders?"
check "acme asking for globex's code never gets it" "$STATUS $(answer | grep -c 'FALCON-12')" "200 0"
ask sk-globex default "What is the discount code for Globex orders?"
check "globex reads its own document" "$STATUS $(answer | grep -o 'FALCON-12')" "200 FALCON-12"
ask sk-globex default "discount code ORCHID-77 Acme"
check "globex searching acme's words never gets them" "$STATUS $(answer | grep -c 'ORCHID')" "200 0"
ask sk-globex default "When does the support desk open?"
check "a tenant does not see the shared corpus through a tenant-scoped provider" "$(answer | grep -c '9am')" 0
ask sk-acme faq "When does the support desk open?"
check "a provider pinned to the shared corpus serves it" "$STATUS $(answer | grep -o '9am')" "200 9am"
ask sk-acme faq "What is the discount code for Acme orders?"
check "and only it" "$(answer | grep -c 'ORCHID')" 0
finish
