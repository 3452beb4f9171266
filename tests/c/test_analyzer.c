/* test_analyzer.c: the analyzer's exact terms for ASCII, Unicode, invalid UTF-8, stop
 * words, stemming and the possessive rule. */
#include "analyzer.h"

#include <stdio.h>
#include <string.h>
#include <utf8proc.h>

static int failures;

/* Checks that analyzing text gives the space-joined terms in want. */
static void check(mg_analyzer *a, const char *text, size_t len, const char *want, int line)
{
    const char *buf, *err = NULL;
    const uint32_t *offs;
    size_t n;
    char got[4096] = "";
    if (mg_analyzer_run(a, text, len, &buf, &offs, &n, &err) != MG_OK) {
        printf("line %d: error %s\n", line, err);
        failures++;
        return;
    }
    size_t g = 0;
    for (size_t i = 0; i < n; i++) {
        if (i) got[g++] = ' ';
        memcpy(got + g, buf + offs[i], offs[i + 1] - offs[i]);
        g += offs[i + 1] - offs[i];
    }
    got[g] = 0;
    if (strcmp(got, want) != 0) {
        printf("line %d: got [%s] want [%s]\n", line, got, want);
        failures++;
    }
}
#define CHECK(a, s, w) check(a, s, strlen(s), w, __LINE__)

/* Random bytes, UTF-8 fragments and words: never an error, every term non-empty valid
 * UTF-8 of at most 255 bytes (the sanitizer build checks the memory side). */
static void fuzz(mg_analyzer *a)
{
    static const char *pieces[] = {"wing", " ", "\xc3\xa9", "\xe2\x80\x99s", "\xff", "\xc3",
                                   "\xed\xa0\x80", "\xf0\x9f\x98\x80", "\xef\xac\x81", "-", "'", "\0",
                                   "STRASSE", "\xe6\x9d\xb1", "\xcc\x81", "12"};
    uint64_t rng = 0x853c49e6748fea9bull;
    char text[2048];
    for (int round = 0; round < 3000; round++) {
        size_t len = 0;
        while (len < 1900) {
            rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
            if (rng % 97 == 0)
                break;
            if (rng % 3 == 0) {
                text[len++] = (char)(rng >> 24);
            } else {
                const char *p = pieces[(rng >> 8) % (sizeof pieces / sizeof *pieces)];
                size_t pl = p[0] ? strlen(p) : 1;
                memcpy(text + len, p, pl);
                len += pl;
            }
        }
        const char *buf, *err = NULL;
        const uint32_t *offs;
        size_t n;
        if (mg_analyzer_run(a, text, len, &buf, &offs, &n, &err) != MG_OK) {
            printf("fuzz round %d: error %s\n", round, err);
            failures++;
            return;
        }
        for (size_t i = 0; i < n; i++) {
            size_t tl = offs[i + 1] - offs[i];
            const unsigned char *t = (const unsigned char *)buf + offs[i];
            utf8proc_int32_t cp;
            for (size_t j = 0; j < tl;) {
                utf8proc_ssize_t l = utf8proc_iterate(t + j, (utf8proc_ssize_t)(tl - j), &cp);
                if (l <= 0) {
                    printf("fuzz round %d: invalid UTF-8 in term %zu\n", round, i);
                    failures++;
                    return;
                }
                j += (size_t)l;
            }
            if (tl == 0 || tl > MG_ANALYZER_MAX_TERM) {
                printf("fuzz round %d: term of %zu bytes\n", round, tl);
                failures++;
                return;
            }
        }
    }
}

int main(void)
{
    const char *err = NULL;
    mg_analyzer *plain = mg_analyzer_new(NULL, 0, &err);
    mg_analyzer *stop = mg_analyzer_new("", 1, &err);
    mg_analyzer *en = mg_analyzer_new("english", 0, &err);
    mg_analyzer *en_stop = mg_analyzer_new("english", 1, &err);
    if (!plain || !stop || !en || !en_stop) {
        printf("new failed: %s\n", err);
        return 1;
    }
    CHECK(plain, "", "");
    CHECK(plain, "  ,.;  ", "");
    CHECK(plain, "Hello, World! x86_64 e-mail 3.14", "hello world x86 64 e mail 3 14");
    CHECK(plain, "The wing's lift; the Wings' span; it's", "the wing lift the wings span it");
    CHECK(plain, "Straße ÉCOLE Ǆemal", "strasse école džemal");
    CHECK(plain, "ﬁnance ① ㎏ Ｆｕｌｌ", "finance 1 kg full");
    CHECK(plain, "naïve cafe\xcc\x81 co\xc2\xadoperate", "naïve café cooperate");
    CHECK(plain, "東京 タワー мир", "東京 タワー мир");
    CHECK(plain, "John\xe2\x80\x99s book", "john book");
    CHECK(plain, "bad\xff\xfe" "bytes \xc3 here \xed\xa0\x80" "x", "bad bytes here x");
    check(plain, "nul\0inside", 10, "nul inside", __LINE__);
    CHECK(stop, "The flow of a gas is not such that it will be", "flow gas");
    CHECK(en, "running flows experimental investigations", "run flow experiment investig");
    CHECK(en_stop, "The aerodynamics of a wing in a slipstream", "aerodynam wing slipstream");
    CHECK(en, "ÉCOLES generalized", "école general");

    char big[600];
    memset(big, 'a', sizeof big);
    memcpy(big + 300, " ok ", 4);
    check(plain, big, sizeof big, "ok", __LINE__);   /* runs over 255 bytes are dropped */

    if (mg_analyzer_new("klingon", 0, &err) != NULL || strcmp(err, "unknown stemmer language") != 0) {
        printf("unknown language not refused\n");
        failures++;
    }
    if (!mg_analyzer_is_stopword("the", 3) || mg_analyzer_is_stopword("wing", 4)) {
        printf("stopword check wrong\n");
        failures++;
    }
    if (strcmp(mg_analyzer_stem(en), "english") != 0 || strcmp(mg_analyzer_stem(plain), "") != 0) {
        printf("stem name wrong\n");
        failures++;
    }
    fuzz(plain);
    fuzz(en_stop);
    mg_analyzer_free(plain);
    mg_analyzer_free(stop);
    mg_analyzer_free(en);
    mg_analyzer_free(en_stop);
    printf("%s\n", failures ? "FAIL" : "ok");
    return failures != 0;
}
