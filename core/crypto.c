/* crypto.c: SHA-256 and HMAC-SHA256 through OpenSSL's libcrypto, getrandom(2), and the small
 * encoders API keys are written with. Thread-safe: the one reused digest context is per thread. */
#define _GNU_SOURCE
#include "crypto.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <string.h>
#include <sys/random.h>

#define SHA256_BLOCK 64

/* SHA-256, fetched from the provider once per thread: OpenSSL 3 looks a digest named by
 * EVP_sha256() up again on every init, which costs more than hashing a short prompt. */
static const EVP_MD *sha256_md(void)
{
    static _Thread_local EVP_MD *md;
    if (!md) md = EVP_MD_fetch(NULL, "SHA256", NULL);
    return md;
}

int mg_crypto_sha256(const void *data, size_t len, uint8_t *out, const char **err)
{
    static _Thread_local EVP_MD_CTX *ctx;
    unsigned int n = 0;
    const EVP_MD *md = sha256_md();
    if (!md || (!ctx && !(ctx = EVP_MD_CTX_new())) || !EVP_DigestInit_ex2(ctx, md, NULL)
        || !EVP_DigestUpdate(ctx, data, len) || !EVP_DigestFinal_ex(ctx, out, &n) || n != MG_SHA256_LEN) {
        if (err) *err = "sha256 failed";
        return MG_ERROR;
    }
    return MG_OK;
}

/* HMAC-SHA256 (RFC 2104) over two digests on one reused context: OpenSSL 3's HMAC() looks the
 * MAC up by name on every call, which costs several times the hashing of a short key. Its own
 * context: the key's digest (a key longer than a block) is taken on sha256's. */
int mg_crypto_hmac_sha256(const void *key, size_t key_len, const void *data, size_t len,
                          uint8_t *out, const char **err)
{
    static _Thread_local EVP_MD_CTX *ctx;
    unsigned char k[SHA256_BLOCK], pad[SHA256_BLOCK], inner[MG_SHA256_LEN];
    unsigned int n = 0;
    const EVP_MD *md = sha256_md();
    if (!md || (!ctx && !(ctx = EVP_MD_CTX_new()))) goto fail;
    memset(k, 0, sizeof k);
    if (key_len > SHA256_BLOCK) {
        if (mg_crypto_sha256(key, key_len, k, NULL)) goto fail;
    } else if (key_len) {
        memcpy(k, key, key_len);
    }
    for (int i = 0; i < SHA256_BLOCK; i++) pad[i] = k[i] ^ 0x36;
    if (!EVP_DigestInit_ex2(ctx, md, NULL) || !EVP_DigestUpdate(ctx, pad, sizeof pad)
        || !EVP_DigestUpdate(ctx, data, len) || !EVP_DigestFinal_ex(ctx, inner, &n))
        goto fail;
    for (int i = 0; i < SHA256_BLOCK; i++) pad[i] = k[i] ^ 0x5c;
    if (!EVP_DigestInit_ex2(ctx, md, NULL) || !EVP_DigestUpdate(ctx, pad, sizeof pad)
        || !EVP_DigestUpdate(ctx, inner, sizeof inner) || !EVP_DigestFinal_ex(ctx, out, &n)
        || n != MG_SHA256_LEN)
        goto fail;
    OPENSSL_cleanse(k, sizeof k);
    OPENSSL_cleanse(pad, sizeof pad);
    return MG_OK;
fail:
    OPENSSL_cleanse(k, sizeof k);
    OPENSSL_cleanse(pad, sizeof pad);
    if (err) *err = "hmac failed";
    return MG_ERROR;
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
