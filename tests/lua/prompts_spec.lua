-- moongate.prompts: templates next to pipelines, versioned by content hash, rendered once per
-- version and values, hot-reloaded; rag_qa sends its template as the system prompt.
local prompts = require "moongate.prompts"
local reload = require "moongate.reload"
local moongate = require "moongate"

local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p " .. dir) == 0)

local function write(name, text)
  local f = assert(io.open(dir .. "/" .. name, "wb"))
  f:write(text)
  f:close()
  return dir .. "/" .. name
end

describe("prompts", function()
  it("renders a template and names its version", function()
    local path = write("qa.system.txt", "Answer in {{style}} English, as {{ who }}.\n")
    local p = assert(prompts.load(path, { style = "plain", who = "a librarian" }))
    assert.equal("Answer in plain English, as a librarian.", p.text)
    assert.equal(reload.hash("Answer in {{style}} English, as {{ who }}.\n"), p.version)
    assert.equal("qa.system", p.name)
    assert.same({ "style", "who" }, p.placeholders)
    assert.equal(p, prompts.load(path, { who = "a librarian", style = "plain" }))   -- rendered once
    assert.same({ nil, path .. ": no value for {{who}}" }, { prompts.load(path, { style = "x" }) })
  end)

  it("refuses what does not compile, and a missing file", function()
    local path = write("bad.txt", "hello {{}}")
    local p, err = prompts.load(path)
    assert.is_nil(p)
    assert.equal(path .. ": empty placeholder {{}} at byte 7", err)
    assert.is_nil((prompts.load(dir .. "/none.txt")))
  end)

  it("picks up an edit as a new version", function()
    local path = write("live.txt", "v1")
    local p1 = assert(prompts.load(path))
    write("live.txt", "v2 {{x}}")
    local p2
    for _ = 1, 50 do
      moongate.sleep(0.02)
      p2 = prompts.load(path, { x = "!" })
      if p2 and p2.text ~= "v1" then break end
    end
    assert.equal("v2 !", p2.text)
    assert.are_not.equal(p1.version, p2.version)
  end)

  it("is the system prompt rag_qa sends, with its version in the answer", function()
    local rag = dofile(moongate.home .. "/pipelines/rag_qa.lua")
    local sent
    local function generate(g) sent = g.messages[1].content; return "Chains need oil [1]." end
    local idx = moongate.home .. "/tests/data/evals/corpus"
    local r = assert(rag.answer { question = "How often should I oil the chain?", index = idx, generate = generate })
    local f = assert(io.open(moongate.home .. "/pipelines/rag_qa.system.txt", "rb"))
    local src = f:read("*a")
    f:close()
    assert.equal((src:gsub("\n$", "")), sent)
    assert.equal(reload.hash(src), r.prompt_version)
    local other = write("mine.txt", "Be terse.")
    r = assert(rag.answer { question = "How often should I oil the chain?", index = idx, generate = generate, prompt = other })
    assert.equal("Be terse.", sent)
    assert.equal(reload.hash("Be terse."), r.prompt_version)
    assert.same({ nil, "prompt: " .. dir .. "/nope.txt: No such file or directory" },
      { rag.answer { question = "q?", index = idx, prompt = dir .. "/nope.txt" } })
  end)
end)
