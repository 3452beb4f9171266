-- Writes tests/data/pii/labelled.jsonl: realistic support tickets, emails, logs and invoices with
-- personal data and secrets at known places, and look-alikes that must not be found (order
-- numbers failing Luhn, IBANs with a bad checksum, invalid SSNs, dates, versions, prices, ISBNs).
-- Deterministic: the same file every run.   moongate run tests/data/pii/generate.lua
local json = require "moongate.json"

local seed = 20261205
local function rand(n)   -- a small LCG: reproducible everywhere, unlike math.random
  seed = (seed * 1103515245 + 12345) % 2147483648
  return seed % n + 1
end
local function pick(t) return t[rand(#t)] end
local function digits(n) local s = {} for i = 1, n do s[i] = tostring(rand(10) - 1) end return table.concat(s) end

local function luhn_digit(body)
  local sum, alt = 0, true
  for i = #body, 1, -1 do
    local n = body:byte(i) - 48
    if alt then n = n * 2; if n > 9 then n = n - 9 end end
    sum, alt = sum + n, not alt
  end
  return tostring((10 - sum % 10) % 10)
end
local function group(s, sep, sizes)
  local out, i = {}, 1
  for _, n in ipairs(sizes) do out[#out + 1] = s:sub(i, i + n - 1); i = i + n end
  return table.concat(out, sep)
end
local function card()
  local kind = rand(3)
  if kind == 1 then local b = "4" .. digits(14); local c = b .. luhn_digit(b); return group(c, pick{ " ", "-", "" }, { 4, 4, 4, 4 }) end
  if kind == 2 then local b = "5" .. tostring(rand(5)) .. digits(13); local c = b .. luhn_digit(b); return group(c, pick{ " ", "" }, { 4, 4, 4, 4 }) end
  local b = pick{ "34", "37" } .. digits(12); local c = b .. luhn_digit(b); return group(c, pick{ " ", "" }, { 4, 6, 5 })
end
local function bad_card()
  local b = "4" .. digits(14); local d = (tonumber(luhn_digit(b)) + 1 + rand(8)) % 10
  return group(b .. tostring(d), " ", { 4, 4, 4, 4 })
end
local function mod97(s)
  local rem = 0
  for i = 1, #s do
    local c = s:byte(i); local v = c <= 57 and c - 48 or c - 55
    rem = (v >= 10 and (rem * 100 + v) or (rem * 10 + v)) % 97
  end
  return rem
end
local function iban(bad)
  local cc, bban = table.unpack or unpack, nil
  local country = pick{ "DE", "GB", "NL", "FR" }
  if country == "DE" then bban = digits(18)
  elseif country == "GB" then bban = pick{ "WEST", "NWBK", "BARC" } .. digits(14)
  elseif country == "NL" then bban = pick{ "ABNA", "INGB", "RABO" } .. digits(10)
  else bban = digits(23) end
  local check = 98 - mod97(bban .. country .. "00")
  if bad then check = (check + 1 + rand(5)) % 97 + 2 end
  local s = country .. string.format("%02d", check) .. bban
  if rand(2) == 1 then return s end
  local out = {}
  for i = 1, #s, 4 do out[#out + 1] = s:sub(i, i + 3) end
  return table.concat(out, " ")
end
local function ssn() return string.format("%03d-%02d-%04d", rand(665), rand(98), rand(9998)) end
local function bad_ssn() return pick{ "000", "666", "9" .. digits(2) } .. "-" .. string.format("%02d", rand(98)) .. "-" .. digits(4) end
local FIRST = { "jane", "omar", "li.wei", "maria", "s.okafor", "tom", "anna-lena", "raj", "kim", "lucas" }
local DOMAINS = { "example.com", "acme.co.uk", "mail.example.org", "globex.io", "contoso.de" }
local function email() return pick(FIRST) .. pick{ "", "+billing", "", ".work" } .. (rand(3) == 1 and digits(2) or "") .. "@" .. pick(DOMAINS) end
local function phone()
  return pick{
    "+44 20 " .. digits(4) .. " " .. digits(4), "(" .. tostring(200 + rand(700)) .. ") 555-" .. digits(4),
    "+1-" .. tostring(200 + rand(700)) .. "-555-" .. digits(4), "0049 30 " .. digits(7),
    "+33 1 " .. digits(2) .. " " .. digits(2) .. " " .. digits(2) .. " " .. digits(2), "+91 98" .. digits(3) .. " " .. digits(5) }
end
local function ipv4() return string.format("%d.%d.%d.%d", rand(223), rand(255) - 1, rand(255) - 1, rand(254)) end
local function ipv6() return pick{ "2001:db8::" .. string.format("%x:%x", rand(65535), rand(65535)), "fe80::" .. string.format("%x", rand(65535)) .. ":1",
  string.format("2001:db8:%x:%x:%x:%x:%x:%x", rand(65535), rand(65535), rand(65535), rand(65535), rand(65535), rand(65535)) } end
local ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
local function alnum(n, set) set = set or ALNUM local s = {} for i = 1, n do local k = rand(#set) s[i] = set:sub(k, k) end return table.concat(s) end
local function secret()
  return pick{ "sk-" .. alnum(40), "sk-proj-" .. alnum(32), "AKIA" .. alnum(16, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"),
    "ghp_" .. alnum(36), "xoxb-" .. digits(11) .. "-" .. alnum(24) }
end

-- look-alikes: never personal data
local function date() return pick{ string.format("2026-%02d-%02d", rand(12), rand(28)), string.format("%02d/%02d/2025", rand(12), rand(28)) } end
local function version() return pick{ string.format("%d.%d.%d", rand(9), rand(20), rand(30)), string.format("v%d.%d.%d.%d", rand(3), rand(9), rand(9), rand(99)) } end
local function order() return "ORD-" .. digits(8) end
local function price() return pick{ "$" .. tostring(rand(900)) .. "." .. digits(2), "EUR 1 " .. digits(3) .. ",00" } end
local function isbn() return "978-" .. digits(1) .. "-" .. digits(3) .. "-" .. digits(5) .. "-" .. digits(1) end
local function tracking() return "1Z" .. alnum(6, "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") .. digits(10) end

-- templates: {text with {kind} slots}
local T = {
  "Hi team, my card {card} was charged twice for order {order} on {date}. Please call me on {phone}.",
  "Refund request: customer {email} paid {price} with card {card}; the invoice is attached.",
  "Please wire the balance to {iban} before {date}. Reference {order}.",
  "[{date}] auth failure for user {email} from {ipv4}: token rejected",
  "Employee record updated: SSN {ssn}, start date {date}, phone {phone}.",
  "Deployed {version} to the cluster; health checks from {ipv6} are green.",
  "Our staging key {secret} was pasted in the ticket by mistake, please rotate it.",
  "Order {order} shipped with tracking {tracking}; the total was {price}.",
  "The book (ISBN {isbn}) costs {price}; card ending in {badcard} was declined.",
  "Payment to {badiban} failed: the bank says the account number is invalid.",
  "Test data only: {badssn} is not a valid SSN and neither is 123-00-4567.",
  "Contact {email} or {phone} about the outage on {date} (build {version}).",
  "Server {ipv4} returned 502 at {date}; upstream {ipv6} was unreachable.",
  "curl -H 'Authorization: Bearer {bearer}' https://api.example.com/v1/orders",
  "Nothing sensitive here: version {version}, order {order}, 999.1.1.1 is not an address.",
  "Invoice {order}: {price} due {date}, pay by IBAN {iban} or card {card}.",
}
local GEN = { card = card, badcard = bad_card, iban = function() return iban(false) end, badiban = function() return iban(true) end,
  ssn = ssn, badssn = bad_ssn, email = email, phone = phone, ipv4 = ipv4, ipv6 = ipv6, secret = secret, date = date,
  version = version, order = order, price = price, isbn = isbn, tracking = tracking,
  bearer = function() return "eyJ" .. alnum(20) .. "." .. alnum(16) .. digits(4) end }
local TYPE = { card = "card", iban = "iban", ssn = "ssn", email = "email", phone = "phone", ipv4 = "ip", ipv6 = "ip",
  secret = "secret", bearer = "secret" }

local path = (arg and arg[1]) or (require("moongate.base").home .. "/tests/data/pii/labelled.jsonl")
local f = assert(io.open(path, "wb"))
local n = 0
for round = 1, 20 do
  for _, t in ipairs(T) do
    local spans = {}
    local text = t:gsub("{(%w+)}", function(k)
      local v = GEN[k]()
      if TYPE[k] then spans[#spans + 1] = { type = TYPE[k], text = v } end
      return v
    end)
    f:write(json.encode({ text = text, spans = json.array(spans) }), "\n")
    n = n + 1
  end
end
f:close()
print(n .. " records -> " .. path)
