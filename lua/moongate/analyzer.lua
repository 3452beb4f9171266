-- moongate.analyzer: the text analysis shared by BM25 and SimHash (NFKC case folding,
-- Unicode word split, optional English stop words, optional Snowball stemming).
local ffi = require "ffi"

ffi.cdef [[
typedef struct mg_analyzer mg_analyzer;
mg_analyzer *mg_analyzer_new(const char *stem, int stopwords, const char **err);
void mg_analyzer_free(mg_analyzer *a);
int mg_analyzer_run(mg_analyzer *a, const char *text, size_t len, const char **buf,
                    const uint32_t **offs, size_t *n, const char **err);
int mg_analyzer_is_stopword(const char *term, size_t len);
]]

local C = ffi.C
local M = {}

local errbuf = ffi.new("const char *[1]")
local bufp = ffi.new("const char *[1]")
local offsp = ffi.new("const uint32_t *[1]")
local np = ffi.new("size_t[1]")

-- opts.stem: a Snowball language name, or false for none (default "english");
-- opts.stopwords: true drops Lucene's 33 English stop words (default false).
-- Returns the C stem argument (nil for none) and the stopwords flag, or raises.
function M.settings(opts, level)
  level = (level or 1) + 1
  if opts ~= nil and type(opts) ~= "table" then
    error("analyzer options must be a table", level)
  end
  opts = opts or {}
  local stem = opts.stem
  if stem == nil then stem = "english" end
  if stem ~= false and type(stem) ~= "string" then
    error("stem must be a language name or false", level)
  end
  if stem == false or stem == "" then stem = nil end
  local sw = opts.stopwords
  if sw ~= nil and type(sw) ~= "boolean" then
    error("stopwords must be a boolean", level)
  end
  return stem, sw and 1 or 0
end

local Analyzer = {}
Analyzer.__index = Analyzer

-- analyzer.new(opts) -> analyzer | nil, "unknown stemmer language"
function M.new(opts)
  local stem, sw = M.settings(opts, 2)
  local p = C.mg_analyzer_new(stem, sw, errbuf)
  if p == nil then return nil, ffi.string(errbuf[0]) end
  return setmetatable({ _p = ffi.gc(p, C.mg_analyzer_free), stem = stem or false,
    stopwords = sw == 1 }, Analyzer)
end

-- a:terms(text) -> array of term strings, in text order (repeats kept)
function Analyzer:terms(text)
  if type(text) ~= "string" then error("text must be a string", 2) end
  local p = self._p
  if p == nil then error("analyzer is closed", 2) end
  if C.mg_analyzer_run(p, text, #text, bufp, offsp, np, errbuf) ~= 0 then
    return nil, ffi.string(errbuf[0])
  end
  local out, buf, offs = {}, bufp[0], offsp[0]
  for i = 0, tonumber(np[0]) - 1 do
    out[i + 1] = ffi.string(buf + offs[i], offs[i + 1] - offs[i])
  end
  return out
end

function Analyzer:close()
  if self._p ~= nil then
    C.mg_analyzer_free(ffi.gc(self._p, nil))
    self._p = nil
  end
end

-- One analyzer per distinct setting, kept for the life of the state.
local cache = {}

-- analyzer.shared(opts) -> the state-wide analyzer for these settings | nil, err
-- (callers must not close it)
function M.shared(opts, level)
  local stem, sw = M.settings(opts, (level or 1) + 1)
  local key = (stem or "") .. "\0" .. sw
  local a = cache[key]
  if not a then
    local err
    a, err = M.new({ stem = stem or false, stopwords = sw == 1 })
    if not a then return nil, err end
    a.close = function() error("a shared analyzer cannot be closed", 2) end
    cache[key] = a
  end
  return a
end

-- analyzer.terms(text, opts) -> array of strings | nil, err
function M.terms(text, opts)
  if type(text) ~= "string" then error("text must be a string", 2) end
  local a, err = M.shared(opts, 2)
  if not a then return nil, err end
  return a:terms(text)
end

-- analyzer.is_stopword(term) -> boolean (term as the analyzer outputs it, lower case)
function M.is_stopword(term)
  if type(term) ~= "string" then error("term must be a string", 2) end
  return C.mg_analyzer_is_stopword(term, #term) ~= 0
end

return M
