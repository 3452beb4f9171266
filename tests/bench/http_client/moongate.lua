-- moongate.http side of the client bench: N GETs over C concurrent tasks, kept-alive connections.
-- usage: moongate run moongate.lua URL N C  -> "rps p50_us p99_us errors"
local mg = require "moongate"
local http = require "moongate.http"

local url, n, c = arg[1], tonumber(arg[2]), tonumber(arg[3])
local lat, next_i, errors = {}, 1, 0

local function worker()
  while next_i <= n do
    local i = next_i
    next_i = i + 1
    local t0 = mg.now()
    local res = http.request{ url = url, timeout = 10 }
    lat[i] = mg.now() - t0
    if not res or res.status ~= 200 or #res.body == 0 then errors = errors + 1 end
  end
end

-- warm up: open the connections once
local hs = {}
for j = 1, c do hs[j] = mg.spawn(function() http.request{ url = url } end) end
for j = 1, c do hs[j]:wait() end

local t0 = mg.now()
for j = 1, c do hs[j] = mg.spawn(worker) end
for j = 1, c do hs[j]:wait() end
local took = mg.now() - t0
table.sort(lat)
print(string.format("%d %d %d %d", math.floor(n / took), math.floor(lat[math.ceil(n * 0.5)] * 1e6),
  math.floor(lat[math.ceil(n * 0.99)] * 1e6), errors))
