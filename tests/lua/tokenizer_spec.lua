-- moongate.tokenizer: tiktoken's ids through the FFI, special tokens, truncation, decoding
-- errors, model -> encoding, and OpenAI's chat counting rule (the cookbook's own figures).
local tokenizer = require "moongate.tokenizer"
local jit_check = require "moongate.jit_check"

local cookbook = {
  { role = "system", content = "You are a helpful, pattern-following assistant that translates corporate jargon into plain English." },
  { role = "system", name = "example_user", content = "New synergies will help drive top-line growth." },
  { role = "system", name = "example_assistant", content = "Things working well together will increase revenue." },
  { role = "system", name = "example_user", content = "Let's circle back when we have more time to touch base on opportunities for increased leverage." },
  { role = "system", name = "example_assistant", content = "Let's talk later when we're less busy about how to do better." },
  { role = "user", content = "This late pivot means we don't have time to boil the ocean for the client deliverable." },
}

describe("tokenizer", function()
  it("counts and encodes exactly as tiktoken", function()
    assert.are.same({ 15339, 1917 }, tokenizer.encode("hello world", "cl100k_base"))
    assert.are.same({ 24912, 2375 }, tokenizer.encode("hello world", "o200k_base"))
    assert.are.same({ 24912, 2375 }, tokenizer.encode("hello world")) -- o200k_base by default
    assert.are.equal(2, tokenizer.count("hello world"))
    assert.are.equal(0, tokenizer.count(""))
    assert.are.same({}, tokenizer.encode(""))
    assert.are.same({ 31213, 14211 }, tokenizer.encode("today\n  \n", "cl100k_base"))
    assert.are.same({ 9468, 239, 235 }, tokenizer.encode("👍", "cl100k_base"))
    assert.are.same({ 82514 }, tokenizer.encode("👍", "o200k_base"))
    assert.are.same({ 13225, 13046, 112127, 76384, 33047, 1314 },
      tokenizer.encode("HelloWorld CamelCASE ABCdef", "o200k_base"))
  end)

  it("accepts a model name where an encoding goes", function()
    assert.are.same({ 15339, 1917 }, tokenizer.encode("hello world", "gpt-4"))
    assert.are.same({ 24912, 2375 }, tokenizer.encode("hello world", "gpt-4o-mini"))
    local n, err = tokenizer.count("x", "llama-3")
    assert.is_nil(n)
    assert.are.equal("unknown encoding", err)
  end)

  it("maps models to encodings", function()
    for model, enc in pairs {
      ["gpt-4o"] = "o200k_base", ["gpt-4o-mini-2024-07-18"] = "o200k_base", ["gpt-4.1-nano"] = "o200k_base",
      ["o1"] = "o200k_base", ["o3-mini"] = "o200k_base", ["o4-mini"] = "o200k_base",
      ["gpt-4"] = "cl100k_base", ["gpt-4-turbo"] = "cl100k_base", ["gpt-3.5-turbo"] = "cl100k_base",
      ["text-embedding-3-small"] = "cl100k_base", ["openai/gpt-4o"] = "o200k_base",
      ["ft:gpt-4o-mini:acme::abc123"] = "o200k_base", ["cl100k_base"] = "cl100k_base",
    } do
      assert.are.equal(enc, tokenizer.encoding_for_model(model), model)
    end
    local e, err = tokenizer.encoding_for_model("claude-3")
    assert.is_nil(e)
    assert.are.equal("unknown model", err)
  end)

  it("maps every model npm tiktoken knows as it does", function()
    local home = require("moongate.base").home
    local f = io.open(home .. "/tests/node_modules/tiktoken/model_to_encoding.json")
    if not f then return pending("tests/node_modules/tiktoken is not installed") end
    local map = require("moongate.json").decode(f:read("*a"))
    f:close()
    local checked = 0
    for model, enc in pairs(map) do
      if enc == "cl100k_base" or enc == "o200k_base" then
        assert.are.equal(enc, tokenizer.encoding_for_model(model), model)
        checked = checked + 1
      end
    end
    assert.is_true(checked > 50)
  end)

  it("treats special-token text as ordinary unless allowed", function()
    local text = "hello <|endoftext|>"
    assert.are.same({ 15339, 220, 100257 }, tokenizer.encode(text, "cl100k_base", { special = "all" }))
    assert.are.same({ 15339, 220, 100257 },
      tokenizer.encode(text, "cl100k_base", { special = { "<|endoftext|>" } }))
    local plain = tokenizer.encode(text, "cl100k_base")
    assert.are.equal(7, #plain)
    assert.are.same(plain, tokenizer.encode(text, "cl100k_base", { special = { "<|fim_prefix|>" } }))
    assert.are.equal(3, tokenizer.count(text, "cl100k_base", { special = "all" }))
    assert.has_error(function() tokenizer.count(text, "o200k_base", { special = { "<|fim_prefix|>" } }) end,
      "not a special token of o200k_base: <|fim_prefix|>")
  end)

  it("decodes ids to bytes", function()
    assert.are.equal("hello world", tokenizer.decode({ 15339, 1917 }, "cl100k_base"))
    assert.are.equal("<|endoftext|>", tokenizer.decode({ 100257 }, "cl100k_base"))
    assert.are.equal("", tokenizer.decode({}, "cl100k_base"))
    assert.are.equal("\xf0\x9f", tokenizer.decode({ 9468 }, "cl100k_base")) -- half an emoji
    local s, err = tokenizer.decode({ 15339, 100256 }, "cl100k_base")
    assert.is_nil(s)
    assert.are.equal("invalid token id 100256", err)
    s, err = tokenizer.decode({ 1.5 }, "cl100k_base")
    assert.are.equal("invalid token id 1.5", err)
    local text = "Über 9000 naïve 日本語 tokens 👩🏽‍💻!\n"
    assert.are.equal(text, tokenizer.decode(tokenizer.encode(text)))
  end)

  it("truncates on token and character boundaries", function()
    local s = "hello world, how are you?"
    assert.are.same({ "hello", true }, { tokenizer.truncate(s, 1, "cl100k_base") })
    assert.are.same({ "hello world", true }, { tokenizer.truncate(s, 2, "cl100k_base") })
    assert.are.same({ "", true }, { tokenizer.truncate(s, 0, "cl100k_base") })
    assert.are.same({ s, false }, { tokenizer.truncate(s, 100, "cl100k_base") })
    -- 👍 is two tokens in cl100k_base: the cut never splits it
    assert.are.equal("ok", (tokenizer.truncate("ok 👍!", 2, "cl100k_base")))
    assert.are.equal("ok 👍", (tokenizer.truncate("ok 👍!", 3, "cl100k_base")))
    assert.has_error(function() tokenizer.truncate(s, -1) end, "max_tokens must be a non-negative integer")
  end)

  it("reads invalid UTF-8 as a WHATWG decoder does", function()
    assert.are.same(tokenizer.encode("a\xef\xbf\xbdz"), tokenizer.encode("a\x80z"))
    assert.are.same(tokenizer.encode("\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"), tokenizer.encode("\xed\xa0\xbd"))
  end)

  it("counts chat messages with OpenAI's cookbook rule", function()
    -- the cookbook's figures, which the API's usage.prompt_tokens agreed with
    assert.are.equal(129, tokenizer.count_chat(cookbook, "gpt-4"))
    assert.are.equal(129, tokenizer.count_chat(cookbook, "gpt-3.5-turbo"))
    assert.are.equal(124, tokenizer.count_chat(cookbook, "gpt-4o"))
    assert.are.equal(124, tokenizer.count_chat(cookbook, "o3"))
    assert.are.equal(3, tokenizer.count_chat({}, "gpt-4o"))
    -- 3 + (3 + user 1 + hello 1) = 8, as text parts too
    assert.are.equal(8, tokenizer.count_chat({ { role = "user", content = "hello" } }, "gpt-4o"))
    assert.are.equal(8, tokenizer.count_chat({ { role = "user", content = { { type = "text", text = "hello" } } } }, "gpt-4o"))
    local n, err = tokenizer.count_chat({ { role = "user", content = { { type = "image_url", image_url = {} } } } }, "gpt-4o")
    assert.is_nil(n)
    assert.are.equal("cannot count content part: image_url", err)
    n, err = tokenizer.count_chat(cookbook, "mistral-large")
    assert.is_nil(n)
    assert.are.equal("unknown model", err)
  end)

  it("counts a resent conversation the same from memory, across the memory's generations", function()
    -- each text counted once directly, then through count_chat many times over: 3 + (3 + 1 + n)
    local texts = {}
    for i = 1, 400 do texts[i] = ("turn %d: "):format(i) .. ("the part ships on Thursday "):rep(i % 40 + 1) end
    local want = {}
    for i, t in ipairs(texts) do want[i] = 3 + 3 + 1 + tokenizer.count(t, "o200k_base") end
    for _ = 1, 3 do
      for i, t in ipairs(texts) do
        assert.are.equal(want[i], tokenizer.count_chat({ { role = "user", content = t } }, "gpt-4o"))
      end
    end
    -- more distinct text than the memory holds (4 MB a generation): still exact
    local big = ("a long pasted log line 12345 "):rep(4000)   -- ~116 KB: over the per-text limit
    local n = tokenizer.count(big, "o200k_base")
    for i = 1, 80 do
      local t = big:sub(1, 60000) .. i
      assert.are.equal(3 + 3 + 1 + tokenizer.count(t, "o200k_base"),
        tokenizer.count_chat({ { role = "user", content = t } }, "gpt-4o"))
    end
    assert.are.equal(3 + 3 + 1 + n, tokenizer.count_chat({ { role = "user", content = big } }, "gpt-4o"))
    assert.are.equal(want[7], tokenizer.count_chat({ { role = "user", content = texts[7] } }, "gpt-4o"))
  end)

  it("raises on programmer errors", function()
    assert.has_error(function() tokenizer.count(42) end, "text must be a string")
    assert.has_error(function() tokenizer.count("x", 42) end, "encoding must be a string")
    assert.has_error(function() tokenizer.count("x", nil, { special = 1 }) end,
      'special must be "all" or a list of special tokens')
    assert.has_error(function() tokenizer.decode("x") end, "ids must be a table")
  end)

  it("looks up single tokens and sizes", function()
    assert.are.equal(15339, tokenizer.token_id("hello", "cl100k_base"))
    assert.are.equal(200018, tokenizer.token_id("<|endofprompt|>", "o200k_base"))
    assert.are.same({ nil, "not a token" }, { tokenizer.token_id("hello world", "cl100k_base") })
    assert.are.equal(100277, tokenizer.vocab_size("cl100k_base"))
    assert.are.equal(200019, tokenizer.vocab_size("o200k_base"))
    assert.is_true(tokenizer.load("cl100k_base"))
    assert.are.same({ nil, "unknown encoding" }, { tokenizer.load("p50k_base") })
  end)

  it("passes long strings without copying and stays exact", function()
    local big = string.rep("The quick brown fox jumps over the lazy dog. ", 20000)
    assert.are.equal(200001, tokenizer.count(big, "cl100k_base")) -- 10 a sentence, and the last space
    local prefix = tokenizer.truncate(big, 1000, "cl100k_base")
    assert.are.equal(1000, tokenizer.count(prefix, "cl100k_base"))
  end)
end)

describe("tokenizer under the JIT", function()
  it("a counting loop compiles to a trace without NYI or stitch", function()
    local texts = { "hello world", "Über 9000 naïve tokens", "x = f(y) + 1\n" }
    local total = 0
    local log = jit_check.trace_log(function()
      -- long enough for the loop to compile even when the JIT first tries (and gives up on) a
      -- trace from inside count: which of the two gets hot first varies from run to run
      for i = 1, 3000 do
        total = total + tokenizer.count(texts[i % 3 + 1], "cl100k_base")
      end
    end)
    assert.are.equal(1000 * (2 + 8 + 9), total) -- the three texts count 2, 8 and 9
    assert.matches("tokenizer_spec.lua:%d+ loop%]", log)
    assert.is_nil(log:find("NYI", 1, true), log)
    assert.is_nil(log:find("stitch", 1, true), log)
  end)
end)
