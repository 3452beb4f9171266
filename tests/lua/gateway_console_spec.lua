-- moongate.gateway.console: which request paths map to a console file (plain names only, so no
-- traversal or encoding reaches the file system), content types, ETag/304, admin = false.
local console = require "moongate.gateway.console"

local root = console.root
local gw = { admin = true }
local function get(path, headers) return console.handle(gw, { path = path, method = "GET", headers = headers or {} }) end

describe("moongate.gateway.console", function()
  it("maps the console's paths to its files", function()
    assert.same({ root .. "/index.html", "html" }, { console.file_of("/console") })
    assert.same({ root .. "/index.html", "html" }, { console.file_of("/console/") })
    assert.same({ root .. "/app.js", "js" }, { console.file_of("/console/app.js") })
    assert.same({ root .. "/img/logo-2_x.svg", "svg" }, { console.file_of("/console/img/logo-2_x.svg") })
  end)

  it("refuses every other spelling", function()
    for _, p in ipairs{ "/console/../README.md", "/console/..", "/console/%2e%2e/x.js", "/console/..%2fx.js",
      "/console/.%2e/x.js", "/console/..\\x.js", "/console//x.js", "/console/./x.js", "/console/.x.js",
      "/console/x.js/", "/console/a..b/x.js", "/console/x", "/console/x.md", "/console/x.js%00",
      "/consolex", "/console.js", "/other/console/x.js", "/console/a/../x.js" } do
      assert.is_nil(console.file_of(p), p)
    end
  end)

  it("serves a file with its type, an ETag and no-cache; 304 for the same ETag", function()
    local r = get("/console/console.css")
    assert.equal(200, r.status)
    assert.equal("text/css; charset=utf-8", r.headers["content-type"])
    assert.equal("no-cache", r.headers["cache-control"])
    assert.equal("nosniff", r.headers["x-content-type-options"])
    local f = assert(io.open(root .. "/console.css", "rb"))
    assert.equal(f:read("*a"), r.body)
    f:close()
    assert.matches('^"%x+"$', r.headers.etag)
    local again = get("/console/console.css", { ["if-none-match"] = r.headers.etag })
    assert.equal(304, again.status)
    assert.equal("", again.body)
    assert.equal(200, get("/console/console.css", { ["if-none-match"] = '"0000"' }).status)
  end)

  it("404 for a missing file, a traversal or admin = false; 405 for other methods", function()
    assert.equal(404, get("/console/missing.js").status)
    assert.equal(404, get("/console/../README.md").status)
    assert.matches('"code":"not_found"', get("/console/missing.js").body)
    assert.equal(404, console.handle({ admin = false }, { path = "/console", method = "GET", headers = {} }).status)
    local r = console.handle(gw, { path = "/console", method = "DELETE", headers = {} })
    assert.equal(405, r.status)
    assert.equal("GET", r.headers.allow)
  end)
end)
