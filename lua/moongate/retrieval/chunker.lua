-- Structural chunking: packs the blocks of one document (markdown.lua / html.lua) into chunks
-- of a token budget, never cutting a block that fits, with sentence overlap inside a section.
local M = {}

M.defaults = { max_tokens = 800, min_tokens = 400, overlap = 80 }

--- Approximate token count (used until an exact tokenizer is available): about 4 bytes of
-- English text a token, and never fewer tokens than words.
function M.approx_tokens(text)
  local words = select(2, text:gsub("%S+", ""))
  return math.max(words, math.ceil(#text / 4))
end

local counter
--- The token counter in use: exact cl100k_base counts from moongate.tokenizer when it is
-- available, otherwise approx_tokens. Returns fn, name ("cl100k_base" | "approximate").
function M.token_counter()
  if counter then return counter, M.counter_name end
  local ok, tok = pcall(require, "moongate.tokenizer")
  if ok and type(tok) == "table" and type(tok.count) == "function" then
    local cok, n = pcall(tok.count, "probe text", "cl100k_base")
    if cok and type(n) == "number" then
      local count = tok.count
      counter = function(s) return count(s, "cl100k_base") or M.approx_tokens(s) end
      M.counter_name = "cl100k_base"
      return counter, M.counter_name
    end
  end
  counter = M.approx_tokens
  M.counter_name = "approximate"
  return counter, M.counter_name
end

local ABBREV = { ["e.g."] = true, ["i.e."] = true, ["fig."] = true, ["dr."] = true, ["mr."] = true,
  ["mrs."] = true, ["eq."] = true, ["vs."] = true, ["cf."] = true, ["no."] = true, ["ref."] = true }

--- Split text into sentences (kept with their ending punctuation). A line of a list or
-- table is a sentence of its own.
function M.sentences(text)
  local out = {}
  local start = 1
  local n = #text
  local i = 1
  while i <= n do
    local c = text:sub(i, i)
    local boundary
    if c == "\n" then
      -- a soft line wrap is not a boundary; a blank line, list item, table row, quote or
      -- heading that follows is
      local rest = text:sub(i + 1, i + 8)
      if rest:match("^%s*\n") or rest:match("^%s*[-*+|>#]") or rest:match("^%s*%d+[.)]%s") then
        boundary = i
      end
    elseif c == "." or c == "!" or c == "?" then
      local nxt = text:sub(i + 1, i + 1)
      if nxt == "" then
        boundary = i
      elseif nxt:match("%s") then
        -- not after a lone initial or a common abbreviation ("e.g.", "Dr.", "fig.")
        local word = (text:sub(start, i):match("(%S+)$") or ""):lower()
        if not (c == "." and (word:match("^%a%.$") or ABBREV[word])) then
          boundary = i
        end
      end
    end
    if boundary then
      local s = text:sub(start, boundary):match("^%s*(.-)%s*$")
      if s ~= "" then out[#out + 1] = s end
      start = boundary + 1
    end
    i = i + 1
  end
  local s = text:sub(start):match("^%s*(.-)%s*$")
  if s ~= "" then out[#out + 1] = s end
  return out
end

local function render(b)
  if b.kind == "heading" then return ("#"):rep(b.level or 1) .. " " .. b.text end
  return b.text
end

-- Cut one text that exceeds max into pieces of at most max tokens: by sentences, and a
-- sentence longer than max by words.
local function split_long(text, max, count)
  local pieces, cur, cur_t = {}, {}, 0
  local function push()
    if #cur > 0 then pieces[#pieces + 1] = table.concat(cur, " "); cur, cur_t = {}, 0 end
  end
  for _, s in ipairs(M.sentences(text)) do
    local t = count(s)
    if t > max then
      push()
      local words = {}
      for w in s:gmatch("%S+") do words[#words + 1] = w end
      local acc, acc_t = {}, 0
      for _, w in ipairs(words) do
        local wt = count(w) + 1
        if acc_t + wt > max and #acc > 0 then
          pieces[#pieces + 1] = table.concat(acc, " "); acc, acc_t = {}, 0
        end
        acc[#acc + 1] = w; acc_t = acc_t + wt
      end
      if #acc > 0 then cur, cur_t = acc, acc_t end
    else
      if cur_t + t > max then push() end
      cur[#cur + 1] = s; cur_t = cur_t + t
    end
  end
  push()
  return pieces
end

-- Pack whole lines into pieces of at most `room` tokens (a line longer than that by words),
-- each piece framed by frame(lines text).
local function pack_lines(lines, room, count, frame)
  local pieces, cur, cur_t = {}, {}, 0
  local function push()
    if #cur > 0 then
      pieces[#pieces + 1] = frame(table.concat(cur, "\n"))
      cur, cur_t = {}, 0
    end
  end
  for _, line in ipairs(lines) do
    local t = count(line) + 1
    if t > room then
      push()
      for _, part in ipairs(split_long(line, room, count)) do cur[1] = part; push() end
    else
      if cur_t + t > room then push() end
      cur[#cur + 1] = line
      cur_t = cur_t + t
    end
  end
  push()
  return pieces
end

local function lines_of(text)
  local lines = {}
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
  return lines
end

-- Cut a fenced code block that exceeds max into fenced blocks of whole lines, so that every
-- piece still reads as code, to the extractive answerer and to a model alike. Returns nil
-- for a code block without fences (indented code).
local function split_code(text, max, count)
  local open, body, close = text:match("^(%s*[`~][`~][`~][^\n]*)\n(.-)\n(%s*[`~][`~][`~]+)%s*$")
  if not open then return nil end
  local room = math.max(1, max - count(open) - count(close) - 2)
  return pack_lines(lines_of(body), room, count, function(piece)
    return open .. "\n" .. piece .. "\n" .. close
  end)
end

-- Cut a table that exceeds max into tables of whole rows, each under the table's header row
-- (and its |---| line), so that a piece still reads as a table with its column names.
local function split_table(text, max, count)
  local rows = lines_of(text)
  local head = 1
  if rows[2] and rows[2]:match("^%s*|[%s:|-]+$") then head = 2 end
  local header = table.concat(rows, "\n", 1, head)
  local room = max - count(header) - 1
  if room < 1 or #rows <= head then return nil end
  local body = {}
  for i = head + 1, #rows do body[#body + 1] = rows[i] end
  return pack_lines(body, room, count, function(piece)
    return header .. "\n" .. piece
  end)
end

-- The end of a chunk's text worth repeating at the start of the next: whole sentences up
-- to `overlap` tokens (the last words when a single sentence is longer).
local function tail(text, overlap, count)
  local ss = M.sentences(text)
  local picked, t = {}, 0
  for i = #ss, 1, -1 do
    local st = count(ss[i])
    if t + st > overlap then
      if #picked == 0 then
        local words = {}
        for w in ss[i]:gmatch("%S+") do words[#words + 1] = w end
        local from = math.max(1, #words - math.floor(overlap * 0.75) + 1)
        return table.concat(words, " ", from)
      end
      break
    end
    table.insert(picked, 1, ss[i]); t = t + st
  end
  return table.concat(picked, " ")
end

local function same_path(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

--- Pack blocks into chunks.
-- opts: max_tokens (800), min_tokens (400: a section smaller than this is merged with the
-- next one), overlap (80 tokens, only between chunks of one section), count (token counter).
-- Returns an array of {text =, heading = {path}, tokens = n}.
function M.chunk(blocks, opts)
  opts = opts or {}
  local max = opts.max_tokens or M.defaults.max_tokens
  local min = opts.min_tokens or M.defaults.min_tokens
  local overlap = opts.overlap or M.defaults.overlap
  local count = opts.count or M.token_counter()
  if max < 1 then error("max_tokens must be positive", 2) end
  if min > max then min = max end
  if overlap >= max then overlap = math.floor(max / 4) end

  local chunks = {}
  local cur = { parts = {}, tokens = 0, heading = nil, overlap_only = false }

  local function close(with_overlap)
    if #cur.parts == 0 or cur.overlap_only then
      cur = { parts = {}, tokens = 0 }
      return
    end
    local text = table.concat(cur.parts, "\n\n")
    chunks[#chunks + 1] = { text = text, heading = cur.heading or {}, tokens = count(text) }
    local nxt = { parts = {}, tokens = 0 }
    -- the overlap repeats prose: the last words of a code block or a table, cut from their
    -- fences and rows, would read as a paragraph of the next chunk
    if with_overlap and overlap > 0 and cur.last_kind ~= "code" and cur.last_kind ~= "table" then
      local t = tail(text, overlap, count)
      if t ~= "" then
        nxt.parts[1] = t
        nxt.tokens = count(t)
        nxt.heading = cur.last
        nxt.overlap_only = true
      end
    end
    cur = nxt
  end

  local function add(text, tokens, heading, kind)
    if cur.tokens > 0 and cur.tokens + tokens > max then
      if cur.overlap_only then
        cur = { parts = {}, tokens = 0 }   -- the overlap would not fit beside this unit
      else
        close(cur.last and same_path(cur.last, heading))
        if cur.tokens + tokens > max then cur = { parts = {}, tokens = 0 } end
      end
    end
    -- a chunk is filed under the heading path where it starts (overlap aside)
    if not cur.heading or #cur.parts == 0 or cur.overlap_only then cur.heading = heading end
    cur.last = heading
    cur.last_kind = kind
    cur.parts[#cur.parts + 1] = text
    cur.tokens = cur.tokens + tokens + (#cur.parts > 1 and 1 or 0)
    cur.overlap_only = false
  end

  for _, b in ipairs(blocks) do
    local text = render(b)
    local heading = b.heading or {}
    if b.kind == "heading" and cur.tokens >= min and not cur.overlap_only then close(false) end
    if b.kind == "heading" and cur.overlap_only then cur = { parts = {}, tokens = 0 } end
    local t = count(text)
    if t <= max then
      add(text, t, heading, b.kind)
    else
      local pieces = (b.kind == "code" and split_code(text, max, count))
        or (b.kind == "table" and split_table(text, max, count)) or split_long(text, max, count)
      for _, piece in ipairs(pieces) do add(piece, count(piece), heading, b.kind) end
    end
  end
  close(false)
  return chunks
end

return M
