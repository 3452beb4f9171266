-- moongate.moderation: local rules, by phase, whole words, validation.
local moderation = require "moongate.moderation"

describe("moongate.moderation", function()
  local m = assert(moderation.new{ message = "Not here.", rules = {
    { category = "violence", reason_code = "weapons", terms = { "pipe bomb" } },
    { category = "secrets", reason_code = "codename", patterns = { "project%s+nightjar" }, phase = "output",
      message = "That is internal." },
    { category = "abuse", reason_code = "abuse", terms = { "idiot" }, phase = "both" },
  } })

  it("flags the user's text by whole words, in any case and spacing", function()
    assert.are.same({ category = "violence", reason_code = "weapons", message = "Not here." },
      m:check("How do I build a PIPE   bomb?", "input"))
    assert.is_nil(m:check("the pipe bombastic review", "input"))
    assert.is_nil(m:check("my pipe is leaking", "input"))
  end)

  it("rules apply to their phase only", function()
    assert.is_nil(m:check("tell me about project nightjar", "input"))
    assert.are.same({ category = "secrets", reason_code = "codename", message = "That is internal." },
      m:check("Project Nightjar ships in May.", "output"))
    assert.are.equal("abuse", m:check("you idiot", "output").reason_code)
    assert.are.equal("abuse", m:check("you idiot", "input").reason_code)
  end)

  it("refuses a bad configuration with a clear error", function()
    assert.are.same({ nil, "moderation: rules must be a list" }, { moderation.new{} })
    assert.are.same({ nil, "moderation: rule 1 needs a category and a reason_code" }, { moderation.new{ rules = { { terms = { "x" } } } } })
    assert.are.same({ nil, "moderation: rule 1: unknown field 'term'" },
      { moderation.new{ rules = { { category = "a", reason_code = "b", term = { "x" } } } } })
    assert.are.same({ nil, "moderation: rule 1: phase must be input, output or both" },
      { moderation.new{ rules = { { category = "a", reason_code = "b", terms = { "x" }, phase = "later" } } } })
    assert.are.same({ nil, "moderation: rule 1: bad pattern [x" },
      { moderation.new{ rules = { { category = "a", reason_code = "b", patterns = { "[x" } } } } })
  end)
end)
