-- moongate.gateway.console: GET /console — the web console's static files (HTML, CSS, JS) from
-- the console/ folder of moongate's home. The files hold no data: the page calls /admin/* and
-- /v1/* with the key its user types in, so they are served without a key (off with admin = false).
local errors = require "moongate.gateway.errors"
local reload = require "moongate.reload"

local M = {}

local TYPES = {
  html = "text/html; charset=utf-8", css = "text/css; charset=utf-8",
  js = "text/javascript; charset=utf-8", json = "application/json", svg = "image/svg+xml",
  png = "image/png", ico = "image/x-icon",
}

-- Same-origin only: the console loads nothing from elsewhere and may not be framed.
local HEADERS = {
  ["x-content-type-options"] = "nosniff",
  ["content-security-policy"] = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'",
  ["referrer-policy"] = "no-referrer",
  -- the browser keeps a copy but asks every time; an unchanged file costs a 304
  ["cache-control"] = "no-cache",
}

M.root = require("moongate.base").home .. "/console"

--- file_of(path) -> the file under the console folder for a request path, or nil when the path
--- is not one the console could have: only plain names ([A-Za-z0-9_-], a dot before an
--- extension) in plain folders, so "..", encodings (%2e), backslashes and empty segments never
--- reach the file system.
function M.file_of(path)
  local rest = path:match("^/console(.*)$")
  if rest == nil then return nil end
  if rest == "" or rest == "/" then return M.root .. "/index.html", "html" end
  if rest:sub(1, 1) ~= "/" or rest:find("//", 1, true) or rest:sub(-1) == "/" then return nil end
  local segs = {}
  for seg in rest:gmatch("[^/]+") do segs[#segs + 1] = seg end
  for i, seg in ipairs(segs) do
    local last = i == #segs
    if last then
      if not seg:match("^[%w_%-]+%.[%w]+$") then return nil end
    elseif not seg:match("^[%w_%-]+$") then
      return nil
    end
  end
  local ext = segs[#segs]:match("%.(%w+)$")
  if not TYPES[ext] then return nil end
  return M.root .. "/" .. table.concat(segs, "/"), ext
end

local function read(file)
  local f = io.open(file, "rb")
  if not f then return nil end
  local body = f:read("*a")     -- nil for a folder named like a file
  f:close()
  return body
end

--- handle(gw, req) -> response
function M.handle(gw, req)
  local path, method = req.path, req.method
  local function missing() return errors.response(404, "no route for " .. method .. " " .. path, "not_found") end
  if not gw.admin then return missing() end
  if method ~= "GET" and method ~= "HEAD" then
    return errors.response(405, "use GET for " .. path, "method_not_allowed", { allow = "GET" })
  end
  local file, ext = M.file_of(path)
  local body = file and read(file)
  if not body then return missing() end
  local etag = '"' .. reload.hash(body) .. '"'
  local h = { ["content-type"] = TYPES[ext], etag = etag }
  for k, v in pairs(HEADERS) do h[k] = v end
  local inm = req.headers["if-none-match"]
  if inm and (inm == etag or inm == "W/" .. etag) then return { status = 304, headers = h, body = "" } end
  return { status = 200, headers = h, body = body }
end

return M
