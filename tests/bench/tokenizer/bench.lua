-- bench.lua CORPUS REPS: moongate's side of tests/bench/tokenizer/run. Counts every document
-- of CORPUS (separated by "\n\x1e\n") with moongate.tokenizer.count, REPS times per encoding,
-- single-threaded, and prints one line per encoding: name, best seconds, then each count.
local ffi = require "ffi"
local tokenizer = require "moongate.tokenizer"

ffi.cdef [[
struct mg_bench_timespec { long tv_sec; long tv_nsec; };
int clock_gettime(int clk, struct mg_bench_timespec *ts);
]]
local ts = ffi.new("struct mg_bench_timespec")
local function now()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

local path, reps = arg[1], tonumber(arg[2] or "3")
local f = assert(io.open(path, "rb"))
local all = f:read("*a")
f:close()
local docs, p = {}, 1
while true do
  local q = all:find("\n\30\n", p, true)
  docs[#docs + 1] = all:sub(p, (q or #all + 1) - 1)
  if not q then break end
  p = q + 3
end

for _, enc in ipairs { "cl100k_base", "o200k_base" } do
  assert(tokenizer.load(enc))
  local count = tokenizer.count
  local best, counts = math.huge, {}
  for _ = 1, reps do
    local t0 = now()
    for i = 1, #docs do counts[i] = count(docs[i], enc) end
    local dt = now() - t0
    if dt < best then best = dt end
  end
  io.write(enc, " ", string.format("%.6f", best), " ", table.concat(counts, " "), "\n")
end
