-- moongate.tokenizer: exact tiktoken token counts, ids, decoding and truncation for OpenAI's
-- cl100k_base and o200k_base encodings, and chat-message counting per OpenAI's cookbook rule.
local ffi = require "ffi"
local base = require "moongate.base"

ffi.cdef [[
typedef struct mg_tok mg_tok;
int mg_tok_load(const char *name);
const mg_tok *mg_tok_get(const char *name, const char **err);
const char *mg_tok_name(const mg_tok *enc);
uint32_t mg_tok_vocab_size(const mg_tok *enc);
int mg_tok_special(const mg_tok *enc, uint32_t i, const char **text, uint32_t *id);
int mg_tok_count_special(const mg_tok *enc, const char *s, size_t n, uint32_t allowed, size_t *out);
int mg_tok_encode_special(const mg_tok *enc, const char *s, size_t n, uint32_t allowed,
                          uint32_t *ids, size_t cap, size_t *nout);
int mg_tok_truncate_special(const mg_tok *enc, const char *s, size_t n, uint32_t allowed,
                            size_t max_tokens, size_t *prefix_bytes);
int mg_tok_decode(const mg_tok *enc, const uint32_t *ids, size_t n, char *out, size_t cap,
                  size_t *nout);
int mg_tok_rank(const mg_tok *enc, const char *p, size_t n, uint32_t *id);
]]

local C = ffi.C
local OK, AGAIN, DECLINED = base.OK, base.AGAIN, base.DECLINED

local M = {}

M.default_encoding = "o200k_base"

-- Model name prefixes, longest match first: which encoding each OpenAI model family uses.
local MODEL_PREFIXES = {
  { "gpt-4o", "o200k_base" }, { "gpt-4.1", "o200k_base" }, { "gpt-4.5", "o200k_base" },
  { "gpt-5", "o200k_base" }, { "o1", "o200k_base" }, { "o3", "o200k_base" }, { "o4", "o200k_base" },
  { "chatgpt-4o", "o200k_base" }, { "gpt-oss", "o200k_base" },
  { "gpt-4", "cl100k_base" }, { "gpt-3.5", "cl100k_base" }, { "gpt-35", "cl100k_base" },
  { "text-embedding-3", "cl100k_base" }, { "text-embedding-ada-002", "cl100k_base" },
  { "davinci-002", "cl100k_base" }, { "babbage-002", "cl100k_base" },
}
table.sort(MODEL_PREFIXES, function(a, b) return #a[1] > #b[1] end)

local ENCODINGS = { cl100k_base = true, o200k_base = true }

local errbuf = ffi.new("const char *[1]")
local sizebuf = ffi.new("size_t[1]")
local idbuf = ffi.new("uint32_t[1]")
local cache = {} -- name -> { enc = const mg_tok *, specials = { text = bit } }

-- encoding_for_model("gpt-4o-mini") -> "o200k_base" | nil, "unknown model"
function M.encoding_for_model(model)
  if type(model) ~= "string" then error("model must be a string", 2) end
  if ENCODINGS[model] then return model end
  -- provider-qualified names ("openai/gpt-4o") and fine-tunes ("ft:gpt-4o:org::id")
  local m = model:match("^[%w%-_]+/(.+)$") or model
  m = m:match("^ft:([^:]+)") or m
  for _, p in ipairs(MODEL_PREFIXES) do
    if m:sub(1, #p[1]) == p[1] then return p[2] end
  end
  return nil, "unknown model"
end

-- model name -> its encoding's entry, or false for a name no encoding claims: the gateway asks
-- for every request's model. Bounded, since model names come from clients.
local by_model, by_model_n = {}, 0

local function load(name)
  local e = cache[name]
  if e then return e end
  if not ENCODINGS[name] then
    e = by_model[name]
    if e ~= nil then
      if e then return e end
      return nil, "unknown encoding"
    end
    local enc_name = M.encoding_for_model(name)
    local found, err
    if enc_name then found, err = load(enc_name) end
    if (found or not enc_name) and by_model_n < 1024 then
      by_model_n = by_model_n + 1
      by_model[name] = found or false
    end
    if not enc_name then return nil, "unknown encoding" end
    return found, err
  end
  local p = C.mg_tok_get(name, errbuf)
  if p == nil then return nil, ffi.string(errbuf[0]) end
  e = { enc = p, name = name, specials = {} }
  local text = ffi.new("const char *[1]")
  local i = 0
  while C.mg_tok_special(p, i, text, idbuf) == OK do
    e.specials[ffi.string(text[0])] = bit.lshift(1, i)
    i = i + 1
  end
  cache[name] = e
  return e
end

-- load(name) -> true | nil, err. Loads a rank table now (before forking workers, say).
function M.load(name)
  if type(name) ~= "string" then error("encoding must be a string", 2) end
  local e, err = load(name)
  if not e then return nil, err end
  return true
end

local function args(text, encoding, opts, level)
  if type(text) ~= "string" then error("text must be a string", level + 1) end
  if encoding ~= nil and type(encoding) ~= "string" then
    error("encoding must be a string", level + 1)
  end
  local e, err = load(encoding or M.default_encoding)
  if not e then return nil, err end
  local allowed = 0
  if opts ~= nil then
    if type(opts) ~= "table" then error("options must be a table", level + 1) end
    local sp = opts.special
    if sp == "all" or sp == true then
      allowed = 0xffffffff
    elseif type(sp) == "table" then
      for _, name in ipairs(sp) do
        local b = e.specials[name]
        if not b then error("not a special token of " .. e.name .. ": " .. tostring(name), level + 1) end
        allowed = bit.bor(allowed, b)
      end
    elseif sp ~= nil and sp ~= false then
      error('special must be "all" or a list of special tokens', level + 1)
    end
  end
  return e, allowed
end

-- count(text, encoding?, {special = "all" | {...}}?) -> n | nil, err
function M.count(text, encoding, opts)
  local e, allowed = args(text, encoding, opts, 2)
  if not e then return nil, allowed end
  if C.mg_tok_count_special(e.enc, text, #text, allowed, sizebuf) ~= OK then
    return nil, "out of memory"
  end
  return tonumber(sizebuf[0])
end

local ids_cap, ids_buf = 0, nil

-- encode(text, encoding?, opts?) -> { id, ... } | nil, err
function M.encode(text, encoding, opts)
  local e, allowed = args(text, encoding, opts, 2)
  if not e then return nil, allowed end
  for _ = 1, 2 do
    local rc = C.mg_tok_encode_special(e.enc, text, #text, allowed, ids_buf, ids_cap, sizebuf)
    local n = tonumber(sizebuf[0])
    if rc == OK then
      local out = {}
      for i = 0, n - 1 do out[i + 1] = ids_buf[i] end
      return out
    elseif rc == AGAIN then
      ids_cap = math.max(n, 1024)
      ids_buf = ffi.new("uint32_t[?]", ids_cap)
    else
      return nil, "out of memory"
    end
  end
  error("tokenizer: encode did not converge")
end

-- decode(ids, encoding?) -> string (bytes; a multi-byte character may be split between
-- ids, so a slice of ids may decode to invalid UTF-8) | nil, "invalid token id <id>"
function M.decode(ids, encoding)
  if type(ids) ~= "table" then error("ids must be a table", 2) end
  if encoding ~= nil and type(encoding) ~= "string" then error("encoding must be a string", 2) end
  local e, err = load(encoding or M.default_encoding)
  if not e then return nil, err end
  local n = #ids
  local arr = ffi.new("uint32_t[?]", n > 0 and n or 1)
  for i = 1, n do
    local v = ids[i]
    if type(v) ~= "number" or v < 0 or v >= 4294967296 or v % 1 ~= 0 then
      return nil, "invalid token id " .. tostring(v)
    end
    arr[i - 1] = v
  end
  local rc = C.mg_tok_decode(e.enc, arr, n, nil, 0, sizebuf)
  if rc == DECLINED then return nil, "invalid token id " .. tostring(ids[tonumber(sizebuf[0]) + 1]) end
  local len = tonumber(sizebuf[0])
  if len == 0 then return "" end
  local out = ffi.new("char[?]", len)
  rc = C.mg_tok_decode(e.enc, arr, n, out, len, sizebuf)
  if rc ~= OK then return nil, "invalid token id" end
  return ffi.string(out, len)
end

-- truncate(text, max_tokens, encoding?, opts?) -> prefix, truncated | nil, err
-- The longest prefix made of the text's first tokens (at most max_tokens) that ends between
-- two characters; it counts at most max_tokens itself.
function M.truncate(text, max_tokens, encoding, opts)
  if type(max_tokens) ~= "number" or max_tokens < 0 or max_tokens % 1 ~= 0 then
    error("max_tokens must be a non-negative integer", 2)
  end
  local e, allowed = args(text, encoding, opts, 2)
  if not e then return nil, allowed end
  if C.mg_tok_truncate_special(e.enc, text, #text, allowed, max_tokens, sizebuf) ~= OK then
    return nil, "out of memory"
  end
  local n = tonumber(sizebuf[0])
  if n == #text then return text, false end
  return text:sub(1, n), true
end

-- token_id(bytes, encoding?) -> id | nil, "not a token": the one id whose bytes these are
function M.token_id(bytes, encoding)
  local e, err = args(bytes, encoding, nil, 2)
  if not e then return nil, err end
  if C.mg_tok_rank(e.enc, bytes, #bytes, idbuf) ~= OK then return nil, "not a token" end
  return tonumber(idbuf[0])
end

-- vocab_size(encoding?) -> n: one past the largest id
function M.vocab_size(encoding)
  local e, err = load(encoding or M.default_encoding)
  if not e then return nil, err end
  return tonumber(C.mg_tok_vocab_size(e.enc))
end

-- A chat client sends the whole conversation again with every turn, so the gateway counts the
-- same message texts over and over. count_chat remembers recent counts per encoding in two
-- generations (the older one dropped when the newer holds MEMO_BYTES of text): a repeat is a
-- table lookup on the already-interned string. Texts over MEMO_TEXT bytes are not kept.
local MEMO_BYTES, MEMO_TEXT = 4 * 1024 * 1024, 64 * 1024

local function count_remembered(e, text)
  local m = e.memo
  if not m then m = { new = {}, old = {}, bytes = 0 }; e.memo = m end
  local n = m.new[text]
  if n then return n end
  n = m.old[text]
  if not n then
    if C.mg_tok_count_special(e.enc, text, #text, 0, sizebuf) ~= OK then error("out of memory") end
    n = tonumber(sizebuf[0])
    if #text > MEMO_TEXT then return n end
  end
  if m.bytes + #text > MEMO_BYTES then m.old, m.new, m.bytes = m.new, {}, 0 end
  m.new[text], m.bytes = n, m.bytes + #text
  return n
end

-- count_chat(messages, model) -> n | nil, err
-- OpenAI's cookbook rule for chat models: every message costs 3 tokens plus its fields'
-- tokens (role, content, name, ...), a name 1 more, and the reply is primed with 3.
-- Content may be a string or a list of parts; only text parts can be counted.
function M.count_chat(messages, model)
  if type(messages) ~= "table" then error("messages must be a table", 2) end
  if type(model) ~= "string" then error("model must be a string", 2) end
  local e, err = load(model)
  if not e then return nil, err == "unknown encoding" and "unknown model" or err end
  local total = 3
  for i, msg in ipairs(messages) do
    if type(msg) ~= "table" then return nil, "message " .. i .. " is not an object" end
    total = total + 3
    for k, v in pairs(msg) do
      if type(v) == "string" then
        total = total + count_remembered(e, v)
        if k == "name" then total = total + 1 end
      elseif k == "content" and type(v) == "table" then
        for _, part in ipairs(v) do
          if type(part) ~= "table" or part.type ~= "text" or type(part.text) ~= "string" then
            local kind = type(part) == "table" and tostring(part.type) or type(part)
            return nil, "cannot count content part: " .. kind
          end
          total = total + count_remembered(e, part.text)
        end
      elseif k == "content" and (v == nil or type(v) == "userdata") then
        -- JSON null content (an assistant message with tool calls): nothing to count
      else
        return nil, "cannot count field: " .. tostring(k)
      end
    end
  end
  return total
end

return M
