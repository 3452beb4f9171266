-- An example flags file: one flag of each kind and a kill switch. The gateway config names it
-- (flags = "flags.lua"); edits are picked up without a restart. See docs/flags.md.
--
--   moongate flags show examples/flags/flags.lua --tenant acme --user alice
return {
  flags = {
    -- on/off for everyone
    new_prompt = { enabled = true, description = "the shorter system prompt" },
    -- a quarter of tenants (and, when a user is given, of each tenant's users)
    beta_search = { rollout = 25, description = "hybrid retrieval instead of BM25 alone" },
    -- only these tenants, never initech
    pilot = { tenants = { "acme", "globex" }, deny = { "initech" } },
    -- the pipeline version: 90% rag_qa, 10% the candidate
    pipeline = { variants = { { name = "rag_qa", weight = 90 }, { name = "rag_qa_v2", weight = 10 } } },
    -- the candidate for half of the pilot tenants only
    canary = { tenants = { "acme", "globex" }, rollout = 50 },
  },
  -- one edit turns any of these off: a provider is skipped by the router, a model answers 503
  kill = {
    providers = {},
    pipelines = {},
    tools = { web_search = "the search API is down, incident 1234" },
    models = { "gpt-4" },
  },
}
