#!/usr/bin/env bash
# Client keys (401 without one, the tenant reaching the routing policy), the degrade tier
# (extractive answer when every provider failed), usage accounting, /v1/models/{id}.
. "$(dirname "$0")/lib/gateway.bash"

start_mock p1
cat > "$GW_TMP/route.lua" <<'LUA'
-- tenant "gold" gets a shorter deadline, to show the policy sees the tenant
local router = require "moongate.router"
return { plan = function(req, ctx)
  local plan = router.default_plan(ctx.model)
  if req.tenant == "boom" then error("kaboom") end
  if req.tenant == "gold" then plan.tiers = { { provider = "p1", model = "gold-model" } } end
  return plan
end }
LUA
cat > "$GW_TMP/conf.lua" <<LUA
return {
  providers = { p1 = { kind = "mock", base_url = "$MOCK_p1_URL" },
                nousage = { kind = "mock", base_url = "$MOCK_p1_URL", stream_usage = false } },
  models = {
    default = { route = { { provider = "p1", model = "m1", timeout = 2 } } },
    safe = { route = { { provider = "p1", model = "m1", timeout = 2 } }, degrade = true },
    counted = { route = { { provider = "nousage", model = "gpt-4o-mini" } } },
  },
  route_policy = "route.lua",
  auth = { keys = { ["sk-team-a"] = "team-a", ["sk-gold"] = "gold", ["sk-boom"] = "boom" }, admin_key = "sk-admin" },
}
LUA
start_gateway "$GW_TMP/conf.lua"
Q='{"model":"default","messages":[{"role":"user","content":"hi"}]}'

chat "$Q"
check "no key: 401" "$STATUS $(json_field "d['error']['code'], d['error']['type']")" "401 invalid_api_key authentication_error"
chat "$Q" -H 'authorization: Bearer sk-wrong'
check "unknown key: 401" "$STATUS" 401
chat "$Q" -H 'authorization: Bearer sk-team-a'
check "known key: 200" "$STATUS $(header x-moongate-model)" "200 m1"
chat "$Q" -H 'authorization: Bearer sk-gold'
check "the policy sees the tenant" "$STATUS $(header x-moongate-model)" "200 gold-model"
chat "$Q" -H 'authorization: Bearer sk-boom'
check "a policy that raises: 500 policy_error" "$STATUS $(json_field "d['error']['code']")" "500 policy_error"
check "the error is logged" "$(grep -c 'routing policy raised' "$GW_TMP/gateway.log")" 1
check "health needs no key" "$(curl -s -o /dev/null -w '%{http_code}' "$GW/health")" 200

chat '{"model":"safe","messages":[{"role":"system","content":"The warehouse closes at 6pm on Fridays. Deliveries arrive on Mondays."},{"role":"user","content":"When does the warehouse close on Fridays?"}]}' \
  -H 'authorization: Bearer sk-team-a' -H 'x-mock-fault: status=503'
check "degrade: 200 from the extractive tier" "$STATUS $(header x-moongate-degraded) $(header x-moongate-provider)" "200 true extractive"
check "degrade: answered from the conversation" "$(json_field "'6pm' in d['choices'][0]['message']['content']")" True
chat '{"model":"default","messages":[{"role":"user","content":"x"}]}' -H 'authorization: Bearer sk-team-a' -H 'x-mock-fault: status=503'
check "no degrade: the error" "$STATUS" 502

check "admin route with a tenant's key: 403" "$(curl -s -H 'authorization: Bearer sk-team-a' "$GW/admin/usage" | python3 -c "import sys,json; print(json.load(sys.stdin)['error']['code'])")" admin_key_required
check "admin route with no key: 401" "$(curl -s -o /dev/null -w '%{http_code}' "$GW/admin/usage")" 401
check "the admin key is not a tenant key: 403" "$(curl -s -o /dev/null -w '%{http_code}' -H 'authorization: Bearer sk-admin' "$GW/v1/models")" 403
USAGE=$(curl -s -H 'authorization: Bearer sk-admin' "$GW/admin/usage")
check "usage per provider and model" "$(echo "$USAGE" | python3 -c "import sys,json; u=json.load(sys.stdin)['usage']['p1']; print(u['m1']['requests'], u['gold-model']['requests'], u['m1']['prompt_tokens'] > 0)")" "1 1 True"
check "GET /v1/models/default" "$(curl -s -H 'authorization: Bearer sk-team-a' "$GW/v1/models/default" | python3 -c "import sys,json; d=json.load(sys.stdin); print(d['id'], d['object'])")" "default model"
check "GET /v1/models/nope: 404" "$(curl -s -o /dev/null -w '%{http_code}' -H 'authorization: Bearer sk-team-a' "$GW/v1/models/nope")" 404
# a stream whose upstream reports no usage: counted with the tokenizer
chat '{"model":"counted","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"count these words"}]}' -H 'authorization: Bearer sk-team-a'
check "upstream was not asked for usage" "$(curl -s "http://$MOCK_p1/mock/last" | python3 -c "import sys,json; print('stream_options' in json.loads(json.load(sys.stdin)['body']))")" False
check "the client still gets a usage chunk, counted" "$(grep '"estimated":true' "$OUT" | sed 's/^data: //' | python3 -c "import sys,json; u=json.load(sys.stdin)['usage']; print(u['prompt_tokens'], u['completion_tokens'], u['total_tokens'])")" "10 6 16"
check "then [DONE]" "$(tail -2 "$OUT" | head -1)" "data: [DONE]"
check "and it is accounted" "$(curl -s -H 'authorization: Bearer sk-admin' "$GW/admin/usage" | python3 -c "import sys,json; u=json.load(sys.stdin)['usage']['nousage']['gpt-4o-mini']; print(u['requests'], u['completion_tokens'])")" "1 6"
finish
