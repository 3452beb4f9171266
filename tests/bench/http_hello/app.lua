-- The benchmark's moongate app: every request gets the same 200-byte body (as nginx's file).
local body = string.rep("moongate-bench-body-", 10)
assert(#body == 200)
local headers = { ["content-type"] = "text/plain" }
local res = { status = 200, headers = headers, body = body }
return {
  handle = function(req)
    return res
  end,
}
