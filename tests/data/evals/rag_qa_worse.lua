-- A deliberately worse candidate of pipelines/rag_qa.lua for the eval tests: it retrieves with
-- BM25 alone and answers from the third-best passage only.
local rag = dofile(require("moongate").home .. "/pipelines/rag_qa.lua")

local M = { name = "rag_qa_worse", open_index = rag.open_index }

function M.answer(req)
  local r, err = rag.answer { question = req.question, index = req.index, k = 3, mode = "bm25", max_sentences = 1 }
  if not r then return nil, err end
  local third = r.hits[3]
  if not third then return r end
  return rag.answer { question = req.question, index = req.index, k = 1, mode = "bm25", max_sentences = 1,
                      filters = { doc_id = third.doc_id } }
end

return M
