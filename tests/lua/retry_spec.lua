-- Retry helpers: full-jitter backoff, Retry-After in both forms, status classification.
local retry = require "moongate.retry"

describe("retry", function()
  it("backoff is uniform below min(cap, base * 2^(n-1))", function()
    local one = function() return 1 end
    assert.are.equal(0.05, retry.backoff(1, 0.05, 1, one))
    assert.are.equal(0.1, retry.backoff(2, 0.05, 1, one))
    assert.are.equal(0.4, retry.backoff(4, 0.05, 1, one))
    assert.are.equal(1, retry.backoff(10, 0.05, 1, one))
    assert.are.equal(0, retry.backoff(3, 0.05, 1, function() return 0 end))
    for n = 1, 8 do
      local v = retry.backoff(n, 0.05, 1)
      assert.is_true(v >= 0 and v <= math.min(1, 0.05 * 2 ^ (n - 1)))
    end
  end)

  it("reads Retry-After as seconds or as an HTTP date", function()
    assert.are.equal(2, retry.retry_after("2"))
    assert.are.equal(0, retry.retry_after("0"))
    assert.are.equal(1.5, retry.retry_after(" 1.5 "))
    -- Sun, 06 Nov 1994 08:49:37 GMT is 784111777
    assert.are.equal(30, retry.retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784111747))
    assert.are.equal(0, retry.retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784111800))
    assert.is_nil(retry.retry_after("soon"))
    assert.is_nil(retry.retry_after(nil))
    assert.is_nil(retry.retry_after("-3"))
  end)

  it("classifies statuses", function()
    assert.are.equal("ok", retry.classify(200))
    for _, s in ipairs{ 400, 404, 413, 422 } do assert.are.equal("client", retry.classify(s)) end
    for _, s in ipairs{ 401, 403, 408, 429, 500, 502, 503, 504 } do
      assert.are.equal("retry", retry.classify(s))
    end
  end)
end)
