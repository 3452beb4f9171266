/* crypto.h: the hashing and randomness API keys need — SHA-256 and HMAC-SHA256 (OpenSSL's
 * libcrypto), random bytes from getrandom(2), constant-time comparison, hex and base64url. */
#ifndef MG_CRYPTO_H
#define MG_CRYPTO_H

#include "mg.h"

#define MG_SHA256_LEN 32

/* out[32] = SHA-256(data). */
MG_API int mg_crypto_sha256(const void *data, size_t len, uint8_t *out, const char **err);

/* out[32] = HMAC-SHA256(key, data). */
MG_API int mg_crypto_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                                 uint8_t *out, const char **err);

/* n bytes from the kernel's CSPRNG (getrandom(2), blocking only before it is seeded). */
MG_API int mg_crypto_random(void *out, size_t n, const char **err);

/* 1 when a[0..n) == b[0..n), else 0; the time taken depends on n only. */
MG_API int mg_crypto_equal(const void *a, const void *b, size_t n);

/* Lower-case hex of in[0..n) into out[0..2n); returns 2n. */
MG_API size_t mg_crypto_hex(const void *in, size_t n, char *out);

/* Unpadded base64url (RFC 4648 section 5) of in[0..n) into out, which holds
 * mg_crypto_base64url_len(n) bytes; returns that length. */
MG_API size_t mg_crypto_base64url_len(size_t n);
MG_API size_t mg_crypto_base64url(const void *in, size_t n, char *out);

#endif
