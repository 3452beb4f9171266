/* tokenizer_fuzz.c: libFuzzer target for core/tokenizer.c. For any bytes: no crash, leak or
 * out-of-bounds read; count == number of ids; truncation within budget. For valid UTF-8:
 * decode(encode(x)) == x. Built by tests/fuzz/build.sh (clang), not by ctest. */
#include "tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* the runtime's mg_home(), without linking the runtime */
const char *mg_home(void) {
    const char *h = getenv("MOONGATE_HOME");
    return h && *h ? h : ".";
}

static int valid_utf8(const uint8_t *s, size_t n) {
    for (size_t i = 0; i < n;) {
        uint8_t b = s[i];
        size_t l;
        uint8_t lo = 0x80, hi = 0xbf;
        if (b < 0x80) { i++; continue; }
        else if (b >= 0xc2 && b <= 0xdf) l = 2;
        else if (b >= 0xe0 && b <= 0xef) { l = 3; if (b == 0xe0) lo = 0xa0; if (b == 0xed) hi = 0x9f; }
        else if (b >= 0xf0 && b <= 0xf4) { l = 4; if (b == 0xf0) lo = 0x90; if (b == 0xf4) hi = 0x8f; }
        else return 0;
        if (i + l > n || s[i + 1] < lo || s[i + 1] > hi) return 0;
        for (size_t j = 2; j < l; j++)
            if ((s[i + j] & 0xc0) != 0x80) return 0;
        i += l;
    }
    return 1;
}

#define REQUIRE(c)                                                      \
    do {                                                                \
        if (!(c)) {                                                     \
            fprintf(stderr, "tokenizer_fuzz: %s failed\n", #c);         \
            abort();                                                    \
        }                                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const mg_tok *encs[2];
    if (!encs[0]) {
        const char *err = NULL;
        encs[0] = mg_tok_get("cl100k_base", &err);
        encs[1] = mg_tok_get("o200k_base", &err);
        if (!encs[0] || !encs[1]) {
            fprintf(stderr, "tokenizer_fuzz: %s (set MOONGATE_HOME)\n", err);
            abort();
        }
    }
    const char *s = (const char *)data;
    for (int e = 0; e < 2; e++) {
        const mg_tok *t = encs[e];
        size_t c = 0, m = 0;
        REQUIRE(mg_tok_count(t, s, size, &c) == MG_OK);
        uint32_t *ids = malloc((c + 1) * sizeof *ids);
        REQUIRE(mg_tok_encode(t, s, size, ids, c, &m) == MG_OK && m == c);
        size_t bl = 0;
        int rc = mg_tok_decode(t, ids, m, NULL, 0, &bl);
        REQUIRE(rc == (m ? MG_AGAIN : MG_OK));
        char *back = malloc(bl + 1);
        REQUIRE(mg_tok_decode(t, ids, m, back, bl, &bl) == MG_OK);
        if (valid_utf8(data, size)) REQUIRE(bl == size && memcmp(back, s, size) == 0);
        free(back);
        free(ids);
        size_t k = size ? data[0] % 64 : 0, p = 0, cp = 0;
        REQUIRE(mg_tok_truncate(t, s, size, k, &p) == MG_OK && p <= size);
        REQUIRE(mg_tok_count(t, s, p, &cp) == MG_OK && cp <= k);
        size_t cs = 0;
        REQUIRE(mg_tok_count_special(t, s, size, MG_TOK_SPECIAL_ALL, &cs) == MG_OK && cs <= c);
    }
    return 0;
}
