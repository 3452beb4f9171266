-- Context builder: turns ranked hits into numbered passages for a prompt, within a token
-- budget, giving each lower-ranked hit a smaller share (relevance decay).
local chunker = require "moongate.retrieval.chunker"

local M = {}

-- Keep the first sentences of text that fit in `allowance` tokens (at least a cut of words).
local function fit(text, allowance, count)
  if count(text) <= allowance then return text, false end
  local out, used = {}, 0
  for _, s in ipairs(chunker.sentences(text)) do
    local t = count(s) + 1
    if used + t > allowance then break end
    out[#out + 1] = s
    used = used + t
  end
  if #out == 0 then
    local words = {}
    for w in text:gmatch("%S+") do
      local t = count(w) + 1
      if used + t > allowance then break end
      words[#words + 1] = w
      used = used + t
    end
    return table.concat(words, " ") .. " ...", true
  end
  return table.concat(out, " ") .. " ...", true
end

--- build(hits, opts) -> {text =, passages = {{n, hit, text, tokens}}, citations = {{n, id,
-- doc_id, source, title}}, tokens =}
-- opts: budget (1500 tokens), decay (0.7: hit i may take decay^(i-1) of what hit 1 may),
-- min_relevance (0.2: hits scoring under this fraction of the best are left out), min_tokens
-- (40: a passage smaller than this is not worth including), count (token counter).
function M.build(hits, opts)
  opts = opts or {}
  local budget = opts.budget or 1500
  local decay = opts.decay or 0.7
  local min_rel = opts.min_relevance or 0.2
  local min_tokens = opts.min_tokens or 40
  local count = opts.count or chunker.token_counter()
  local top = hits[1] and hits[1].score or 0
  -- candidates: relevant enough relative to the best
  local cand = {}
  for _, h in ipairs(hits) do
    if top <= 0 or h.score >= top * min_rel then cand[#cand + 1] = h end
  end
  local weights, wsum = {}, 0
  for i = 1, #cand do weights[i] = decay ^ (i - 1); wsum = wsum + weights[i] end
  local passages, parts, citations = {}, {}, {}
  local remaining = budget
  for i, h in ipairs(cand) do
    if remaining < min_tokens then break end
    -- a passage is named by its document's title (else its page heading, else its file's
    -- name): never by a path on this machine, which a model provider has no business seeing
    -- and whose length would change what fits in the budget
    local path = h.heading
    local name = (h.title ~= "" and h.title) or (path and path[1]) or tostring(h.doc_id):match("[^/]*$")
    local header = ("[%d] %s"):format(#passages + 1, name)
    if path and #path > 0 and path[#path] ~= name then
      header = header .. " > " .. path[#path]
    end
    local htok = count(header) + 1
    local share = math.floor(remaining * weights[i] / wsum) - htok
    wsum = wsum - weights[i]
    share = math.max(share, math.min(min_tokens, remaining - htok))
    if share >= min_tokens or count(h.text) <= share then
      local text = fit(h.text, share, count)
      local n = #passages + 1
      local tokens = htok + count(text)
      passages[n] = { n = n, hit = h, text = text, tokens = tokens }
      parts[n] = header .. "\n" .. text
      citations[n] = { n = n, id = h.id, doc_id = h.doc_id, source = h.metadata and h.metadata.source or h.source,
        title = h.title }
      remaining = remaining - tokens
    end
  end
  return { text = table.concat(parts, "\n\n"), passages = passages, citations = citations,
    tokens = budget - remaining }
end

return M
