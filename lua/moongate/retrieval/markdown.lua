-- Markdown and plain text to structural blocks for the chunker: headings (with their path),
-- paragraphs, lists, tables, block quotes and fenced/indented code, never split here.
local M = {}

-- (linear: a pattern anchored at the end would rescan every run of spaces)
local function trim(s)
  local i = s:find("%S")
  if not i then return "" end
  local j = #s
  local b = s:byte(j)
  while b == 32 or (b >= 9 and b <= 13) do
    j = j - 1
    b = s:byte(j)
  end
  return s:sub(i, j)
end

local function copy_path(path)
  local p = {}
  for i = 1, #path do p[i] = path[i] end
  return p
end

-- A block is {kind = "heading"|"paragraph"|"list"|"table"|"code"|"quote", text = str,
-- heading = {"Top", "Sub"} (the path of headings it sits under), level = n (headings only)}.
local function new_state()
  return { blocks = {}, path = {}, levels = {} }
end

local function emit(st, kind, text)
  if kind ~= "code" then text = trim(text) end
  if text == "" then return end
  st.blocks[#st.blocks + 1] = { kind = kind, text = text, heading = copy_path(st.path) }
end

local function set_heading(st, level, title)
  title = trim((title:gsub("%s+#+%s*$", "")))
  -- pop headings of this level or deeper, then push
  while #st.levels > 0 and st.levels[#st.levels] >= level do
    st.levels[#st.levels] = nil
    st.path[#st.path] = nil
  end
  if title == "" then return end
  st.levels[#st.levels + 1] = level
  st.path[#st.path + 1] = title
  st.blocks[#st.blocks + 1] = { kind = "heading", text = title, level = level,
    heading = copy_path(st.path) }
end

local function is_list_item(line)
  return line:match("^%s*[-*+]%s+") or line:match("^%s*%d+[.)]%s+")
end

local function is_fence(line)
  local ind, fence = line:match("^(%s*)(```+)")
  if not fence then ind, fence = line:match("^(%s*)(~~~+)") end
  if fence and #ind < 4 then return fence end
end

--- Parse Markdown text into blocks.
function M.parse(text)
  local st = new_state()
  local lines = {}
  text = text:gsub("\r\n?", "\n")
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
  local i, n = 1, #lines
  -- YAML front matter: skipped (its fields are not prose)
  if lines[1] == "---" then
    for j = 2, n do
      if lines[j] == "---" or lines[j] == "..." then i = j + 1; break end
    end
  end
  local para = {}
  local function flush_para()
    if #para > 0 then emit(st, "paragraph", table.concat(para, "\n")); para = {} end
  end
  while i <= n do
    local line = lines[i]
    local fence = is_fence(line)
    if fence then
      flush_para()
      local body = { line }
      i = i + 1
      while i <= n do
        body[#body + 1] = lines[i]
        if lines[i]:match("^%s*" .. fence:sub(1, 1):rep(#fence)) and trim(lines[i]):match("^[`~]+$") then
          i = i + 1
          break
        end
        i = i + 1
      end
      emit(st, "code", table.concat(body, "\n"))
    elseif line:match("^%s*$") then
      flush_para()
      i = i + 1
    elseif line:match("^ ? ? ?#+%s") or line:match("^ ? ? ?#+$") then
      local hashes, title = line:match("^%s*(#+)%s*(.-)%s*$")
      if #hashes <= 6 then
        flush_para()
        set_heading(st, #hashes, title)
      else
        para[#para + 1] = line
      end
      i = i + 1
    elseif #para == 1 and not is_list_item(para[1]) and (line:match("^%s*=+%s*$") or line:match("^%s*%-+%s*$")) then
      -- setext heading: the paragraph line above is its title
      local title = para[1]
      para = {}
      set_heading(st, line:match("=") and 1 or 2, title)
      i = i + 1
    elseif #para == 0 and line:match("^    ") then
      local body = {}
      while i <= n and (lines[i]:match("^    ") or (lines[i]:match("^%s*$") and lines[i + 1] and lines[i + 1]:match("^    "))) do
        body[#body + 1] = lines[i]:sub(5)
        i = i + 1
      end
      emit(st, "code", table.concat(body, "\n"))
    elseif line:match("^%s*|") then
      flush_para()
      local body = {}
      while i <= n and lines[i]:match("^%s*|") do body[#body + 1] = lines[i]; i = i + 1 end
      emit(st, "table", table.concat(body, "\n"))
    elseif line:match("^%s*>") then
      flush_para()
      local body = {}
      while i <= n and lines[i]:match("^%s*>") do body[#body + 1] = lines[i]; i = i + 1 end
      emit(st, "quote", table.concat(body, "\n"))
    elseif is_list_item(line) and #para == 0 then
      -- a list runs until a blank line followed by something that is neither an item nor indented
      local body = {}
      while i <= n do
        local l = lines[i]
        if l:match("^%s*$") then
          local nxt = lines[i + 1]
          if nxt and (is_list_item(nxt) or nxt:match("^%s%s+%S")) then
            body[#body + 1] = l
            i = i + 1
          else
            break
          end
        elseif is_list_item(l) or l:match("^%s+%S") or not is_fence(l) and #body > 0 and not l:match("^%s*#") and not l:match("^%s*|") then
          body[#body + 1] = l
          i = i + 1
        else
          break
        end
      end
      emit(st, "list", table.concat(body, "\n"))
    else
      para[#para + 1] = line
      i = i + 1
    end
  end
  flush_para()
  return st.blocks
end

--- Plain text: paragraphs separated by blank lines, no headings.
function M.parse_text(text)
  local st = new_state()
  if text:find("\r", 1, true) then text = text:gsub("\r\n?", "\n") end
  local pos = 1
  while true do
    local a, b = text:find("\n[ \t]*\n", pos)
    if not a then
      emit(st, "paragraph", text:sub(pos))
      break
    end
    emit(st, "paragraph", text:sub(pos, a - 1))
    pos = b + 1
  end
  return st.blocks
end

return M
