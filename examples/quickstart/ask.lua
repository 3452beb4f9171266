-- A small client for the quickstart, run inside moongate itself:
--   moongate run examples/quickstart/ask.lua http://127.0.0.1:8080 "How do I ...?" ...
-- Sends each question to the gateway's /v1/chat/completions and prints the answer, the
-- sources it cites, and moongate's own overhead for the request.
local http = require "moongate.http"
local json = require "moongate.json"

local base = assert(arg[1], "usage: ask.lua BASE_URL QUESTION...")
for i = 2, #arg do
  local question = arg[i]
  local res, err = http.request{
    method = "POST",
    url = base .. "/v1/chat/completions",
    headers = { ["content-type"] = "application/json" },
    body = json.encode{ model = "moongate", messages = { { role = "user", content = question } } },
    timeout = 30,
  }
  if not res then error("request failed: " .. err) end
  local doc = json.decode(res.body)
  if res.status ~= 200 then
    error(("HTTP %d: %s"):format(res.status, doc and doc.error and doc.error.message or res.body))
  end
  print("Q: " .. question)
  print("A: " .. doc.choices[1].message.content)
  for _, c in ipairs(doc.citations or {}) do
    print(("   [%s] %s"):format(tostring(c.n or "?"), tostring(c.source or c.id)))
  end
  print(("   (provider %s, moongate overhead %s ms)\n"):format(
    res.headers["x-moongate-provider"] or "?", res.headers["x-moongate-overhead-ms"] or "?"))
end
