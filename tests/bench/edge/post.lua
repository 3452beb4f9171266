-- wrk script: a realistic chat request (about 1.5 KB of conversation) at a paced rate: each
-- connection waits BENCH_DELAY_MS between requests, so c connections offer about c*1000/delay
-- requests per second. Prints the figures the run script reads on one line.
local turns = {}
for i = 1, 6 do
  turns[#turns + 1] = string.format('{"role":"user","content":"Order %d: the customer asks whether the ' ..
    'replacement part ships this week and what the tracking number will look like once it leaves."}', i)
  turns[#turns + 1] = string.format('{"role":"assistant","content":"Noted for order %d; the part ships on Thursday."}', i)
end
wrk.method = "POST"
wrk.body = '{"model":"bench","max_tokens":64,"messages":[{"role":"system","content":"You are a support agent."},' ..
  table.concat(turns, ",") .. "]}"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_KEY") or "none")

local delay_ms = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
if delay_ms > 0 then function delay() return delay_ms end end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT p50_us=%d p99_us=%d rps=%.1f errors=%d bytes=%d\n",
    latency:percentile(50), latency:percentile(99), summary.requests / (summary.duration / 1e6),
    e.connect + e.read + e.write + e.timeout + e.status, #wrk.body))
end
