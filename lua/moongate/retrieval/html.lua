-- HTML to structural blocks for the chunker, parsed by libxml2's forgiving HTML parser
-- (loaded through the FFI): h1-h6 make the heading path; p, li lists, tables, pre are blocks.
local ffi = require "ffi"

ffi.cdef [[
typedef struct mg_xmlNode {
  void *_private;
  int type;
  const char *name;
  struct mg_xmlNode *children, *last, *parent, *next, *prev;
  void *doc;
  void *ns;
  const char *content;
} mg_xmlNode;
void *htmlReadMemory(const char *buffer, int size, const char *URL, const char *encoding, int options);
mg_xmlNode *xmlDocGetRootElement(void *doc);
void xmlFreeDoc(void *doc);
]]

local M = {}

local xml
local function lib()
  if not xml then
    local ok, l = pcall(ffi.load, "xml2")
    if not ok then ok, l = pcall(ffi.load, "libxml2.so.2") end
    if not ok then return nil end
    xml = l
  end
  return xml
end

local ELEMENT, TEXT, CDATA = 1, 3, 4
-- HTML_PARSE_RECOVER | NOERROR | NOWARNING | NONET | COMPACT
local OPTIONS = 1 + 32 + 64 + 2048 + 65536

local SKIP = { script = true, style = true, noscript = true, template = true,
  nav = true, svg = true, iframe = true, button = true, form = true }
local BLOCK = { p = "paragraph", pre = "code", table = "table", ul = "list", ol = "list",
  dl = "list", blockquote = "quote", figure = "paragraph", address = "paragraph" }
local BREAK = { br = "\n", li = "\n", tr = "\n", dt = "\n", dd = "\n", div = "\n",
  section = "\n", article = "\n", header = "\n", footer = "\n", main = "\n" }

local function squash(s) return (s:gsub("[ \t\r\n\194\160]+", " "):gsub("^ ", ""):gsub(" $", "")) end

--- Parse HTML into blocks (see markdown.lua for the block shape).
-- @return blocks, title (from <title>, or nil) | nil, err
function M.parse(text)
  local x = lib()
  if not x then return nil, "libxml2 not available" end
  local doc = x.htmlReadMemory(text, #text, nil, "UTF-8", OPTIONS)
  if doc == nil then return nil, "unparsable html" end
  local blocks, path, levels, title = {}, {}, {}, nil
  local buf, buf_kind = {}, nil

  local function copy_path() local p = {}; for i = 1, #path do p[i] = path[i] end; return p end
  local function flush()
    local s = table.concat(buf)
    buf = {}
    if buf_kind == "code" then
      s = s:gsub("^\n+", ""):gsub("%s+$", "")
    else
      local lines = {}
      for l in (s .. "\n"):gmatch("([^\n]*)\n") do
        l = squash(l)
        if l ~= "" then lines[#lines + 1] = l end
      end
      s = table.concat(lines, "\n")
    end
    if s ~= "" then
      blocks[#blocks + 1] = { kind = buf_kind or "paragraph", text = s, heading = copy_path() }
    end
    buf_kind = nil
  end

  local function text_of(node, out)
    local c = node.children
    while c ~= nil do
      if c.type == TEXT or c.type == CDATA then
        if c.content ~= nil then out[#out + 1] = ffi.string(c.content) end
      elseif c.type == ELEMENT then
        local name = ffi.string(c.name):lower()
        if not SKIP[name] then text_of(c, out) end
      end
      c = c.next
    end
    return out
  end

  local walk
  walk = function(node, in_block)
    local c = node.children
    while c ~= nil do
      if c.type == TEXT or c.type == CDATA then
        if c.content ~= nil then buf[#buf + 1] = ffi.string(c.content) end
      elseif c.type == ELEMENT then
        local name = ffi.string(c.name):lower()
        local level = name:match("^h([1-6])$")
        if name == "title" and not title then
          title = squash(table.concat(text_of(c, {})))
        elseif SKIP[name] then
          -- dropped: not prose
        elseif level and not in_block then
          flush()
          level = tonumber(level)
          while #levels > 0 and levels[#levels] >= level do
            levels[#levels] = nil; path[#path] = nil
          end
          local h = squash(table.concat(text_of(c, {})))
          if h ~= "" then
            levels[#levels + 1] = level; path[#path + 1] = h
            blocks[#blocks + 1] = { kind = "heading", text = h, level = level, heading = copy_path() }
          end
        elseif BLOCK[name] and not in_block then
          flush()
          buf_kind = BLOCK[name]
          if name == "table" then
            -- one row a line, cells separated by " | "
            local rows = {}
            local function rows_of(n)
              local r = n.children
              while r ~= nil do
                if r.type == ELEMENT then
                  local rn = ffi.string(r.name):lower()
                  if rn == "tr" then
                    local cells, cell = {}, r.children
                    while cell ~= nil do
                      if cell.type == ELEMENT then
                        cells[#cells + 1] = squash(table.concat(text_of(cell, {})))
                      end
                      cell = cell.next
                    end
                    rows[#rows + 1] = "| " .. table.concat(cells, " | ") .. " |"
                  elseif rn ~= "table" then
                    rows_of(r)
                  end
                end
                r = r.next
              end
            end
            rows_of(c)
            buf = { table.concat(rows, "\n") }
          elseif name == "ul" or name == "ol" or name == "dl" then
            local items, it = {}, c.children
            local k = 0
            while it ~= nil do
              if it.type == ELEMENT then
                k = k + 1
                local s = squash(table.concat(text_of(it, {})))
                if s ~= "" then items[#items + 1] = (name == "ol" and (k .. ". ") or "- ") .. s end
              end
              it = it.next
            end
            buf = { table.concat(items, "\n") }
          else
            walk(c, true)
          end
          flush()
        else
          if BREAK[name] then buf[#buf + 1] = "\n" end
          walk(c, in_block)
          if BREAK[name] and not in_block then
            flush()
          elseif BREAK[name] then
            buf[#buf + 1] = "\n"
          end
        end
      end
      c = c.next
    end
  end

  local root = x.xmlDocGetRootElement(doc)
  local ok, err = true, nil
  if root ~= nil then ok, err = pcall(walk, root, false) end
  x.xmlFreeDoc(doc)
  if not ok then error(err, 0) end
  flush()
  return blocks, title
end

return M
