-- examples/redis/demo.lua: `redis-server --port 6379 --save '' &`, then `moongate run examples/redis/demo.lua`
-- (REDIS_URL overrides the server: redis://[[user]:password@]host:port/db)
local mg = require "moongate"
local redis = mg.redis

local r = assert(redis.connect(os.getenv("REDIS_URL") or "redis://127.0.0.1:6379/0", { timeout = 1 }))
print(r:call("SET", "demo:greeting", "hello"))   --> OK
print(r:call("GET", "demo:greeting"))            --> hello
print(r:call("GET", "demo:missing"))             --> false
print(r:call("DEL", "demo:n", "demo:greeting"))  --> 1

-- 100 tasks at once share the connection; each waits only for its own reply
local tasks = {}
for i = 1, 100 do tasks[i] = mg.spawn(function() return r:call("INCR", "demo:n") end) end
local top = 0
for i = 1, 100 do top = math.max(top, tasks[i]:wait()) end
print(top)                                       --> 100

-- a script runs atomically in Redis: take 30 of a budget of 50 only if it fits
local take = [[
local v = tonumber(redis.call('GET', KEYS[1]) or '0') + tonumber(ARGV[1])
if v > tonumber(ARGV[2]) then return -1 end
return redis.call('INCRBY', KEYS[1], ARGV[1])
]]
print(r:eval(take, { "demo:budget" }, { 30, 50 }))   --> 30
print(r:eval(take, { "demo:budget" }, { 30, 50 }))   --> -1
print(r:call("INCR", "demo:greeting:x", "extra"))    --> nil  ERR wrong number of arguments for 'incr' command
r:call("DEL", "demo:n", "demo:budget")
