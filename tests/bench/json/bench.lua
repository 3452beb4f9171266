-- The json bench body (see run): times moongate.json and lua-cjson on the same documents.
local cdir = ...
package.cpath = cdir .. "/?.so;" .. package.cpath
local json = require "moongate.json"
local cjson = require "cjson"

local function clock() return os.clock() end

-- Runs f until 0.3 s of CPU have passed; returns microseconds per call.
local function time(f)
  local n, t0 = 0, clock()
  local t
  repeat
    for _ = 1, 10 do f() end
    n = n + 10
    t = clock() - t0
  until t > 0.3
  return t / n * 1e6
end

math.randomseed(1)
local docs = {}

local msgs = {}
for i = 1, 8 do
  msgs[i] = { role = i % 2 == 1 and "user" or "assistant",
    content = ("Explain how TCP differs from UDP, part %d: \"quoted\", a newline\n, and caf\195\169."):format(i) }
end
docs[#docs + 1] = { "chat request", { model = "gpt-4o-mini", messages = msgs, temperature = 0.7, max_tokens = 512,
  stream = false } }

local emb = {}
for i = 1, 1536 do emb[i] = tonumber(("%.9g"):format((math.random() - 0.5) / 10)) end
docs[#docs + 1] = { "embeddings response", { object = "list", model = "text-embedding-3-small",
  data = { { object = "embedding", index = 0, embedding = emb } }, usage = { prompt_tokens = 8, total_tokens = 8 } } }

local recs = {}
for i = 1, 2000 do
  recs[i] = { id = i * 7919, name = "document " .. i, score = i / 3, tags = { "a", "b" }, ok = i % 2 == 0 }
end
docs[#docs + 1] = { "2000 records", recs }

docs[#docs + 1] = { "1 MB string", { text = string.rep("lorem ipsum dolor sit amet, ", 37450) } }

print(("%-22s %9s %10s %10s %7s   %9s %10s %10s %7s"):format("document", "bytes", "mg dec us", "cjson dec", "ratio",
  "", "mg enc us", "cjson enc", "ratio"))
for _, d in ipairs(docs) do
  local name, value = d[1], d[2]
  local text = assert(cjson.encode(value))
  local mtext = assert(json.encode(value))
  local md = time(function() json.decode(text) end)
  local cd = time(function() cjson.decode(text) end)
  local me = time(function() json.encode(value) end)
  local ce = time(function() cjson.encode(value) end)
  print(("%-22s %9d %10.1f %10.1f %6.2fx   %9s %10.1f %10.1f %6.2fx"):format(name, #text, md, cd, cd / md, "", me, ce,
    ce / me))
  io.stdout:flush()
  local _ = mtext
end
print("cjson runs with its defaults (numbers printed with 14 significant digits, so 0.1+0.2 prints as 0.3")
print("and integers beyond 2^53 are rounded); moongate.json prints the shortest form that reads back exactly.")
