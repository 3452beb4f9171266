-- moongate.pii: finds personal data and secrets in text — emails, phone numbers, payment cards
-- (Luhn), IBANs (mod 97), US SSNs, IPv4/IPv6 addresses, API keys, bearer tokens, private keys —
-- and masks them, swaps them for placeholders that can be put back, or refuses the text.
--
--   pii.scan("mail bob@example.com")                  --> { { type = "email", start = 6, stop = 20, text = "bob@example.com" } }
--   pii.redact("card 4111 1111 1111 1111", { mode = "mask" })   --> "card [CARD]", 1
--   local map = {}
--   local s = pii.redact("bob@example.com", { mode = "placeholder" }, map)   --> "[EMAIL_1]"
--   pii.restore("Hi [EMAIL_1]", map)                  --> "Hi bob@example.com"
--
-- Every detector starts from a cheap string.find for its trigger, so clean text costs a few
-- scans; the checks (Luhn, mod 97, octet ranges) then throw out the look-alikes.
local M = {}

local find, sub, byte, gsub = string.find, string.sub, string.byte, string.gsub
local concat, sort = table.concat, table.sort

local LABEL = { email = "EMAIL", phone = "PHONE", card = "CARD", iban = "IBAN", ssn = "SSN", ip = "IP",
                secret = "SECRET" }

-- ---- checks -----------------------------------------------------------------------------------

local function digits_of(s) return (gsub(s, "%D", "")) end

local function luhn(d)
  local sum, alt = 0, false
  for i = #d, 1, -1 do
    local n = byte(d, i) - 48
    if alt then n = n * 2; if n > 9 then n = n - 9 end end
    sum, alt = sum + n, not alt
  end
  return sum % 10 == 0
end

-- issuer ranges of the networks in use (Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay, Maestro)
local function known_issuer(d)
  local n = #d
  local p1, p2, p4 = tonumber(sub(d, 1, 1)), tonumber(sub(d, 1, 2)), tonumber(sub(d, 1, 4))
  if p1 == 4 then return n == 13 or n == 16 or n == 19 end
  if (p2 >= 51 and p2 <= 55) or (p4 >= 2221 and p4 <= 2720) then return n == 16 end
  if p2 == 34 or p2 == 37 then return n == 15 end
  if p4 == 6011 or p2 == 65 or (p4 >= 6440 and p4 <= 6499) then return n >= 16 end
  if p4 >= 3528 and p4 <= 3589 then return n >= 16 end
  if p2 == 36 or p2 == 38 or p2 == 39 or (p4 >= 3000 and p4 <= 3059) then return n >= 14 end
  if p2 == 62 then return n >= 16 end
  if p2 == 50 or (p2 >= 56 and p2 <= 69) then return n >= 12 end
  return false
end

local IBAN_LENGTH = { AD = 24, AE = 23, AT = 20, BE = 16, BG = 22, BH = 22, BR = 29, CH = 21, CY = 28, CZ = 24,
  DE = 22, DK = 18, EE = 20, ES = 24, FI = 18, FO = 18, FR = 27, GB = 22, GI = 23, GL = 18, GR = 27, HR = 21,
  HU = 28, IE = 22, IL = 23, IS = 26, IT = 27, JO = 30, KW = 30, KZ = 20, LB = 28, LI = 21, LT = 20, LU = 20,
  LV = 21, MC = 27, MT = 31, NL = 18, NO = 15, PK = 24, PL = 28, PS = 29, PT = 25, QA = 29, RO = 24, RS = 22,
  SA = 24, SE = 24, SI = 19, SK = 24, SM = 27, TR = 26, UA = 29 }

local function iban_ok(s)
  local n = IBAN_LENGTH[sub(s, 1, 2)]
  if not n or #s ~= n then return false end
  local r = sub(s, 5) .. sub(s, 1, 4)
  local rem = 0
  for i = 1, #r do
    local c = byte(r, i)
    local v = c <= 57 and c - 48 or c - 55
    rem = (v >= 10 and (rem * 100 + v) or (rem * 10 + v)) % 97
  end
  return rem == 1
end

local function ipv4_ok(s)
  local a, b, c, d = s:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if not a then return false end
  for _, o in ipairs({ a, b, c, d }) do
    if #o > 3 or tonumber(o) > 255 or (#o > 1 and sub(o, 1, 1) == "0") then return false end
  end
  return true
end

local function ipv6_ok(s)
  if #s < 3 or not find(s, ":", 1, true) then return false end
  local head, tail = s:match("^(.-)::(.*)$")
  local function groups(part)
    if part == "" then return 0 end
    local n = 0
    for g in (part .. ":"):gmatch("([^:]*):") do
      if not g:match("^%x%x?%x?%x?$") then return nil end
      n = n + 1
    end
    return n
  end
  if head then
    if find(tail, "::", 1, true) then return false end
    local a, b = groups(head), groups(tail)
    return a ~= nil and b ~= nil and a + b <= 7
  end
  return groups(s) == 8
end

-- ---- detectors: fn(text, out, digits, nd) appends { type, start, stop } -------------------------

local function add(out, t, i, j, text) out[#out + 1] = { type = t, start = i, stop = j, text = sub(text, i, j) } end

-- a character that may not touch a match on its left or right (so "a1234" is not "1234")
local function boundary(text, i, j, class)
  local before = i > 1 and sub(text, i - 1, i - 1) or ""
  local after = sub(text, j + 1, j + 1)
  -- a sentence's full stop may end it ("call +44 20 7946 0958.")
  if after == "." and not sub(text, j + 2, j + 2):match("%w") then after = "" end
  return not before:match(class) and not after:match(class)
end

-- check(text, out, s, e) for each match of pattern in text, left to right; check returns where
-- the match really ended (a detector that widened or trimmed it). The checks are plain functions,
-- not closures made per call: creating a closure stops the JIT from compiling the loop.
local function each(text, out, pattern, check)
  local i = 1
  while true do
    local s, e = find(text, pattern, i)
    if not s then return end
    i = check(text, out, s, e) + 1
  end
end

-- The digit-led detectors (card, IBAN, SSN, IPv4, phone) try their pattern anchored at the text's
-- digits only, listed once per scan by a loop the JIT compiles: an unanchored find would walk every
-- byte of a long message through Lua's pattern matcher once per detector (13-55 us per 2 KB).
-- (one list reused by every scan: n is the count, entries past it are stale; a scan started from
-- inside a detector of one's own gets a list of its own)
local digit_list, scanning = {}, false
local function digit_positions(text)
  local out, n = scanning and {} or digit_list, 0
  for i = 1, #text do
    local c = byte(text, i)
    if c >= 48 and c <= 57 then n = n + 1; out[n] = i end
  end
  return out, n
end

-- each(), but trying the anchored pattern only at each digit's position + shift: the same matches
-- an unanchored find from each match's end would give
local function each_at(text, out, pattern, digits, n, shift, check)
  local i = 1
  for k = 1, n do
    local p = digits[k] + shift
    if p >= i then
      local s, e = find(text, pattern, p)
      if s then i = check(text, out, s, e) + 1 end
    end
  end
end

local detectors, order = {}, {}

local function register(t, fn)
  if not detectors[t] then order[#order + 1] = t end
  detectors[t] = fn
end

-- a digit-led detector: its anchored pattern tried at each digit + shift, each match checked
local function register_at(t, pattern, shift, check)
  register(t, function(text, out, digits, nd) each_at(text, out, pattern, digits, nd, shift, check) end)
end

-- each secret format by the literal it starts with (a plain find: memchr speed), then its shape
local SECRET_PREFIXES = { { "sk-", "sk%-[%w_%-]+" }, { "AKIA", "AKIA[%u%d]+" }, { "gh", "gh[pousr]_[%w]+" },
  { "xox", "xox[abposr]%-[%w%-]+" }, { "AIza", "AIza[%w_%-]+" } }

register("secret", function(text, out)
  local i = 1
  while find(text, "PRIVATE KEY", 1, true) do   -- PEM private keys: the whole block
    local s, e = find(text, "%-%-%-%-%-BEGIN [%u ]*PRIVATE KEY%-%-%-%-%-", i)
    if not s then break end
    local _, e2 = find(text, "%-%-%-%-%-END [%u ]*PRIVATE KEY%-%-%-%-%-", e + 1)
    add(out, "secret", s, e2 or #text, text)
    i = (e2 or #text) + 1
  end
  for _, sp in ipairs(SECRET_PREFIXES) do
    i = 1
    while true do
      local at = find(text, sp[1], i, true)
      if not at then break end
      local s, e = find(text, "^" .. sp[2], at)
      if s and e - s + 1 >= 20 and boundary(text, s, e, "[%w_]") then add(out, "secret", s, e, text) end
      i = (e or at) + 1
    end
  end
  i = 1
  while find(text, "earer", i, true) do
    local s, e = find(text, "[Bb]earer%s+[%w%-%._~%+/]+=*", i)
    if not s then break end
    local tok = text:sub(s, e):match("%s+(.*)$")
    if #tok >= 16 and tok:find("%d") then add(out, "secret", e - #tok + 1, e, text) end
    i = e + 1
  end
end)

register("email", function(text, out)
  local i = 1
  while true do
    local at = find(text, "@", i, true)
    if not at then break end
    local s = at
    while s > 1 and sub(text, s - 1, s - 1):match("[%w%.%%%+%-_]") do s = s - 1 end
    local _, e = find(text, "^[%w%-]+%.[%w%.%-]*[%w]", at + 1)
    while s < at and sub(text, s, s) == "." do s = s + 1 end
    if s < at and e and text:sub(at + 1, e):match("%.(%a%a+)$") then add(out, "email", s, e, text) end
    i = (e or at) + 1
  end
end)

local function iban_at(text, out, s, e)
  local candidate = text:sub(s, e):gsub("%s+$", "")
  -- grouped in fours as printed, or written solid
  local compact = candidate:gsub(" ", "")
  local n = IBAN_LENGTH[sub(compact, 1, 2)]
  if n and #compact >= n and not (s > 1 and sub(text, s - 1, s - 1):match("[%w]")) then
    -- take exactly n characters (spaces between them allowed)
    local taken, k = 0, s
    while taken < n and k <= e do
      if sub(text, k, k) ~= " " then taken = taken + 1 end
      k = k + 1
    end
    local stop = k - 1
    if iban_ok((gsub(sub(text, s, stop), " ", ""))) and not sub(text, stop + 1, stop + 1):match("[%w]") then
      add(out, "iban", s, stop, text)
      return stop
    end
  end
  return e
end
register_at("iban", "^%u%u%d%d[%u%d ]+", -2, iban_at)

local function card_at(text, out, s, e)
  local run = sub(text, s, e)
  local d = digits_of(run)
  -- groups of digits split by single spaces or dashes, as cards are printed
  if #d >= 12 and #d <= 19 and not run:find("[ %-][ %-]") and boundary(text, s, e, "[%w%.]")
    and luhn(d) and known_issuer(d) then
    add(out, "card", s, e, text)
  end
  return e
end
register_at("card", "^%d[%d %-]+%d", 0, card_at)

local function ssn_at(text, out, s, e)
  local a, g, n = tonumber(sub(text, s, s + 2)), tonumber(sub(text, s + 4, s + 5)), tonumber(sub(text, s + 7, e))
  if boundary(text, s, e, "[%w%-]") and a ~= 0 and a ~= 666 and a < 900 and g ~= 0 and n ~= 0 then
    add(out, "ssn", s, e, text)
  end
  return e
end
register_at("ssn", "^%d%d%d%-%d%d%-%d%d%d%d", 0, ssn_at)

local function ipv4_at(text, out, s, e)
  while s > 1 and sub(text, s - 1, s - 1):match("%d") do s = s - 1 end   -- the whole octets
  while sub(text, e + 1, e + 1):match("%d") do e = e + 1 end
  -- not inside a longer dotted run (a version 1.2.3.4.5); a sentence's full stop may follow
  local after = sub(text, e + 1, e + 2)
  local left_ok = not (s > 1 and sub(text, s - 1, s - 1):match("[%w%.]"))
  local right_ok = not after:match("^[%w]") and not after:match("^%.%d")
  if left_ok and right_ok and ipv4_ok(sub(text, s, e)) then add(out, "ip", s, e, text) end
  return e
end
-- IPv6: from each colon, the run of hex digits and colons around it
local function ipv6_at(text, out, s, e)
  while s > 1 and sub(text, s - 1, s - 1):match("[%x:]") do s = s - 1 end
  while e < #text and sub(text, e + 1, e + 1):match("[%x:]") do e = e + 1 end
  local cand = sub(text, s, e)
  if boundary(text, s, e, "[%w]") and cand:find("%x") and ipv6_ok(cand) then add(out, "ip", s, e, text) end
  return e
end
register("ip", function(text, out, digits, nd)
  each_at(text, out, "^%d%.%d+%.%d+%.%d", digits, nd, 0, ipv4_at)
  each(text, out, ":", ipv6_at)
end)

-- a phone number may start one character before its first digit ("+44 …", "(555) …")
local phone_list = {}
local function phone_starts(text, digits, nd)
  if not find(text, "+", 1, true) and not find(text, "(", 1, true) then return digits, nd end
  local out, n = digits == digit_list and phone_list or {}, 0
  for k = 1, nd do
    local d = digits[k]
    local c = d > 1 and byte(text, d - 1)
    if c == 43 or c == 40 then n = n + 1; out[n] = d - 1 end
    n = n + 1; out[n] = d
  end
  return out, n
end

local function phone_at(text, out, s, e)
  local run = sub(text, s, e)
  local d = digits_of(run)
  local intl = sub(run, 1, 1) == "+" or run:match("^00[1-9]")
  local nanp = run:match("^%(?%d%d%d%)?[ %-%.]?%d%d%d[ %-%.]%d%d%d%d$")
  local grouped = select(2, gsub(run, "[ %-%.%(%)]+", "")) >= 2
  local dated = run:match("^%d%d%d%d[%-%.]%d%d[%-%.]%d%d") or run:match("^%d%d?[%-%./]%d%d?[%-%./]%d%d%d%d")
  if boundary(text, s, e, "[%w%.%-]") and not dated and #d >= 8 and #d <= 15 and not run:find("%.%d+%.%d+%.")
    and ((intl and grouped) or nanp) then
    add(out, "phone", s, e, text)
  end
  return e
end
register("phone", function(text, out, digits, nd)
  local starts, n = phone_starts(text, digits, nd)
  each_at(text, out, "^[%+%(]?%d[%d %-%.%(%)]+%d", starts, n, 0, phone_at)
end)

-- ---- the API ------------------------------------------------------------------------------------

--- pii.register(type, fn): a detector of your own; fn(text) -> list of { start, stop } (or
--- { start =, stop = }). Its matches are masked as "[TYPE]" (upper case).
function M.register(t, fn)
  if type(t) ~= "string" or type(fn) ~= "function" then error("pii.register(type, fn)", 2) end
  LABEL[t] = LABEL[t] or t:upper()
  register(t, function(text, out)
    for _, m in ipairs(fn(text) or {}) do
      local i, j = m.start or m[1], m.stop or m[2]
      add(out, t, i, j, text)
    end
  end)
end

--- pii.scan(text[, { detectors = { "email", ... } }]) -> findings sorted by position, non-overlapping
--- (where two overlap the one that starts first, then the longer, wins).
function M.scan(text, opts)
  local out = {}
  local list = opts and opts.detectors or order
  for _, t in ipairs(list) do
    if not detectors[t] then error("pii: unknown detector '" .. tostring(t) .. "'", 2) end
  end
  local digits, nd = digit_positions(text)
  local outer = not scanning
  scanning = true   -- (a detector of one's own that raises leaves it set: later scans allocate)
  for _, t in ipairs(list) do detectors[t](text, out, digits, nd) end
  if outer then
    scanning = false
    if nd > 65536 then digit_list, phone_list = {}, {} end   -- not kept at the size of a huge text
  end
  if #out < 2 then return out end
  sort(out, function(a, b)
    if a.start ~= b.start then return a.start < b.start end
    return a.stop > b.stop
  end)
  local kept, last = {}, 0
  for _, f in ipairs(out) do
    if f.start > last then kept[#kept + 1] = f; last = f.stop end
  end
  return kept
end

-- The placeholder for a value in this map (the same value gets the same one).
local function placeholder(map, t, value)
  local by_value = map[0]   -- value -> placeholder, kept at a numeric key json never sees
  if not by_value then by_value = {}; map[0] = by_value end
  local key = t .. "\0" .. value
  local ph = by_value[key]
  if ph then return ph end
  local counts = map[-1] or {}
  map[-1] = counts
  counts[t] = (counts[t] or 0) + 1
  ph = "[" .. LABEL[t] .. "_" .. counts[t] .. "]"
  by_value[key] = ph
  map[ph] = value
  return ph
end

--- pii.redact(text, policy[, map]) -> redacted, count | nil, "pii refused", findings
--- policy = { mode = "mask" | "placeholder" | "refuse", detectors = { ... }? }; placeholder needs map.
function M.redact(text, policy, map)
  local found = M.scan(text, policy)
  if #found == 0 then return text, 0 end
  local mode = policy.mode
  if mode == "refuse" then return nil, "pii refused", found end
  if mode == "placeholder" and not map then error("pii.redact: placeholder mode needs a map", 2) end
  local parts, pos = {}, 1
  for _, f in ipairs(found) do
    parts[#parts + 1] = sub(text, pos, f.start - 1)
    parts[#parts + 1] = mode == "placeholder" and placeholder(map, f.type, f.text) or ("[" .. LABEL[f.type] .. "]")
    pos = f.stop + 1
  end
  parts[#parts + 1] = sub(text, pos)
  return concat(parts), #found
end

--- pii.restore(text, map) -> text with the map's placeholders replaced by the original values
function M.restore(text, map)
  return (gsub(text, "%[[%u%d]+_%d+%]", function(ph) return map[ph] end))
end

--- pii.redact_messages(messages, policy, map) -> count | nil, "pii refused", findings:
--- an OpenAI (or Anthropic) messages array, redacted in place (string contents, text parts).
function M.redact_messages(messages, policy, map)
  local total = 0
  local function one(s)
    local out, n, f = M.redact(s, policy, map)
    if not out then return nil, f end
    total = total + n
    return out
  end
  for _, m in ipairs(messages) do
    if type(m) == "table" then
      if type(m.content) == "string" then
        local out, f = one(m.content)
        if not out then return nil, "pii refused", f end
        m.content = out
      elseif type(m.content) == "table" then
        for _, p in ipairs(m.content) do
          if type(p) == "table" and p.type == "text" and type(p.text) == "string" then
            local out, f = one(p.text)
            if not out then return nil, "pii refused", f end
            p.text = out
          end
        end
      end
    end
  end
  return total
end

return M
