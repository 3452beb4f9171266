#!/usr/bin/env bash
# Server-side tools: a model configured with plugins gets them offered, moongate runs the calls
# the model makes and feeds the results back, and the client sees only the final answer.
. "$(dirname "$0")/lib/gateway.bash"

start_mock p1
mkdir -p "$GW_TMP/plugins"
cat > "$GW_TMP/plugins/ticket.lua" <<LUA
-- a tool with a side effect: appends a line to a file
return {
  name = "ticket", description = "Open a support ticket.", timeout = 2, idempotent = false,
  parameters = { type = "object", properties = { title = { type = "string" } } },
  run = function(args)
    local f = assert(io.open("$GW_TMP/tickets", "a")); f:write("ticket\n"); f:close()
    return { ticket = "T-1" }
  end,
}
LUA
cat > "$GW_TMP/conf.lua" <<LUA
return {
  providers = { p1 = { kind = "mock", base_url = "$MOCK_p1_URL" } },
  models = {
    agent = { route = { { provider = "p1", model = "mock-large" } }, tools = { "clock" }, max_tool_iterations = 2 },
    plain = { route = { { provider = "p1", model = "mock-large" } } },
    desk = { route = { { provider = "p1", model = "mock-large" } }, tools = { "ticket" } },
  },
}
LUA
start_gateway "$GW_TMP/conf.lua"

chat '{"model":"agent","messages":[{"role":"user","content":"what time is it?"}]}'
check "tool model: 200" "$STATUS" 200
check "the final answer carries the tool's result" \
  "$(json_field "d['choices'][0]['message']['content']" | sed -E 's/[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z/TIME/')" \
  'mock answer: what time is it? [tool: {"utc":"TIME"}]'
check "two upstream calls (tool call, then answer)" "$(mock_stat "$MOCK_p1" chat) $(header x-moongate-attempts)" "2 2"
check "usage summed over both calls" "$(json_field "d['usage']['total_tokens'] == d['usage']['prompt_tokens'] + d['usage']['completion_tokens'] and d['usage']['prompt_tokens'] > 0")" True
LAST=$(curl -s "http://$MOCK_p1/mock/last")
check "the tool result went back to the model" "$(echo "$LAST" | grep -c '\\"role\\":\\"tool\\"')" 1

chat '{"model":"agent","stream":true,"messages":[{"role":"user","content":"what time is it?"}]}'
check "streamed: event stream ending in [DONE]" "$STATUS $(header content-type) $(grep -c '^data: \[DONE\]' "$OUT")" "200 text/event-stream 1"
check "streamed: a tool loop is never cached" "$(header x-moongate-cache)" "bypass"
check "streamed: the text" "$(grep '^data: {' "$OUT" | sed 's/^data: //' | python3 -c "import sys,json; print(''.join((json.loads(l)['choices'][0]['delta'].get('content') or '') for l in sys.stdin))" | sed -E 's/[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z/TIME/')" 'mock answer: what time is it? [tool: {"utc":"TIME"}]'

chat '{"model":"plain","messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"lookup","parameters":{"type":"object","properties":{"q":{"type":"string"}}}}}]}'
check "a client's own tools are the client's: tool_calls come back" "$(json_field "d['choices'][0]['finish_reason'], d['choices'][0]['message']['tool_calls'][0]['function']['name']")" "tool_calls lookup"
# a plugin next to the config, with a side effect, and client retries with one Idempotency-Key
chat '{"model":"desk","messages":[{"role":"user","content":"printer broken"}]}' -H 'idempotency-key: abc-1'
check "config-folder plugin ran" "$STATUS $(wc -l < "$GW_TMP/tickets" | tr -d ' ')" "200 1"
chat '{"model":"desk","messages":[{"role":"user","content":"printer broken"}]}' -H 'idempotency-key: abc-1'
check "a retry with the same Idempotency-Key: no second side effect" "$STATUS $(wc -l < "$GW_TMP/tickets" | tr -d ' ')" "200 1"
chat '{"model":"desk","messages":[{"role":"user","content":"printer broken"}]}' -H 'idempotency-key: abc-2'
check "another key: a new ticket" "$(wc -l < "$GW_TMP/tickets" | tr -d ' ')" 2
finish
