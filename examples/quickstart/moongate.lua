-- The embedded default: no model, no network, no API key. Every model name is answered by the
-- `extractive` provider from moongate's own documentation (docs/, indexed on first use), or from
-- the conversation itself when it carries the context.
--
--   moongate serve --listen 127.0.0.1:8080 examples/quickstart/moongate.lua
--   curl -s http://127.0.0.1:8080/v1/chat/completions -H 'content-type: application/json' \
--     -d '{"model":"moongate","messages":[{"role":"user","content":"How do I hot-reload the routing policy?"}]}'
return {
  providers = {
    docs = { kind = "extractive", index = "../../docs", k = 12, max_sentences = 3 },
  },
  models = {
    ["*"] = { route = { { provider = "docs", timeout = 30 } }, deadline = 30 },
  },
}
