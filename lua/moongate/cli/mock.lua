-- `moongate mock`: serve moongate.mock (an OpenAI-compatible fake LLM with fault injection) on
-- moongate's own HTTP server, for offline development and the gateway's tests.
local usage = [[
usage: moongate mock [--listen HOST:PORT] [--fault SPEC] [--latency MS] [--name NAME]
                     [--models A,B,...] [--api-key KEY]

Serves an OpenAI-compatible fake LLM (default 127.0.0.1:9000):
  POST /v1/chat/completions   "mock answer: <last user message>", streamed or not;
                              tools -> a deterministic tool call; usage counted
  POST /v1/embeddings         deterministic unit vectors (float or base64)
  GET  /v1/models             the --models list (default mock-small,mock-large,mock-embed)
  POST /v1/messages           the same in Anthropic's shape
  GET  /mock/stats            request counters; POST /mock/reset clears them
  POST /mock/fault            body: a fault SPEC that replaces --fault ("" clears it)
  GET  /mock/last             the last API request as received (method, path, headers, body)

Faults (SPEC is comma-separated): status=503, status=429,retry_after=2, latency=MS,
reset, stall, stall_first_byte=MS, cut_after=N, malformed, chunk_delay=MS, target=NAME.
--fault applies to every request; the header x-mock-fault: SPEC or the body field
"mock": {...} chooses one per request ("none" for no fault). A fault with target=NAME
applies only to the mock started with --name NAME. See docs/mock.md.
]]

local OPTS = { ["--listen"] = "listen", ["--fault"] = "fault", ["--latency"] = "latency",
  ["--name"] = "name", ["--models"] = "models", ["--api-key"] = "api_key" }

local function parse(args)
  local o = { listen = "127.0.0.1:9000" }
  local i = 1
  while i <= #args do
    local a = args[i]
    local k, v = a:match("^(%-%-[%w%-]+)=(.*)$")
    if not k then k = a end
    local key = OPTS[k]
    if not key then return nil, "unknown argument '" .. a .. "'" end
    if not v then
      v = args[i + 1]
      if v == nil then return nil, k .. " needs a value" end
      i = i + 1
    end
    o[key] = v
    i = i + 1
  end
  if not o.listen:match("^[^:]*:%d+$") then return nil, "--listen must be HOST:PORT" end
  if o.latency and not (tonumber(o.latency) and tonumber(o.latency) >= 0) then
    return nil, "--latency must be a number of milliseconds >= 0"
  end
  if o.models then
    local list = {}
    for m in o.models:gmatch("[^,%s]+") do list[#list + 1] = m end
    if #list == 0 then return nil, "--models needs at least one name" end
    o.models = list
  end
  if o.fault then
    local ok, err = require("moongate.mock").parse_fault(o.fault)
    if not ok then return nil, "bad --fault: " .. err end
  end
  return o
end

return function(args)
  if require("moongate.cli").wants_help(args) then
    io.write(usage)
    return 0
  end
  local o, err = parse(args)
  if not o then
    io.stderr:write("moongate mock: ", err, "\n")
    return 2
  end
  return require("moongate.mock").serve(o)
end
