#!/usr/bin/env bash
# POST /v1/feedback end to end: 201 for a rating of the caller's own answer, 400 for bad bodies,
# 404 for an unknown request id and for another tenant's; `moongate feedback export` turns the
# rated answers into golden-set cases that `moongate eval` loads.
. "$(dirname "$0")/lib/gateway.bash"

export MOONGATE_INDEX_CACHE=$GW_TMP/cache
start_mock up
cat > "$GW_TMP/conf.lua" <<LUA
return {
  providers = { up = { kind = "mock", base_url = "$MOCK_up_URL" } },
  models = { default = { route = { { provider = "up", model = "m1" } } } },
  auth = { keys = { ["sk-acme"] = "acme", ["sk-globex"] = "globex" } },
  tenants = { acme = { log_raw = true } },
  trace = { store = "$GW_TMP/traces.db" },
}
LUA
start_gateway "$GW_TMP/conf.lua"
A=(-H 'authorization: Bearer sk-acme')
G=(-H 'authorization: Bearer sk-globex')
fb() { post /v1/feedback "$@"; }

chat '{"model":"default","messages":[{"role":"user","content":"How do I rebuild the index?"}]}' "${A[@]}"
check "chat" "$STATUS" 200
RID=$(header x-request-id)
chat '{"model":"default","messages":[{"role":"user","content":"What is a canary?"}]}' "${A[@]}"
RID2=$(header x-request-id)
chat '{"model":"default","messages":[{"role":"user","content":"Who am I?"}]}' "${A[@]}"
RID3=$(header x-request-id)

fb "{\"request_id\":\"$RID\",\"rating\":\"down\",\"correction\":\"moongate index DIR\",\"tags\":[\"index\"]}" "${A[@]}"
check "feedback 201" "$STATUS" 201
check "feedback body" "$(json_field 'd["object"], d["request_id"] == "'"$RID"'", d["rating"], d["score"], d["tags"]')" \
  "feedback True down 0 ['index']"
fb "{\"request_id\":\"$RID2\",\"rating\":5}" "${A[@]}"
check "rating 5" "$STATUS $(json_field 'd["score"]')" "201 1"
fb "{\"request_id\":\"$RID3\",\"rating\":1}" "${A[@]}"
check "rating 1" "$STATUS $(json_field 'd["score"]')" "201 0"

# bad input: 400 with the reason
fb 'not json' "${A[@]}"
check "not json" "$STATUS $(json_field 'd["error"]["message"]')" "400 the body must be a JSON object"
fb "{\"request_id\":\"$RID\",\"rating\":7}" "${A[@]}"
check "rating 7" "$STATUS $(json_field 'd["error"]["message"]')" '400 rating must be "up", "down" or a whole number from 1 to 5'
fb "{\"request_id\":\"$RID\"}" "${A[@]}"
check "nothing said" "$STATUS $(json_field 'd["error"]["message"]')" "400 give a rating, a correction, or both"
fb "{\"request_id\":\"$RID\",\"rating\":\"up\",\"tags\":[1]}" "${A[@]}"
check "bad tag" "$STATUS $(json_field 'd["error"]["message"]')" "400 tags[0] must be a string of 1 to 64 bytes"
fb "{\"request_id\":\"$RID\",\"rating\":\"up\",\"stars\":3}" "${A[@]}"
check "unknown field" "$STATUS $(json_field 'd["error"]["code"]')" "400 invalid_request"
fb '{"request_id":"a b","rating":"up"}' "${A[@]}"
check "bad id" "$STATUS" 400
# unknown, and another tenant's
fb '{"request_id":"no-such-request","rating":"up"}' "${A[@]}"
check "unknown id" "$STATUS $(json_field 'd["error"]["code"]')" "404 request_not_found"
fb "{\"request_id\":\"$RID\",\"rating\":\"up\"}" "${G[@]}"
check "other tenant's id" "$STATUS $(json_field 'd["error"]["message"]')" "404 no request $RID in the trace store"
fb "{\"request_id\":\"$RID\",\"rating\":\"up\"}"
check "no key" "$STATUS" 401
curl -s -o /dev/null -w '%{http_code}' "$GW/v1/feedback" "${A[@]}" > "$GW_TMP/code"
check "GET" "$(cat "$GW_TMP/code")" 405

stop_gateway
# stored, joined with the traces, and exported as golden-set candidates
"$MOONGATE" feedback export --db "$GW_TMP/traces.db" -o "$GW_TMP/cands.jsonl" 2>"$GW_TMP/export.err"
check "export summary" "$(cat "$GW_TMP/export.err")" "3 candidates, 0 skipped (no stored text: the tenant's policy keeps hashes only)"
python3 - "$GW_TMP/cands.jsonl" "$RID" "$RID2" "$RID3" > "$GW_TMP/cands.txt" <<'PY'
import json, sys
rows = {json.loads(l)["id"]: json.loads(l) for l in open(sys.argv[1])}
a, b, c = (rows["fb-" + r] for r in sys.argv[2:5])
print(a["question"], "|", a["expect"], "|", a["tags"])
print(b["question"], "|", b["expect"], "|", b["tags"])
print(c["question"], "|", c.get("expect"), "|", c["tags"])
PY
check "candidate from a correction" "$(sed -n 1p "$GW_TMP/cands.txt")" \
  "How do I rebuild the index? | {'contains': 'moongate index DIR'} | ['index', 'feedback']"
check "candidate from a good rating" "$(sed -n 2p "$GW_TMP/cands.txt")" \
  "What is a canary? | {'exact': 'mock answer: What is a canary?'} | ['feedback']"
check "candidate still to write" "$(sed -n 3p "$GW_TMP/cands.txt")" \
  "Who am I? | None | ['feedback', 'needs-expectation']"
# the candidates are a golden set moongate eval reads
printf '%s\n' "$(grep -v needs-expectation "$GW_TMP/cands.jsonl")" > "$GW_TMP/golden.jsonl"
"$MOONGATE" eval "$GW_TMP/golden.jsonl" --db "$GW_TMP/evals.db" --quiet --index "$MOONGATE_HOME/tests/data/evals/corpus" \
  > "$GW_TMP/eval.out" 2>&1
check "eval loads them" "$(head -1 "$GW_TMP/eval.out" | grep -o '[0-9]* cases, [0-9]* failed')" "2 cases, 0 failed"
finish
