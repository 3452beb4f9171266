-- Provider construction: base URLs and keys from the config, else from each provider's own
-- environment conventions (OPENAI_*, ANTHROPIC_*, OLLAMA_HOST).
local ffi = require "ffi"
pcall(ffi.cdef, "int setenv(const char *name, const char *value, int overwrite); int unsetenv(const char *name);")
local gateway = require "moongate.gateway"

local function env(t)
  for k, v in pairs(t) do
    if v == false then ffi.C.unsetenv(k) else ffi.C.setenv(k, v, 1) end
  end
end

local function build(providers)
  local models = {}
  for name in pairs(providers) do models[name] = { route = { { provider = name } } } end
  return assert(gateway.new({ providers = providers, models = models })).providers
end

describe("providers from config and environment", function()
  after_each(function()
    env{ OPENAI_API_KEY = false, OPENAI_BASE_URL = false, ANTHROPIC_API_KEY = false,
         ANTHROPIC_BASE_URL = false, OLLAMA_HOST = false }
  end)

  it("openai: OpenAI's URL and OPENAI_API_KEY by default; OPENAI_BASE_URL moves it", function()
    env{ OPENAI_API_KEY = "sk-env" }
    local p = build{ openai = { kind = "openai" } }.openai
    assert.are.equal("https://api.openai.com/v1/chat/completions", p.chat_url)
    assert.are.equal("Bearer sk-env", p.fixed_headers.authorization)
    env{ OPENAI_BASE_URL = "http://vllm:8000/v1/" }
    p = build{ openai = { kind = "openai" } }.openai
    assert.are.equal("http://vllm:8000/v1/chat/completions", p.chat_url)
    assert.are.equal("http://vllm:8000/v1/embeddings", p.embeddings_url)
  end)

  it("openai with its own base_url never gets OPENAI_API_KEY (no key leaks to another host)", function()
    env{ OPENAI_API_KEY = "sk-env" }
    local p = build{ mine = { kind = "openai", base_url = "http://127.0.0.1:9001/v1" } }.mine
    assert.is_nil(p.fixed_headers.authorization)
    p = build{ mine = { kind = "openai", base_url = "http://h/v1", api_key_env = "OPENAI_API_KEY" } }.mine
    assert.are.equal("Bearer sk-env", p.fixed_headers.authorization)
    p = build{ mine = { kind = "openai", base_url = "http://h/v1", api_key = "sk-conf",
                        headers = { ["OpenAI-Organization"] = "org-1" }, query = "api-version=2024-06-01" } }.mine
    assert.are.equal("Bearer sk-conf", p.fixed_headers.authorization)
    assert.are.equal("org-1", p.fixed_headers["openai-organization"])
    assert.are.equal("api-version=2024-06-01", p.query)
  end)

  it("anthropic: ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY, /v1 optional in the base", function()
    env{ ANTHROPIC_API_KEY = "sk-ant", ANTHROPIC_BASE_URL = "http://proxy:8080/v1" }
    local p = build{ claude = { kind = "anthropic" } }.claude
    assert.are.equal("http://proxy:8080/v1/messages", p.url)
    assert.are.equal("sk-ant", p.fixed_headers["x-api-key"])
    assert.are.equal("2023-06-01", p.fixed_headers["anthropic-version"])
    env{ ANTHROPIC_BASE_URL = false }
    assert.are.equal("https://api.anthropic.com/v1/messages", build{ claude = { kind = "anthropic" } }.claude.url)
  end)

  it("ollama: OLLAMA_HOST with /v1, by kind or by name, and never OpenAI's key", function()
    env{ OLLAMA_HOST = "10.0.0.5:11434", OPENAI_API_KEY = "sk-env" }
    local ps = build{ ollama = { kind = "openai" }, local_llm = { kind = "ollama" } }
    assert.are.equal("http://10.0.0.5:11434/v1/chat/completions", ps.ollama.chat_url)
    assert.are.equal("http://10.0.0.5:11434/v1/chat/completions", ps.local_llm.chat_url)
    assert.is_nil(ps.ollama.fixed_headers.authorization)
    assert.is_nil(ps.local_llm.fixed_headers.authorization)
    ps = build{ local_llm = { kind = "ollama", api_key_env = "OPENAI_API_KEY" } }   -- asked for by name
    assert.are.equal("Bearer sk-env", ps.local_llm.fixed_headers.authorization)
    env{ OLLAMA_HOST = false }
    assert.are.equal("http://127.0.0.1:11434/v1/chat/completions", build{ ollama = {} }.ollama.chat_url)
  end)

  it("mock: a moongate mock on 127.0.0.1:9000, never a real key", function()
    env{ OPENAI_API_KEY = "sk-env" }
    local p = build{ m = { kind = "mock" } }.m
    assert.are.equal("http://127.0.0.1:9000/v1/chat/completions", p.chat_url)
    assert.is_nil(p.fixed_headers.authorization)
  end)

  it("rejects configs that cannot work, saying why", function()
    assert.are.same({ nil, "config: provider x: unknown kind 'gpt'" },
      { gateway.new({ providers = { x = { kind = "gpt" } }, models = {} }) })
    assert.are.same({ nil, "config: model m, tier 1: unknown provider 'nope'" },
      { gateway.new({ providers = { x = { kind = "mock" } }, models = { m = { route = { { provider = "nope" } } } } }) })
    assert.are.same({ nil, "config: model m needs a non-empty route" },
      { gateway.new({ providers = { x = { kind = "mock" } }, models = { m = { route = {} } } }) })
  end)

  it("with no providers at all: the extractive default for every model name", function()
    local gw = assert(gateway.new(nil))
    assert.are.equal("extractive", gw.providers.extractive.kind)
    assert.truthy(gw.models["*"])
  end)
end)
