-- moongate.retry: backoff with full jitter, Retry-After parsing, and the classification of an
-- upstream failure (retry elsewhere, or hand it back to the client as it came).
local M = {}

local random, min, floor = math.random, math.min, math.floor

-- backoff(n, base, cap[, rand]) -> seconds to wait before retry number n (n >= 1):
-- uniform in [0, min(cap, base * 2^(n-1))] ("full jitter").
function M.backoff(n, base, cap, rand)
  base, cap = base or 0.05, cap or 1
  local ceiling = min(cap, base * 2 ^ (n - 1))
  return (rand or random)() * ceiling
end

local MONTHS = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8, Sep = 9,
                 Oct = 10, Nov = 11, Dec = 12 }

-- Seconds since the epoch of an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), or nil.
local function http_date(s)
  local d, mon, y, h, mi, sec = s:match("^%a+, (%d%d) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT$")
  if not d or not MONTHS[mon] then return nil end
  y, mon, d = tonumber(y), MONTHS[mon], tonumber(d)
  -- days from civil (Howard Hinnant's algorithm), avoids os.time's local time zone
  local yy = mon <= 2 and y - 1 or y
  local era = floor(yy / 400)
  local yoe = yy - era * 400
  local mp = (mon + 9) % 12
  local doy = floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  local days = era * 146097 + doe - 719468
  return days * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(sec)
end

-- retry_after(value[, now]) -> seconds (>= 0) or nil: delta-seconds or an HTTP date.
function M.retry_after(value, now)
  if type(value) ~= "string" then return nil end
  local n = tonumber(value:match("^%s*(%d+%.?%d*)%s*$"))
  if n then return n end
  local t = http_date(value:match("^%s*(.-)%s*$"))
  if not t then return nil end
  local left = t - (now or os.time())
  return left > 0 and left or 0
end

-- classify(status) -> "ok" | "retry" | "client": what an upstream status means for the request.
-- "client": the request itself was refused (another provider would refuse it too): pass it on.
-- 401/403 say our key is wrong for that provider: another provider may well work.
local CLIENT = { [400] = true, [404] = true, [413] = true, [415] = true, [422] = true }
function M.classify(status)
  if status >= 200 and status < 300 then return "ok" end
  if CLIENT[status] then return "client" end
  return "retry"
end

return M
