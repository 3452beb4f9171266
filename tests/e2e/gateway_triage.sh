#!/usr/bin/env bash
# Triage: easy requests go to the cheap tier first, hard ones straight to the big one; with a
# triage model configured, its one-word verdict decides (the mock echoes the question, so the
# question's own words steer it here).
. "$(dirname "$0")/lib/gateway.bash"

start_mock small
start_mock big
start_mock judge
cat > "$GW_TMP/conf.lua" <<LUA
return {
  providers = {
    small = { kind = "mock", base_url = "$MOCK_small_URL" },
    big = { kind = "mock", base_url = "$MOCK_big_URL" },
    judge = { kind = "mock", base_url = "$MOCK_judge_URL" },
  },
  models = {
    auto = { easy_route = { { provider = "small", model = "mini" } }, route = { { provider = "big", model = "large" } } },
    judged = { easy_route = { { provider = "small", model = "mini" } }, route = { { provider = "big", model = "large" } },
               triage_model = { provider = "judge", model = "tiny", timeout = 1 } },
  },
}
LUA
start_gateway "$GW_TMP/conf.lua"
ask() { chat '{"model":"'"$1"'","messages":[{"role":"user","content":"'"$2"'"}]}'; echo "$STATUS $(header x-moongate-provider) $(header x-moongate-model)"; }

check "heuristic: a short question is easy" "$(ask auto 'What is the capital of France?')" "200 small mini"
check "heuristic: a design question is hard" "$(ask auto 'Design a sharded database architecture')" "200 big large"
check "heuristic: a small-failure escalates to the big tier" "$(chat '{"model":"auto","messages":[{"role":"user","content":"hi"}]}' -H 'x-mock-fault: status=503,target=small'; echo "$STATUS $(header x-moongate-provider) $(header x-moongate-attempts)")" "200 big 2"
mock_reset "$MOCK_judge"
check "triage model says hard" "$(ask judged 'hard: is this one?')" "200 big large"
check "triage model says easy" "$(ask judged 'easy: capital of Peru?')" "200 small mini"
check "the triage model was asked each time" "$(mock_stat "$MOCK_judge" chat)" 2
check "no verdict: the heuristic decides" "$(ask judged 'What is the capital of Chile?')" "200 small mini"
finish
