/* simhash.c: Charikar's SimHash over term shingles. Shingle hashes are FNV-1a over the
 * terms (with a separator byte) followed by a 64-bit avalanche finalizer. */
#include "simhash.h"

static inline uint64_t mix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

int mg_simhash_text(mg_analyzer *a, const char *text, size_t len, uint32_t shingle,
                    uint64_t *out, const char **err)
{
    *out = 0;
    if (shingle < 1 || shingle > 16) {
        if (err) *err = "shingle must be within [1, 16]";
        return MG_ERROR;
    }
    const char *buf;
    const uint32_t *offs;
    size_t n;
    if (mg_analyzer_run(a, text, len, &buf, &offs, &n, err) != MG_OK)
        return MG_ERROR;
    if (n == 0)
        return MG_OK;
    size_t w = n < shingle ? n : shingle;
    int64_t votes[64] = {0};
    for (size_t i = 0; i + w <= n; i++) {
        uint64_t h = 1469598103934665603ull;
        for (size_t t = i; t < i + w; t++) {
            for (uint32_t j = offs[t]; j < offs[t + 1]; j++) {
                h ^= (unsigned char)buf[j];
                h *= 1099511628211ull;
            }
            h ^= 0x1f;   /* term boundary: "ab c" and "a bc" differ */
            h *= 1099511628211ull;
        }
        h = mix64(h);
        for (int b = 0; b < 64; b++)
            votes[b] += (h >> b) & 1 ? 1 : -1;
    }
    uint64_t r = 0;
    for (int b = 0; b < 64; b++)
        if (votes[b] > 0)
            r |= 1ull << b;
    *out = r;
    return MG_OK;
}

int mg_simhash_distance(uint64_t a, uint64_t b)
{
    return __builtin_popcountll(a ^ b);
}
