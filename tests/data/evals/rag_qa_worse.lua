-- A deliberately worse candidate of pipelines/rag_qa.lua for the eval tests: BM25 alone, one
-- sentence, and a context budget cut so far that most of each passage never reaches the answerer.
local rag = dofile(require("moongate").home .. "/pipelines/rag_qa.lua")

local M = { name = "rag_qa_worse", open_index = rag.open_index }

function M.answer(req)
  return rag.answer { question = req.question, index = req.index, k = 1, mode = "bm25", max_sentences = 1, budget = 40 }
end

return M
