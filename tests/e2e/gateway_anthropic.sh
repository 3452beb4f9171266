#!/usr/bin/env bash
# The anthropic provider against `moongate mock`'s /v1/messages: chat completions in, Anthropic's
# Messages API upstream, OpenAI's shapes back (completion, stream, tool calls, errors).
. "$(dirname "$0")/lib/gateway.bash"

start_mock a1
cat > "$GW_TMP/conf.lua" <<LUA
return {
  providers = { claude = { kind = "anthropic", base_url = "http://$MOCK_a1", api_key = "sk-ant-test" } },
  models = { sonnet = { route = { { provider = "claude", model = "claude-sonnet-4-5", timeout = 5 } } },
             capped = { route = { { provider = "claude", model = "claude-sonnet-4-5", timeout = 5 } }, max_output_tokens = 400 } },
}
LUA
start_gateway "$GW_TMP/conf.lua"

chat '{"model":"sonnet","max_tokens":50,"messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hello claude"}]}'
check "completion: 200 from claude" "$STATUS $(header x-moongate-provider) $(header x-moongate-model)" "200 claude claude-sonnet-4-5"
check "completion: OpenAI shape" "$(json_field "d['object'], d['choices'][0]['message']['role'], d['choices'][0]['finish_reason']")" "chat.completion assistant stop"
check "completion: text" "$(json_field "d['choices'][0]['message']['content']")" "mock answer: hello claude"
check "completion: usage" "$(json_field "d['usage']['total_tokens'] == d['usage']['prompt_tokens'] + d['usage']['completion_tokens'] > 0")" True
LAST=$(curl -s "http://$MOCK_a1/mock/last")
check "upstream got /v1/messages" "$(echo "$LAST" | python3 -c "import sys,json; d=json.load(sys.stdin); print(d['path'])")" /v1/messages
check "system prompt moved to 'system'" "$(echo "$LAST" | python3 -c "import sys,json; d=json.load(sys.stdin); print(json.loads(d['body'])['system'])")" "be brief"
check "x-api-key and anthropic-version sent" "$(echo "$LAST" | python3 -c "import sys,json; h=json.load(sys.stdin)['headers']; print(h.get('x-api-key'), h.get('anthropic-version'))")" "sk-ant-test 2023-06-01"

chat '{"model":"sonnet","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"stream this please"}]}'
check "stream: 200 event stream" "$STATUS $(header content-type)" "200 text/event-stream"
check "stream: text" "$(grep '^data: {' "$OUT" | sed 's/^data: //' | python3 -c "import sys,json; print(''.join((c['choices'][0]['delta'].get('content') or '') for c in map(json.loads, sys.stdin) if c['choices']))")" "mock answer: stream this please"
check "stream: usage chunk then [DONE]" "$(grep -c '"total_tokens"' "$OUT") $(tail -2 "$OUT" | head -1)" "1 data: [DONE]"

chat '{"model":"sonnet","messages":[{"role":"user","content":"weather in Paris"}],"tools":[{"type":"function","function":{"name":"weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}]}'
check "tools: finish_reason tool_calls" "$(json_field "d['choices'][0]['finish_reason'], d['choices'][0]['message']['tool_calls'][0]['function']['name']")" "tool_calls weather"
check "tools: arguments are a JSON string" "$(json_field "sorted(json.loads(d['choices'][0]['message']['tool_calls'][0]['function']['arguments']).keys())")" "['city']"

# max_output_tokens caps what reaches Anthropic as it does for OpenAI-shaped upstreams
sent_max() { curl -s "http://$MOCK_a1/mock/last" | python3 -c "import sys,json; print(json.loads(json.load(sys.stdin)['body'])['max_tokens'])"; }
chat '{"model":"capped","messages":[{"role":"user","content":"x"}]}'
check "cap: set when the client asked for nothing" "$STATUS $(sent_max)" "200 400"
chat '{"model":"capped","max_tokens":10000,"messages":[{"role":"user","content":"x"}]}'
check "cap: max_tokens above it lowered" "$STATUS $(sent_max)" "200 400"
chat '{"model":"capped","max_completion_tokens":9000,"messages":[{"role":"user","content":"x"}]}'
check "cap: max_completion_tokens above it lowered" "$STATUS $(sent_max)" "200 400"
chat '{"model":"capped","max_tokens":50,"messages":[{"role":"user","content":"x"}]}'
check "cap: a smaller ask kept" "$STATUS $(sent_max)" "200 50"
chat '{"model":"sonnet","messages":[{"role":"user","content":"x"}]}'
check "no cap: the provider's default" "$STATUS $(sent_max)" "200 4096"

chat '{"model":"sonnet","messages":[{"role":"user","content":"x"}]}' -H 'x-mock-fault: status=529'
check "an overloaded upstream is a 502 in OpenAI's shape" "$STATUS $(json_field "d['error']['code']")" "502 upstream_error"
finish
