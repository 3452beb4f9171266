#!/usr/bin/env bash
# The semantic cache through the real gateway: a paraphrase is answered from the cache without
# reaching the upstream (the mock counts its calls), a look-alike question (another number,
# entity or a negation) is not, tenant B never gets tenant A's answer, another system prompt
# misses; over an index, re-indexing a document evicts the answers built on it and nothing else.
. "$(dirname "$0")/lib/gateway.bash"

start_mock up
mkdir -p "$GW_TMP/docs"
printf '# Tea\n\nSteep green tea for two minutes.\n' > "$GW_TMP/docs/tea.md"
printf '# Bread\n\nBake bread for forty minutes.\n' > "$GW_TMP/docs/bread.md"
"$MOONGATE" index --quiet --index "$GW_TMP/idx" "$GW_TMP/docs" >/dev/null
cat > "$GW_TMP/conf.lua" <<LUA
return {
  providers = {
    up = { kind = "mock", base_url = "$MOCK_up_URL" },
    docs = { kind = "extractive", index = "$GW_TMP/idx", rerank = true, tenant = "" },
  },
  models = {
    faq = { route = { { provider = "up", model = "m1", timeout = 3 } }, cache = { semantic = true } },
    docs = { route = { { provider = "docs" } }, cache = { semantic = true } },
  },
  auth = { keys = { ["sk-a"] = "team-a", ["sk-b"] = "team-b" } },
  cache = { exact = { ttl = 60 }, semantic = { ttl = 60 }, snippet = {} },
}
LUA
start_gateway "$GW_TMP/conf.lua"
A=(-H "authorization: Bearer sk-a")
B=(-H "authorization: Bearer sk-b")
calls() { mock_stat "$MOCK_up" chat; }
ask() {   # ask MODEL QUESTION [SYSTEM]
  local sys=""
  [ -n "${3:-}" ] && sys="{\"role\":\"system\",\"content\":\"$3\"},"
  echo "{\"model\":\"$1\",\"messages\":[$sys{\"role\":\"user\",\"content\":\"$2\"}]}"
}
answer() { json_field "d['choices'][0]['message']['content']"; }

chat "$(ask faq 'How do I reset my password?')" "${A[@]}"
check "first question: miss" "$STATUS $(header x-moongate-cache) $(calls)" "200 miss 1"
chat "$(ask faq 'What is the way to reset my password?')" "${A[@]}"
check "a paraphrase: a semantic hit with the first answer, upstream not called" \
  "$STATUS $(header x-moongate-cache) $(header x-moongate-cache-kind) $(calls) $(answer)" \
  "200 hit semantic 1 mock answer: How do I reset my password?"
chat "$(ask faq 'How do I not reset my password?')" "${A[@]}"
check "a negation: miss, its own answer" "$(header x-moongate-cache) $(calls) $(answer)" \
  "miss 2 mock answer: How do I not reset my password?"
chat "$(ask faq 'How many days are in a leap year?')" "${A[@]}"
chat "$(ask faq 'How many days are in 2 leap years?')" "${A[@]}"
check "another number: miss" "$(header x-moongate-cache) $(calls)" "miss 4"
chat "$(ask faq 'What is the capital of France?')" "${A[@]}"
chat "$(ask faq 'What is the capital of Spain?')" "${A[@]}"
check "another entity: miss" "$(header x-moongate-cache) $(calls)" "miss 6"
chat "$(ask faq 'What is the way to reset my password?')" "${B[@]}"
check "tenant B, A's paraphrase: miss, B's own answer" "$(header x-moongate-cache) $(calls) $(answer)" \
  "miss 7 mock answer: What is the way to reset my password?"
chat "$(ask faq 'What is the way to reset my password?' 'Answer in French.')" "${A[@]}"
check "another system prompt: miss" "$(header x-moongate-cache) $(calls)" "miss 8"

# --- over an index: re-indexing a document evicts exactly the answers built on it -----------------
chat "$(ask docs 'How long do I steep green tea?')" "${A[@]}"
check "tea: miss, answered from the tea document" "$(header x-moongate-cache) $(answer | grep -o 'two minutes')" "miss two minutes"
chat "$(ask docs 'How long do I bake bread?')" "${A[@]}"
check "bread: miss" "$(header x-moongate-cache) $(answer | grep -o 'forty minutes')" "miss forty minutes"
chat "$(ask docs 'How long should I steep green tea?')" "${A[@]}"
check "tea paraphrase: hit" "$(header x-moongate-cache) $(header x-moongate-cache-kind)" "hit semantic"
printf '# Tea\n\nSteep green tea for three minutes.\n' > "$GW_TMP/docs/tea.md"
"$MOONGATE" index --quiet --index "$GW_TMP/idx" "$GW_TMP/docs" >/dev/null
chat "$(ask docs 'How long should I steep green tea?')" "${A[@]}"
check "tea re-indexed: its answer was evicted, the new text answers" \
  "$(header x-moongate-cache) $(answer | grep -o 'three minutes')" "miss three minutes"
chat "$(ask docs 'How long should I bake bread?')" "${A[@]}"
check "bread was not re-indexed: still a hit" "$(header x-moongate-cache) $(answer | grep -o 'forty minutes')" "hit forty minutes"
finish
