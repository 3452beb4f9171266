-- Scores a TREC run file against graded qrels: nDCG@10 (gain = grade, log2 discount, as
-- trec_eval's ndcg_cut.10) and Recall@100 (relevant = grade > 0), averaged over the judged
-- queries (a judged query missing from the run counts as 0). Plain Lua 5.1 / LuaJIT.
--   luajit score.lua QRELS.tsv RUN.trec [RUN.trec ...]
local function read_qrels(path)
  local f = assert(io.open(path, "r"))
  local qrels, nq = {}, 0
  for line in f:lines() do
    local q, d, g = line:match("^(%S+)%s+(%S+)%s+(%-?%d+)%s*$")
    if not q then q, d, g = line:match("^(%S+)%s+%S+%s+(%S+)%s+(%-?%d+)%s*$") end -- 4-column TREC qrels
    if q and q ~= "query-id" then
      if not qrels[q] then qrels[q] = {}; nq = nq + 1 end
      qrels[q][d] = tonumber(g)
    end
  end
  f:close()
  return qrels, nq
end

local function read_run(path)
  local f = assert(io.open(path, "r"))
  local run = {}
  for line in f:lines() do
    local q, d, rank, score = line:match("^(%S+)%s+%S+%s+(%S+)%s+(%d+)%s+(%S+)")
    if q then
      run[q] = run[q] or {}
      local l = run[q]
      l[#l + 1] = { doc = d, rank = tonumber(rank), score = tonumber(score) }
    end
  end
  f:close()
  for _, l in pairs(run) do
    -- trec_eval orders by score (descending), ties by docid descending
    table.sort(l, function(a, b)
      if a.score ~= b.score then return a.score > b.score end
      return a.doc > b.doc
    end)
  end
  return run
end

local function log2(x) return math.log(x) / math.log(2) end

local function score(qrels, run)
  local ndcg_sum, rec_sum, n = 0, 0, 0
  for q, rels in pairs(qrels) do
    local grades, nrel = {}, 0
    for _, g in pairs(rels) do
      if g > 0 then grades[#grades + 1] = g; nrel = nrel + 1 end
    end
    if nrel > 0 then
      n = n + 1
      table.sort(grades, function(a, b) return a > b end)
      local idcg = 0
      for i = 1, math.min(10, #grades) do idcg = idcg + grades[i] / log2(i + 1) end
      local l = run[q] or {}
      local dcg, found = 0, 0
      for i = 1, math.min(100, #l) do
        local g = rels[l[i].doc] or 0
        if i <= 10 and g > 0 then dcg = dcg + g / log2(i + 1) end
        if g > 0 then found = found + 1 end
      end
      ndcg_sum = ndcg_sum + dcg / idcg
      rec_sum = rec_sum + found / nrel
    end
  end
  return ndcg_sum / n, rec_sum / n, n
end

local qrels_path = arg[1]
if not qrels_path or not arg[2] then
  io.stderr:write("usage: luajit score.lua QRELS.tsv RUN.trec [RUN.trec ...]\n")
  os.exit(2)
end
local qrels = read_qrels(qrels_path)
print(string.format("%-32s %8s %10s %8s", "run", "nDCG@10", "Recall@100", "queries"))
for i = 2, #arg do
  local ndcg, rec, n = score(qrels, read_run(arg[i]))
  local name = arg[i]:match("([^/]+)$"):gsub("%.trec$", "")
  print(string.format("%-32s %8.4f %10.4f %8d", name, ndcg, rec, n))
end
