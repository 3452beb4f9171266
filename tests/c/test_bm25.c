/* test_bm25.c: exact Lucene BM25 scores on a small corpus, ranking and ties, the allow
 * filter, save/load round trip and refusal of damaged files. */
#include "bm25.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;
#define EXPECT(c) do { if (!(c)) { printf("line %d: %s\n", __LINE__, #c); failures++; } } while (0)

static double bm25(double tf, double df, double N, double dl, double avgdl)
{
    double idf = log(1 + (N - df + 0.5) / (df + 0.5));
    return idf * tf / (tf + 1.2 * (1 - 0.75 + 0.75 * dl / avgdl));
}

static const char *docs[] = {
    "the quick brown fox",
    "the lazy dog",
    "quick quick fox jumps",
    "",
    "Brown dogs; LAZY foxes",
};

static void check_index(mg_bm25 *ix, int stemmed)
{
    uint32_t d[10];
    float s[10];
    size_t n;
    const char *err = NULL;
    double avgdl = 15.0 / 5;
    EXPECT(mg_bm25_count(ix) == 5);
    EXPECT(mg_bm25_search(ix, "quick fox", 9, 10, NULL, 0, d, s, &n, &err) == MG_OK);
    if (!stemmed) {
        EXPECT(n == 2);
        EXPECT(d[0] == 2 && d[1] == 0);
        EXPECT(fabs(s[0] - (bm25(2, 2, 5, 4, avgdl) + bm25(1, 2, 5, 4, avgdl))) < 1e-5);
        EXPECT(fabs(s[1] - 2 * bm25(1, 2, 5, 4, avgdl)) < 1e-5);
        EXPECT(fabs(s[0] - 0.850455) < 1e-5);   /* worked by hand from the formula */
    } else {
        /* "foxes" stems to "fox": doc 4 matches too */
        EXPECT(n == 3);
        EXPECT(d[0] == 2 && d[1] == 0 && d[2] == 4);
        EXPECT(fabs(s[2] - bm25(1, 3, 5, 4, avgdl)) < 1e-5);
    }
    /* k smaller than the matches, and ties broken by docno */
    EXPECT(mg_bm25_search(ix, "the", 3, 1, NULL, 0, d, s, &n, &err) == MG_OK);
    EXPECT(n == 1 && d[0] == 1);
    EXPECT(mg_bm25_search(ix, "brown", 5, 10, NULL, 0, d, s, &n, &err) == MG_OK);
    EXPECT(n == 2 && d[0] == 0 && d[1] == 4 && s[0] == s[1]);
    /* a repeated query term counts twice */
    float once;
    EXPECT(mg_bm25_search(ix, "jumps", 5, 10, NULL, 0, d, s, &n, &err) == MG_OK);
    once = s[0];
    EXPECT(mg_bm25_search(ix, "jumps jumps", 11, 10, NULL, 0, d, s, &n, &err) == MG_OK);
    EXPECT(n == 1 && fabsf(s[0] - 2 * once) < 1e-6);
    /* pre-analyzed terms with weights: "fox" twice equals weight 2, weight 0 is refused */
    {
        const char tb[] = "foxfox";
        uint32_t to[3] = {0, 3, 6};
        float w2[1] = {2}, w0[1] = {0};
        uint32_t d2[10];
        float s2[10];
        size_t n2;
        EXPECT(mg_bm25_search_terms(ix, tb, to, 2, NULL, 10, NULL, 0, d, s, &n, &err) == MG_OK);
        EXPECT(mg_bm25_search_terms(ix, tb, to, 1, w2, 10, NULL, 0, d2, s2, &n2, &err) == MG_OK);
        EXPECT(n == n2 && n > 0 && memcmp(d, d2, n * 4) == 0 && memcmp(s, s2, n * 4) == 0);
        EXPECT(mg_bm25_search_terms(ix, tb, to, 1, w0, 10, NULL, 0, d2, s2, &n2, &err) == MG_ERROR);
        EXPECT(strcmp(err, "weights must be positive") == 0);
    }
    /* unknown terms and empty queries find nothing */
    EXPECT(mg_bm25_search(ix, "zebra", 5, 10, NULL, 0, d, s, &n, &err) == MG_OK && n == 0);
    EXPECT(mg_bm25_search(ix, "", 0, 10, NULL, 0, d, s, &n, &err) == MG_OK && n == 0);
    EXPECT(mg_bm25_search(ix, "fox", 3, 0, NULL, 0, d, s, &n, &err) == MG_OK && n == 0);
    /* allow filter: doc 2 excluded, doc 4 is past a 3-bit set */
    uint64_t allow = (1u << 0) | (1u << 1) | (1u << 4);
    EXPECT(mg_bm25_search(ix, "quick fox", 9, 10, &allow, 5, d, s, &n, &err) == MG_OK);
    EXPECT(n == 1 + (stemmed ? 1 : 0) && d[0] == 0);
    EXPECT(fabs(s[0] - bm25(1, 2, 5, 4, avgdl) - bm25(1, stemmed ? 3 : 2, 5, 4, avgdl)) < 1e-5);
    EXPECT(mg_bm25_search(ix, "quick fox", 9, 10, &allow, 3, d, s, &n, &err) == MG_OK);
    EXPECT(n == 1 && d[0] == 0);
    allow = 0;
    EXPECT(mg_bm25_search(ix, "quick fox", 9, 10, &allow, 64, d, s, &n, &err) == MG_OK && n == 0);
}

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

/* A Zipf-ish word: low numbers far more often, as in real text. */
static void word(char *out)
{
    uint32_t r = rnd(1000) + 1;
    sprintf(out, "w%u", 1000 / r);
}

/* Term at a time and MaxScore return the same documents with bit-identical scores, for
 * any k, with and without a filter, including exact ties (duplicate documents). */
static void check_strategies(void)
{
    const char *err = NULL;
    mg_bm25 *ix = mg_bm25_new(1.2, 0.75, NULL, 0, &err);
    char doc[4096], prev[4096] = "w1 w2";
    for (int i = 0; i < 3000; i++) {
        if (i % 50 == 0) {   /* a duplicate of the previous document */
            mg_bm25_add(ix, prev, strlen(prev), NULL, &err);
            continue;
        }
        size_t len = 0, nw = 3 + rnd(120);
        for (size_t j = 0; j < nw; j++) {
            char w[16];
            word(w);
            len += (size_t)sprintf(doc + len, "%s ", w);
        }
        mg_bm25_add(ix, doc, len, NULL, &err);
        memcpy(prev, doc, len + 1);
    }
    mg_bm25_commit(ix, &err);
    uint64_t allow[3000 / 64 + 1];
    for (size_t i = 0; i < sizeof allow / sizeof *allow; i++)
        allow[i] = ((uint64_t)rnd(1u << 31) << 33) ^ ((uint64_t)rnd(1u << 31) << 2) ^ rnd(4);
    int mismatches = 0;
    for (int qn = 0; qn < 300; qn++) {
        char q[512];
        size_t len = 0, nw = 1 + rnd(14);
        for (size_t j = 0; j < nw; j++) {
            char w[16];
            word(w);
            len += (size_t)sprintf(q + len, "%s ", w);
        }
        uint32_t k = (uint32_t[]){1, 10, 100, 5000}[qn % 4];
        const uint64_t *al = qn % 3 == 0 ? allow : NULL;
        static uint32_t d1[5000], d2[5000];
        static float s1[5000], s2[5000];
        size_t n1, n2;
        mg_bm25_set_strategy(ix, 1);
        mg_bm25_search(ix, q, len, k, al, 3000, d1, s1, &n1, &err);
        mg_bm25_set_strategy(ix, 2);
        mg_bm25_search(ix, q, len, k, al, 3000, d2, s2, &n2, &err);
        if (n1 != n2 || memcmp(d1, d2, n1 * sizeof *d1) != 0 || memcmp(s1, s2, n1 * sizeof *s1) != 0)
            mismatches++;
        for (size_t i = 0; i < n1; i++)
            if (al && !((al[d1[i] / 64] >> (d1[i] % 64)) & 1))
                mismatches++;
    }
    EXPECT(mismatches == 0);
    mg_bm25_free(ix);
}

int main(void)
{
    check_strategies();
    const char *err = NULL;
    for (int stemmed = 0; stemmed < 2; stemmed++) {
        mg_bm25 *ix = mg_bm25_new(1.2, 0.75, stemmed ? "english" : NULL, 0, &err);
        EXPECT(ix != NULL);
        uint32_t d[4];
        float s[4];
        size_t n;
        EXPECT(mg_bm25_search(ix, "fox", 3, 4, NULL, 0, d, s, &n, &err) == MG_ERROR);
        EXPECT(strcmp(err, "not committed") == 0);
        for (uint32_t i = 0; i < 5; i++) {
            uint32_t no = 99;
            EXPECT(mg_bm25_add(ix, docs[i], strlen(docs[i]), &no, &err) == MG_OK);
            EXPECT(no == i);
        }
        EXPECT(mg_bm25_commit(ix, &err) == MG_OK);
        EXPECT(mg_bm25_commit(ix, &err) == MG_OK);
        EXPECT(mg_bm25_add(ix, "late", 4, NULL, &err) == MG_ERROR && strcmp(err, "committed") == 0);
        EXPECT(mg_bm25_doc_len(ix, 3) == 0 && mg_bm25_doc_len(ix, 2) == 4);
        EXPECT(mg_bm25_df(ix, "quick", 5) == 2 && mg_bm25_df(ix, "nope", 4) == 0);
        check_index(ix, stemmed);

        char path[] = "/tmp/mg_test_bm25_XXXXXX";
        int fd = mkstemp(path);
        EXPECT(fd >= 0);
        EXPECT(mg_bm25_save(ix, path, &err) == MG_OK);
        mg_bm25 *re = mg_bm25_load(path, &err);
        EXPECT(re != NULL);
        if (re) {
            EXPECT(strcmp(mg_bm25_stem(re), stemmed ? "english" : "") == 0);
            EXPECT(mg_bm25_term_count(re) == mg_bm25_term_count(ix));
            check_index(re, stemmed);
            mg_bm25_free(re);
        }
        /* damage one byte: refused with a clear error, no crash */
        FILE *f = fopen(path, "r+b");
        fseek(f, 200, SEEK_SET);
        int c = fgetc(f);
        fseek(f, 200, SEEK_SET);
        fputc(c ^ 0x40, f);
        fclose(f);
        EXPECT(mg_bm25_load(path, &err) == NULL && strcmp(err, "corrupt index") == 0);
        f = fopen(path, "wb");
        fputs("hello", f);
        fclose(f);
        EXPECT(mg_bm25_load(path, &err) == NULL && strcmp(err, "not a bm25 index") == 0);
        EXPECT(mg_bm25_load("/nonexistent/x", &err) == NULL && strcmp(err, "cannot open") == 0);
        remove(path);
        mg_bm25_free(ix);
    }
    EXPECT(mg_bm25_new(-1, 0.75, NULL, 0, &err) == NULL);
    EXPECT(mg_bm25_new(1.2, 0.75, "klingon", 0, &err) == NULL && strcmp(err, "unknown stemmer language") == 0);
    printf("%s\n", failures ? "FAIL" : "ok");
    return failures != 0;
}
