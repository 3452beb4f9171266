-- moongate.crypto: SHA-256, HMAC-SHA256, random bytes, constant-time comparison and the hex and
-- base64url encodings, over core/crypto.c (OpenSSL's libcrypto and getrandom(2)).
local ffi = require "ffi"

ffi.cdef [[
int mg_crypto_sha256(const void *data, size_t len, uint8_t *out, const char **err);
int mg_crypto_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                          uint8_t *out, const char **err);
int mg_crypto_random(void *out, size_t n, const char **err);
int mg_crypto_equal(const void *a, const void *b, size_t n);
size_t mg_crypto_hex(const void *in, size_t n, char *out);
size_t mg_crypto_base64url_len(size_t n);
size_t mg_crypto_base64url(const void *in, size_t n, char *out);
]]

local C = ffi.C
local type, error = type, error
local ffi_string = ffi.string

local M = {}

local errbuf = ffi.new("const char *[1]")
local digest = ffi.new("uint8_t[32]")
local scratch, scratch_len = ffi.new("char[256]"), 256

-- A buffer of at least n bytes, reused between calls (results are copied out with ffi.string).
local function buffer(n)
  if n > scratch_len then
    scratch_len = n
    scratch = ffi.new("char[?]", n)
  end
  return scratch
end

local function check_string(s, what, level)
  if type(s) ~= "string" then error(what .. " must be a string", level + 1) end
end

--- crypto.sha256(s) -> the 32-byte digest
function M.sha256(s)
  check_string(s, "data", 2)
  if C.mg_crypto_sha256(s, #s, digest, errbuf) ~= 0 then error(ffi_string(errbuf[0]), 2) end
  return ffi_string(digest, 32)
end

--- crypto.hex(s) -> lower-case hex of s
function M.hex(s)
  check_string(s, "data", 2)
  local out = buffer(2 * #s)
  return ffi_string(out, C.mg_crypto_hex(s, #s, out))
end

--- crypto.sha256_hex(s) -> the digest as 64 hex digits
function M.sha256_hex(s)
  check_string(s, "data", 2)
  if C.mg_crypto_sha256(s, #s, digest, errbuf) ~= 0 then error(ffi_string(errbuf[0]), 2) end
  local out = buffer(64)
  return ffi_string(out, C.mg_crypto_hex(digest, 32, out))
end

--- crypto.hmac_sha256(key, s) -> the 32-byte MAC
function M.hmac_sha256(key, s)
  check_string(key, "key", 2)
  check_string(s, "data", 2)
  if C.mg_crypto_hmac_sha256(key, #key, s, #s, digest, errbuf) ~= 0 then error(ffi_string(errbuf[0]), 2) end
  return ffi_string(digest, 32)
end

--- crypto.random(n) -> n bytes from the kernel's CSPRNG
function M.random(n)
  if type(n) ~= "number" or n < 0 or n % 1 ~= 0 then error("n must be an integer >= 0", 2) end
  local out = buffer(n)
  if C.mg_crypto_random(out, n, errbuf) ~= 0 then return nil, ffi_string(errbuf[0]) end
  return ffi_string(out, n)
end

--- crypto.equal(a, b) -> boolean; for strings of the same length the time taken does not
--- depend on where they differ (strings of different lengths are unequal at once).
function M.equal(a, b)
  check_string(a, "a", 2)
  check_string(b, "b", 2)
  if #a ~= #b then return false end
  return C.mg_crypto_equal(a, b, #a) == 1
end

--- crypto.base64url(s) -> unpadded base64url (RFC 4648 section 5) of s
function M.base64url(s)
  check_string(s, "data", 2)
  local out = buffer(tonumber(C.mg_crypto_base64url_len(#s)))
  return ffi_string(out, C.mg_crypto_base64url(s, #s, out))
end

return M
