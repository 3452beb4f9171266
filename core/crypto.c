/* crypto.c: SHA-256 and HMAC-SHA256 through OpenSSL's libcrypto, getrandom(2), and the small
 * encoders API keys are written with. No state: every call stands alone and is thread-safe. */
#define _GNU_SOURCE
#include "crypto.h"

#include <errno.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/random.h>

int mg_crypto_sha256(const void *data, size_t len, uint8_t *out, const char **err)
{
    unsigned int n = 0;
    if (!EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) || n != MG_SHA256_LEN) {
        if (err) *err = "sha256 failed";
        return MG_ERROR;
    }
    return MG_OK;
}

int mg_crypto_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                          uint8_t *out, const char **err)
{
    unsigned int n = 0;
    static const unsigned char empty[1] = {0};
    if (key_len > INT_MAX) {
        if (err) *err = "hmac key too long";
        return MG_ERROR;
    }
    /* HMAC() treats a NULL key as "reuse the last one"; an empty key is a valid key. */
    if (!HMAC(EVP_sha256(), key_len ? key : empty, (int)key_len, data, len, out, &n)
        || n != MG_SHA256_LEN) {
        if (err) *err = "hmac failed";
        return MG_ERROR;
    }
    return MG_OK;
}

int mg_crypto_random(void *out, size_t n, const char **err)
{
    unsigned char *p = out;
    while (n > 0) {
        ssize_t got = getrandom(p, n, 0);
        if (got < 0) {
            if (errno == EINTR) continue;
            if (err) *err = "getrandom failed";
            return MG_ERROR;
        }
        p += got;
        n -= (size_t)got;
    }
    return MG_OK;
}

int mg_crypto_equal(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}

size_t mg_crypto_hex(const void *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *p = in;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    return 2 * n;
}

size_t mg_crypto_base64url_len(size_t n)
{
    return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

size_t mg_crypto_base64url(const void *in, size_t n, char *out)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const unsigned char *p = in;
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = alphabet[v >> 18];
        out[o++] = alphabet[v >> 12 & 63];
        out[o++] = alphabet[v >> 6 & 63];
        out[o++] = alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        out[o++] = alphabet[v >> 18];
        out[o++] = alphabet[v >> 12 & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        out[o++] = alphabet[v >> 18];
        out[o++] = alphabet[v >> 12 & 63];
        out[o++] = alphabet[v >> 6 & 63];
    }
    return o;
}
