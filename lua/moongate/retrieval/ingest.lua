-- Reading documents from files for the index writer: Markdown, plain text, HTML, and JSONL in
-- the BEIR layout (_id, title, text, any other field is metadata; tenant and labels special).
local store = require "moongate.retrieval.store"
local markdown = require "moongate.retrieval.markdown"

local M = {}

local FORMATS = {
  md = "markdown", markdown = "markdown", mdown = "markdown", mkd = "markdown",
  txt = "text", text = "text", rst = "text",
  html = "html", htm = "html", xhtml = "html",
  jsonl = "jsonl", ndjson = "jsonl",
}

function M.format_of(path)
  local ext = path:match("%.([%w]+)$")
  return ext and FORMATS[ext:lower()] or nil
end

--- Blocks of a document's text for the chunker, by format. The title (if any) is the
-- document's top heading when the text has none of its own.
function M.blocks(doc)
  local fmt = doc.format or "text"
  local blocks, title
  if fmt == "markdown" then
    blocks = markdown.parse(doc.text)
  elseif fmt == "html" then
    blocks, title = require("moongate.retrieval.html").parse(doc.text)
    if not blocks then return nil, title end
  elseif fmt == "text" then
    blocks = markdown.parse_text(doc.text)
  else
    error("unknown document format: " .. tostring(fmt), 2)
  end
  return blocks, title
end

local function walk(path, out, skipped)
  if store.is_dir(path) then
    local entries, err = store.list_dir(path)
    if not entries then return nil, err end
    for _, e in ipairs(entries) do
      if e.name:sub(1, 1) ~= "." then
        local p = path:gsub("/+$", "") .. "/" .. e.name
        if e.kind == "dir" or (e.kind ~= "file" and store.is_dir(p)) then
          walk(p, out, skipped)
        elseif M.format_of(p) then
          out[#out + 1] = p
        else
          skipped[#skipped + 1] = p
        end
      end
    end
    return true
  end
  local f = io.open(path, "rb")
  if not f then return nil, "cannot read " .. path end
  f:close()
  if not M.format_of(path) then return nil, "unsupported file type: " .. path .. " (use .md, .txt, .html or .jsonl)" end
  out[#out + 1] = path
  return true
end

--- Expand PATHs (files and folders, recursively; hidden entries skipped) into the files to
-- ingest. Returns files, skipped | nil, err.
--- A path as documents are known by: "./docs//a.md" and "docs/a.md" are one document.
function M.clean_path(p)
  p = p:gsub("/+", "/")
  while p:sub(1, 2) == "./" and #p > 2 do p = p:sub(3) end
  p = p:gsub("/%./", "/")
  if #p > 1 then p = p:gsub("/$", "") end
  return p
end

function M.files(paths)
  local files, skipped = {}, {}
  for _, p in ipairs(paths) do
    local ok, err = walk(M.clean_path(p), files, skipped)
    if not ok then return nil, err end
  end
  return files, skipped
end

--- Size of a file in bytes (0 when unreadable).
function M.size(path)
  local f = io.open(path, "rb")
  if not f then return 0 end
  local n = f:seek("end") or 0
  f:close()
  return n
end

local RESERVED = { _id = true, id = true, title = true, text = true, tenant = true, labels = true }

--- Call fn(doc) for each document in a file. doc = {id, title, text, format, source,
-- metadata, tenant, labels, offset (bytes of the file read so far)}. Returns count | nil, err (with the line for JSONL).
function M.read_file(path, fn, defaults)
  defaults = defaults or {}
  local fmt = M.format_of(path)
  if not fmt then return nil, "unsupported file type: " .. path end
  local f, err = io.open(path, "rb")
  if not f then return nil, "cannot read " .. path .. ": " .. tostring(err) end
  if fmt ~= "jsonl" then
    local text = f:read("*a")
    f:close()
    fn {
      id = path, title = "", text = text, format = fmt, source = path,
      metadata = {}, tenant = defaults.tenant, labels = defaults.labels, offset = #text,
    }
    return 1
  end
  local json = require "moongate.json"
  local n, lineno, offset = 0, 0, 0
  for line in f:lines() do
    lineno = lineno + 1
    offset = offset + #line + 1
    if line:match("%S") then
      local obj, jerr = json.decode(line)
      if type(obj) ~= "table" then
        f:close()
        return nil, ("%s:%d: invalid JSON: %s"):format(path, lineno, tostring(jerr or "not an object"))
      end
      local id = obj._id or obj.id
      if type(id) == "number" then id = tostring(id) end
      if type(id) ~= "string" or id == "" then
        f:close()
        return nil, ("%s:%d: document has no _id"):format(path, lineno)
      end
      local text = obj.text
      if type(text) ~= "string" then
        f:close()
        return nil, ("%s:%d: document %s has no text"):format(path, lineno, id)
      end
      local meta = {}
      for k, v in pairs(obj) do
        if not RESERVED[k] and (type(v) == "string" or type(v) == "number" or type(v) == "boolean") then
          meta[k] = v
        end
      end
      local labels = obj.labels
      if type(labels) ~= "table" and type(labels) ~= "string" then labels = defaults.labels end
      local tenant = obj.tenant
      if type(tenant) ~= "string" then tenant = defaults.tenant end
      n = n + 1
      fn {
        id = id, title = type(obj.title) == "string" and obj.title or "", text = text,
        format = obj.format == "markdown" and "markdown" or obj.format == "html" and "html" or "text",
        source = path, metadata = meta, tenant = tenant, labels = labels, offset = offset,
      }
    end
  end
  f:close()
  return n
end

return M
