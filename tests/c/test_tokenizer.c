/* test_tokenizer.c: tiktoken's own test vectors and reference ids (npm tiktoken 1.0.22) for
 * cl100k_base and o200k_base, truncation, decoding, special tokens, invalid UTF-8, linear time
 * on adversarial input, and a deterministic random run (round trips, no crash). */
#include "tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int failures;
#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                               \
        }                                                                             \
    } while (0)

static const mg_tok *cl, *o2;

static size_t count(const mg_tok *t, const char *s, size_t n) {
    size_t c = (size_t)-1;
    CHECK(mg_tok_count(t, s, n, &c) == MG_OK);
    return c;
}

/* encode s and compare with the expected ids; prints both on mismatch */
static void expect_ids(const mg_tok *t, const char *s, size_t n, const uint32_t *want, size_t nw) {
    uint32_t got[256];
    size_t ng = 0;
    int rc = mg_tok_encode(t, s, n, got, 256, &ng);
    int ok = rc == MG_OK && ng == nw && memcmp(got, want, nw * sizeof *want) == 0;
    if (!ok) {
        fprintf(stderr, "%s: ids of \"%.*s\" differ (rc %d)\n  got ", mg_tok_name(t), (int)n, s, rc);
        for (size_t i = 0; i < ng && i < 256; i++) fprintf(stderr, " %u", got[i]);
        fprintf(stderr, "\n want");
        for (size_t i = 0; i < nw; i++) fprintf(stderr, " %u", want[i]);
        fprintf(stderr, "\n");
        failures++;
    }
    CHECK(count(t, s, n) == nw);
}

#define IDS(t, str, ...)                                                         \
    do {                                                                         \
        static const uint32_t w_[] = {__VA_ARGS__};                              \
        expect_ids(t, str, sizeof(str) - 1, w_, sizeof w_ / sizeof w_[0]);       \
    } while (0)

/* decode(encode(s)) == s */
static int roundtrip(const mg_tok *t, const char *s, size_t n) {
    size_t m = 0;
    int rc = mg_tok_encode(t, s, n, NULL, 0, &m);
    if (rc != MG_AGAIN && !(rc == MG_OK && m == 0)) return 0;
    uint32_t *ids = malloc((m + 1) * sizeof *ids);
    size_t m2 = 0;
    rc = mg_tok_encode(t, s, n, ids, m, &m2);
    size_t c = 0;
    mg_tok_count(t, s, n, &c);
    char *back = malloc(n + 1);
    size_t bl = 0;
    int rc2 = mg_tok_decode(t, ids, m, back, n, &bl);
    int ok = rc == MG_OK && m2 == m && c == m && rc2 == MG_OK && bl == n && memcmp(back, s, n) == 0;
    free(ids);
    free(back);
    return ok;
}

static void test_vectors(void) {
    /* tiktoken tests/test_encoding.py */
    IDS(cl, "hello world", 15339, 1917);
    IDS(cl, "rer", 38149);
    IDS(cl, "'rer", 2351, 81);
    IDS(cl, "today\n ", 31213, 198, 220);
    IDS(cl, "today\n \n", 31213, 27907);
    IDS(cl, "today\n  \n", 31213, 14211);
    IDS(cl, " \xc2\x85" "0", 220, 126, 227, 15);
    IDS(cl, "\xf0\x9f\x91\x8d", 9468, 239, 235);
    {
        uint32_t ids[] = {15339, 1917};
        char out[32];
        size_t n = 0;
        CHECK(mg_tok_decode(cl, ids, 2, out, sizeof out, &n) == MG_OK);
        CHECK(n == 11 && memcmp(out, "hello world", 11) == 0);
    }
    {
        uint32_t ids[8];
        size_t n = 0;
        CHECK(mg_tok_encode_special(cl, "hello <|endoftext|>", 19, MG_TOK_SPECIAL_ALL, ids, 8, &n) == MG_OK);
        CHECK(n == 3 && ids[0] == 15339 && ids[1] == 220 && ids[2] == 100257);
    }
    CHECK(count(cl, "", 0) == 0);
    CHECK(count(o2, "", 0) == 0);
    const char *rt[] = {"hello", "hello ", "hello  ", " hello", " hello ", " hello  ", "hello world",
                        "\xe8\xaf\xb7\xe8\x80\x83\xe8\xaf\x95\xe6\x88\x91\xe7\x9a\x84\xe8\xbd\xaf\xe4\xbb\xb6\xef\xbc\x81" "12345"};
    for (size_t i = 0; i < sizeof rt / sizeof rt[0]; i++) {
        CHECK(roundtrip(cl, rt[i], strlen(rt[i])));
        CHECK(roundtrip(o2, rt[i], strlen(rt[i])));
    }
    /* every token's bytes give back that token (encode_single_token) */
    const mg_tok *encs[] = {cl, o2};
    for (int e = 0; e < 2; e++) {
        uint32_t bad = 0;
        for (uint32_t id = 0; id < mg_tok_vocab_size(encs[e]); id++) {
            const char *p;
            size_t l;
            uint32_t back = 0;
            if (mg_tok_token_bytes(encs[e], id, &p, &l) != MG_OK) continue;
            if (mg_tok_rank(encs[e], p, l, &back) != MG_OK || back != id) bad++;
        }
        CHECK(bad == 0);
    }
    CHECK(mg_tok_vocab_size(cl) == 100277);
    CHECK(mg_tok_vocab_size(o2) == 200019);

    /* reference ids from npm tiktoken (encode_ordinary) */
    IDS(cl, "I'M HERE, you'RE there. it'\xc5\xbf", 40, 28703, 19804, 11, 499, 95253, 1070, 13, 433, 6, 129, 123);
    IDS(cl, "HelloWorld CamelCASE ABCdef", 9906, 10343, 69254, 41471, 19921, 755);
    IDS(cl, "  x  \n  ", 220, 865, 2355, 256);
    IDS(cl, "x/\n/y", 87, 6018, 27589);
    IDS(cl, "1234567", 4513, 10961, 22);
    IDS(cl, "e\xcc\x81 \xcc\x81" "a \xc7\x85ungla", 68, 54939, 220, 54939, 64, 220, 131, 227, 2234, 4355);
    IDS(o2, "hello world", 24912, 2375);
    IDS(o2, "rer", 27653);
    IDS(o2, "'rer", 15770, 259);
    IDS(o2, "today\n ", 58744, 198, 220);
    IDS(o2, "today\n \n", 58744, 47812);
    IDS(o2, "today\n  \n", 58744, 31835);
    IDS(o2, " \xc2\x85" "0", 220, 126, 227, 15);
    IDS(o2, "\xf0\x9f\x91\x8d", 82514);
    IDS(o2, "I'M HERE, you'RE there. it'\xc5\xbf", 40, 95346, 32396, 11, 481, 6, 1099, 1354, 13, 480, 6, 70067);
    IDS(o2, "HelloWorld CamelCASE ABCdef", 13225, 13046, 112127, 76384, 33047, 1314);
    IDS(o2, "  x  \n  ", 220, 1215, 4066, 256);
    IDS(o2, "x/\n/y", 87, 66186, 88);
    IDS(o2, "1234567", 7633, 19354, 22);
    IDS(o2, "e\xcc\x81 \xcc\x81" "a \xc7\x85ungla", 68, 13430, 220, 13430, 64, 220, 131, 227, 988, 1675);
    IDS(o2, "\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7 \xd8\xa8\xd8\xa7\xd9\x84\xd8\xb9\xd8\xa7\xd9\x84\xd9\x85",
        158894, 26537, 101462, 12773);
    IDS(o2, "\xe0\xa4\xa8\xe0\xa4\xae\xe0\xa4\xb8\xe0\xa5\x8d\xe0\xa4\xa4\xe0\xa5\x87 "
            "\xe0\xa4\xa6\xe0\xa5\x81\xe0\xa4\xa8\xe0\xa4\xbf\xe0\xa4\xaf\xe0\xa4\xbe",
        998, 1637, 14681, 628, 64593);
    IDS(o2, "\xf0\x9f\x91\xa9\xf0\x9f\x8f\xbd\xe2\x80\x8d\xf0\x9f\x92\xbb \xf0\x9f\x87\xab\xf0\x9f\x87\xb7",
        28823, 102, 52622, 121, 2524, 31446, 119, 173468, 104, 55506, 115);
}

static void test_special(void) {
    const char *text = "<|endoftext|> hello <|fim_prefix|> there <|fim_middle|>";
    size_t n = strlen(text);
    uint32_t ids[64];
    size_t m;
    int has[3];
#define SCAN(mask)                                                                    \
    do {                                                                              \
        CHECK(mg_tok_encode_special(cl, text, n, mask, ids, 64, &m) == MG_OK);        \
        has[0] = has[1] = has[2] = 0;                                                 \
        for (size_t i = 0; i < m; i++) {                                              \
            if (ids[i] == 100257) has[0] = 1;                                         \
            if (ids[i] == 100258) has[1] = 1;                                         \
            if (ids[i] == 100259) has[2] = 1;                                         \
        }                                                                             \
    } while (0)
    SCAN(0);
    CHECK(!has[0] && !has[1] && !has[2]);
    SCAN(MG_TOK_SPECIAL_ALL);
    CHECK(has[0] && has[1] && has[2]);
    SCAN(1u << 1); /* <|fim_prefix|> */
    CHECK(!has[0] && has[1] && !has[2]);
    SCAN(1u << 0);
    CHECK(has[0] && !has[1] && !has[2]);
    SCAN(1u << 2);
    CHECK(!has[0] && !has[1] && has[2]);
    /* ordinary encoding equals the special one with nothing allowed */
    size_t a = 0, b = 0;
    CHECK(mg_tok_count(cl, text, n, &a) == MG_OK);
    CHECK(mg_tok_count_special(cl, text, n, 0, &b) == MG_OK && a == b);
    CHECK(mg_tok_count_special(cl, text, n, MG_TOK_SPECIAL_ALL, &b) == MG_OK && b == 7);
    /* o200k */
    CHECK(mg_tok_encode_special(o2, "<|endoftext|> hello <|endofprompt|>", 35, MG_TOK_SPECIAL_ALL, ids, 64, &m) == MG_OK);
    CHECK(m == 4 && ids[0] == 199999 && ids[1] == 40617 && ids[2] == 220 && ids[3] == 200018);
    const char *st;
    uint32_t sid;
    CHECK(mg_tok_special(o2, 1, &st, &sid) == MG_OK && strcmp(st, "<|endofprompt|>") == 0 && sid == 200018);
    CHECK(mg_tok_special(o2, 2, &st, &sid) == MG_DECLINED);
    CHECK(mg_tok_rank(cl, "<|endofprompt|>", 15, &sid) == MG_OK && sid == 100276);
    CHECK(mg_tok_rank(cl, "hello world", 11, &sid) == MG_DECLINED);
    /* decoding a special id gives its text */
    uint32_t sp[] = {100257, 15339};
    char out[64];
    size_t ol;
    CHECK(mg_tok_decode(cl, sp, 2, out, sizeof out, &ol) == MG_OK && ol == 18 &&
          memcmp(out, "<|endoftext|>hello", 18) == 0);
}

static void test_decode_errors(void) {
    uint32_t ids[] = {15339, 1917};
    char out[4];
    size_t n = 0;
    CHECK(mg_tok_decode(cl, ids, 2, out, sizeof out, &n) == MG_AGAIN && n == 11);
    CHECK(mg_tok_decode(cl, ids, 2, NULL, 0, &n) == MG_AGAIN && n == 11);
    uint32_t bad[] = {15339, 100256, 1917};
    char big[64];
    CHECK(mg_tok_decode(cl, bad, 3, big, sizeof big, &n) == MG_DECLINED && n == 1);
    uint32_t bad2[] = {200019};
    CHECK(mg_tok_decode(o2, bad2, 1, big, sizeof big, &n) == MG_DECLINED && n == 0);
    CHECK(mg_tok_decode(cl, NULL, 0, NULL, 0, &n) == MG_OK && n == 0);
    /* encode with a short buffer says how many ids it needs */
    uint32_t one[1];
    CHECK(mg_tok_encode(cl, "hello world", 11, one, 1, &n) == MG_AGAIN && n == 2 && one[0] == 15339);
    const char *err = NULL;
    CHECK(mg_tok_get("p50k_base", &err) == NULL && err && strcmp(err, "unknown encoding") == 0);
    CHECK(mg_tok_get(NULL, &err) == NULL);
    CHECK(mg_tok_load("cl100k_base") == MG_OK);
}

static void test_truncate(void) {
    const char *s = "hello world, how are you?";
    size_t n = strlen(s), p = 0;
    CHECK(mg_tok_truncate(cl, s, n, 0, &p) == MG_OK && p == 0);
    CHECK(mg_tok_truncate(cl, s, n, 1, &p) == MG_OK && p == 5);   /* "hello" */
    CHECK(mg_tok_truncate(cl, s, n, 2, &p) == MG_OK && p == 11);  /* "hello world" */
    CHECK(mg_tok_truncate(cl, s, n, 3, &p) == MG_OK && p == 12);  /* "hello world," */
    CHECK(mg_tok_truncate(cl, s, n, 100, &p) == MG_OK && p == n);
    /* never cut inside a character: 👍 is " \xf0\x9f\x91" + "\x8d" in cl100k, " 👍" in o200k */
    const char *e = "ok \xf0\x9f\x91\x8d!";
    size_t en = strlen(e);
    CHECK(mg_tok_truncate(cl, e, en, 1, &p) == MG_OK && p == 2);
    CHECK(mg_tok_truncate(cl, e, en, 2, &p) == MG_OK && p == 2);  /* " \xf0\x9f" would split 👍 */
    CHECK(mg_tok_truncate(cl, e, en, 3, &p) == MG_OK && p == 7);
    CHECK(mg_tok_truncate(cl, e, en, 4, &p) == MG_OK && p == 8);
    CHECK(mg_tok_truncate(o2, e, en, 2, &p) == MG_OK && p == 7);
    /* the prefix itself counts at most the budget, for every budget */
    const char *long_text = "The State of the Union: we've 1234567 reasons, don't we?\n\n  Yes!! \xe4\xbd\xa0\xe5\xa5\xbd\xe4\xb8\x96\xe7\x95\x8c";
    size_t ln = strlen(long_text), total = count(cl, long_text, ln);
    for (size_t k = 0; k <= total + 1; k++) {
        CHECK(mg_tok_truncate(cl, long_text, ln, k, &p) == MG_OK);
        CHECK(count(cl, long_text, p) <= k);
        if (k >= total) CHECK(p == ln);
    }
    /* with special tokens allowed, a special token is one token and never split */
    const char *sp = "hi<|endoftext|>there";
    CHECK(mg_tok_truncate_special(cl, sp, strlen(sp), MG_TOK_SPECIAL_ALL, 2, &p) == MG_OK && p == 15);
    CHECK(mg_tok_truncate_special(cl, sp, strlen(sp), MG_TOK_SPECIAL_ALL, 1, &p) == MG_OK && p == 2);
}

static void test_invalid_utf8(void) {
    /* each maximal invalid subsequence is one U+FFFD, as a WHATWG decoder gives it */
    static const struct {
        const char *bad;
        size_t n;
        const char *as;
    } cases[] = {
        {"a\x80z", 3, "a\xef\xbf\xbdz"},
        {"\xed\xa0\xbd", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* a lone surrogate */
        {"\xf0\x9f\x98", 3, "\xef\xbf\xbd"},                           /* truncated emoji */
        {"\xe2\x28\xa1", 3, "\xef\xbf\xbd(\xef\xbf\xbd"},
        {"\xc0\xaf x", 4, "\xef\xbf\xbd\xef\xbf\xbd x"},                /* overlong */
        {"hi \xff\xfe there", 11, "hi \xef\xbf\xbd\xef\xbf\xbd there"},
        {"\xf4\x90\x80\x80", 4, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
        {"x\xc2", 2, "x\xef\xbf\xbd"},
    };
    const mg_tok *encs[] = {cl, o2};
    for (int e = 0; e < 2; e++) {
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            uint32_t a[64], b[64];
            size_t na = 0, nb = 0;
            CHECK(mg_tok_encode(encs[e], cases[i].bad, cases[i].n, a, 64, &na) == MG_OK);
            CHECK(mg_tok_encode(encs[e], cases[i].as, strlen(cases[i].as), b, 64, &nb) == MG_OK);
            CHECK(na == nb && memcmp(a, b, na * sizeof *a) == 0);
        }
    }
    /* truncation of invalid input cuts at the original byte offsets */
    size_t p = 0;
    CHECK(mg_tok_truncate(cl, "hi \xff\xfe there", 11, 1, &p) == MG_OK && p == 2);
    CHECK(mg_tok_truncate(cl, "hi \xff\xfe there", 11, 100, &p) == MG_OK && p == 11);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts); /* CPU time: other processes do not count */
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* the faster of two runs */
static double time_count(const mg_tok *t, const char *s, size_t n, size_t *c) {
    double best = 1e9;
    for (int i = 0; i < 2; i++) {
        double a = now();
        CHECK(mg_tok_count(t, s, n, c) == MG_OK);
        double d = now() - a;
        if (d < best) best = d;
    }
    return best;
}

static void test_adversarial(void) {
    /* tiktoken's catastrophically repetitive inputs round trip */
    const char *units[] = {"^", "0", "a", "'s", " ", "\n"};
    const mg_tok *encs[] = {cl, o2};
    char *buf = malloc(3 * 10000 + 4);
    for (int e = 0; e < 2; e++) {
        for (size_t u = 0; u < 6; u++) {
            size_t ul = strlen(units[u]), n = 0;
            buf[n++] = ' ';
            for (int i = 0; i < 10000; i++, n += ul) memcpy(buf + n, units[u], ul);
            CHECK(roundtrip(encs[e], buf + 1, n - 1));
            CHECK(roundtrip(encs[e], buf, n));
            buf[n++] = '\n';
            CHECK(roundtrip(encs[e], buf, n));
        }
    }
    free(buf);
    /* one megabyte of one letter and one of base64-like text without whitespace: time grows
     * linearly (4 MB within 10x the time of 1 MB; a quadratic merge would take 16x) */
    size_t big = 4u << 20;
    char *s = malloc(big);
    memset(s, 'x', big);
    size_t c1, c4;
    double t1 = time_count(o2, s, big / 4, &c1), t4 = time_count(o2, s, big, &c4);
    CHECK(c1 > 0 && c4 > 3 * c1);
    CHECK(t4 < 10 * t1 + 0.05);
    uint64_t x = 42;
    for (size_t i = 0; i < big; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        s[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[(x >> 33) & 63];
    }
    t1 = time_count(cl, s, big / 4, &c1);
    t4 = time_count(cl, s, big, &c4);
    CHECK(c4 > 3 * c1);
    CHECK(t4 < 10 * t1 + 0.05);
    fprintf(stderr, "adversarial: 4 MB of base64 in %.3f s (1 MB: %.3f s)\n", t4, t1);
    free(s);
}

/* Random bytes and random valid text: no crash, count == encode, decode(encode(valid)) == input,
 * truncate within budget. Deterministic: the same seed every run. */
static void test_random(void) {
    static const char *frags[] = {"a", "Z", "hello", "WORLD", " ", "  ", "\n", "\r\n", "\t", "'s", "'LL",
                                  "12345", "\xc3\xa9", "\xcc\x81", "\xe4\xb8\xad", "\xf0\x9f\x91\x8d",
                                  "\xe2\x80\x8d", "!", "/", "<|endoftext|>", "\xc2\xa0", "\xe3\x80\x80",
                                  "\xd9\x85", "\xe0\xa4\xbf", "\xc7\x85", "\xca\xb0", "\xe2\x85\xab"};
    uint64_t x = 0x5eed;
#define RND() (x = x * 6364136223846793005ull + 1442695040888963407ull, (uint32_t)(x >> 33))
    char buf[512];
    uint32_t ids[1024];
    for (int iter = 0; iter < 4000; iter++) {
        const mg_tok *t = iter & 1 ? o2 : cl;
        size_t n = 0;
        int valid = iter % 3 != 0;
        size_t want = RND() % 200;
        while (n < want) {
            if (valid) {
                const char *f = frags[RND() % (sizeof frags / sizeof frags[0])];
                size_t l = strlen(f);
                if (n + l > sizeof buf) break;
                memcpy(buf + n, f, l);
                n += l;
            } else {
                buf[n++] = (char)(RND() & 0xff);
            }
        }
        size_t c = 0, m = 0;
        CHECK(mg_tok_count(t, buf, n, &c) == MG_OK);
        CHECK(mg_tok_encode(t, buf, n, ids, 1024, &m) == MG_OK && m == c);
        if (valid) CHECK(roundtrip(t, buf, n));
        size_t k = RND() % (c + 2), p = 0;
        CHECK(mg_tok_truncate(t, buf, n, k, &p) == MG_OK && p <= n);
        size_t cp = 0;
        CHECK(mg_tok_count(t, buf, p, &cp) == MG_OK && cp <= k);
        size_t cs = 0;
        CHECK(mg_tok_count_special(t, buf, n, MG_TOK_SPECIAL_ALL, &cs) == MG_OK && cs <= c);
    }
}

int main(void) {
    const char *err = NULL;
    cl = mg_tok_get("cl100k_base", &err);
    if (!cl) {
        fprintf(stderr, "cl100k_base: %s\n", err);
        return 1;
    }
    o2 = mg_tok_get("o200k_base", &err);
    if (!o2) {
        fprintf(stderr, "o200k_base: %s\n", err);
        return 1;
    }
    CHECK(mg_tok_get("cl100k_base", &err) == cl); /* loaded once */
    test_vectors();
    test_special();
    test_decode_errors();
    test_truncate();
    test_invalid_utf8();
    test_adversarial();
    test_random();
    if (failures) {
        fprintf(stderr, "%d checks failed\n", failures);
        return 1;
    }
    printf("tokenizer: all checks passed\n");
    return 0;
}
