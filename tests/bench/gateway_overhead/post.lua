-- wrk script: POST a small chat completion request and print the figures the run script
-- reads (p50/p99 in microseconds, requests per second, errors, non-2xx included) on one line.
wrk.method = "POST"
wrk.body = '{"model":"bench","messages":[{"role":"user","content":"Say hello."}],"max_tokens":16}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer sk-bench"
for k, v in pairs({ ["x-portkey-provider"] = os.getenv("BENCH_PORTKEY_PROVIDER"),
                    ["x-portkey-custom-host"] = os.getenv("BENCH_PORTKEY_HOST") }) do
  if v and v ~= "" then wrk.headers[k] = v end
end

function done(summary, latency, requests)
  local e = summary.errors
  local errors = e.connect + e.read + e.write + e.timeout + e.status
  io.write(string.format("RESULT p50_us=%d p99_us=%d rps=%.1f requests=%d errors=%d\n",
    latency:percentile(50), latency:percentile(99),
    summary.requests / (summary.duration / 1e6), summary.requests, errors))
end
