-- wrk script: a realistic chat request (about 1.5 KB: a system prompt and twelve turns), streamed
-- when BENCH_STREAM=1 (model bench-stream, "stream": true). Prints the figures the run script
-- reads (p50/p99 in microseconds, requests per second, errors, non-2xx included) on one line.
local turns = {}
for i = 1, 6 do
  turns[#turns + 1] = string.format('{"role":"user","content":"Order %d: the customer asks whether the ' ..
    'replacement part ships this week and what the tracking number will look like once it leaves."}', i)
  turns[#turns + 1] = string.format('{"role":"assistant","content":"Noted for order %d; the part ships on Thursday."}', i)
end
local stream = os.getenv("BENCH_STREAM") == "1"
wrk.method = "POST"
wrk.body = '{"model":"' .. (stream and "bench-stream" or "bench") .. '",' .. (stream and '"stream":true,' or "") ..
  '"max_tokens":64,"messages":[{"role":"system","content":"You are a support agent."},' ..
  table.concat(turns, ",") .. "]}"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_KEY") or "sk-bench")
for k, v in pairs({ ["x-portkey-provider"] = os.getenv("BENCH_PORTKEY_PROVIDER"),
                    ["x-portkey-custom-host"] = os.getenv("BENCH_PORTKEY_HOST") }) do
  if v and v ~= "" then wrk.headers[k] = v end
end

function done(summary, latency, requests)
  local e = summary.errors
  local errors = e.connect + e.read + e.write + e.timeout + e.status
  io.write(string.format("RESULT p50_us=%d p99_us=%d rps=%.1f requests=%d errors=%d bytes=%d\n",
    latency:percentile(50), latency:percentile(99),
    summary.requests / (summary.duration / 1e6), summary.requests, errors, #wrk.body))
end
