/* analyzer.c: text -> index terms. NFKC + case folding through utf8proc, words are runs
 * of letters, marks and digits, then optional stop words and Snowball stemming. */
#include "analyzer.h"

#include <stdlib.h>
#include <string.h>
#include <libstemmer.h>
#include <utf8proc.h>

struct mg_analyzer {
    struct sb_stemmer *stemmer;
    char stem[32];
    int stopwords;
    char *buf;          /* the terms, back to back */
    size_t buf_len, buf_cap;
    uint32_t *offs;     /* n + 1 offsets into buf */
    size_t n, offs_cap;
    char *tok;          /* the current token (ASCII path lowercases into it) */
    /* stem cache: word -> stem. Word frequencies are Zipfian, so a few thousand entries
     * answer most lookups and stemming stops dominating indexing time. */
    struct stem_slot *cache;
    char *cache_arena;
    size_t cache_used, cache_arena_len;
};

struct stem_slot {
    uint64_t hash;      /* 0 = empty */
    uint32_t off;       /* word bytes, then stem bytes, in cache_arena */
    uint16_t word_len, stem_len;
};

/* Small enough to stay in L2: a larger table cost more in cache misses than it saved. Once
 * full it keeps what it has (the words seen first are, by Zipf, mostly the frequent ones). */
#define CACHE_SLOTS 8192            /* power of two */
#define CACHE_MAX (CACHE_SLOTS / 2)
#define CACHE_ARENA (CACHE_MAX * 32)

static uint64_t hash_word(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h | 1;
}

/* Lucene's EnglishAnalyzer default stop set, so results compare with Lucene/Elasticsearch. */
static const char *const stopword_list[] = {
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into",
    "is", "it", "no", "not", "of", "on", "or", "such", "that", "the", "their", "then",
    "there", "these", "they", "this", "to", "was", "will", "with",
};

int mg_analyzer_is_stopword(const char *term, size_t len)
{
    if (len == 0 || len > 5)
        return 0;
    for (size_t i = 0; i < sizeof stopword_list / sizeof *stopword_list; i++) {
        const char *w = stopword_list[i];
        if (w[0] == term[0] && strlen(w) == len && memcmp(w, term, len) == 0)
            return 1;
    }
    return 0;
}

mg_analyzer *mg_analyzer_new(const char *stem, int stopwords, const char **err)
{
    mg_analyzer *a = calloc(1, sizeof *a);
    if (!a) {
        if (err) *err = "out of memory";
        return NULL;
    }
    a->stopwords = stopwords != 0;
    if (stem && stem[0]) {
        if (strlen(stem) >= sizeof a->stem || !(a->stemmer = sb_stemmer_new(stem, "UTF_8"))) {
            free(a);
            if (err) *err = "unknown stemmer language";
            return NULL;
        }
        strcpy(a->stem, stem);
        a->cache = calloc(CACHE_SLOTS, sizeof *a->cache);
        a->cache_arena = malloc(CACHE_ARENA);
        if (!a->cache || !a->cache_arena) {
            mg_analyzer_free(a);
            if (err) *err = "out of memory";
            return NULL;
        }
    }
    a->tok = malloc(MG_ANALYZER_MAX_TERM + 1);
    a->offs_cap = 64;
    a->offs = malloc(a->offs_cap * sizeof *a->offs);
    a->buf_cap = 1024;
    a->buf = malloc(a->buf_cap);
    if (!a->tok || !a->offs || !a->buf) {
        mg_analyzer_free(a);
        if (err) *err = "out of memory";
        return NULL;
    }
    return a;
}

void mg_analyzer_free(mg_analyzer *a)
{
    if (!a)
        return;
    if (a->stemmer)
        sb_stemmer_delete(a->stemmer);
    free(a->cache);
    free(a->cache_arena);
    free(a->tok);
    free(a->offs);
    free(a->buf);
    free(a);
}

const char *mg_analyzer_stem(const mg_analyzer *a) { return a->stem; }
int mg_analyzer_stopwords(const mg_analyzer *a) { return a->stopwords; }

/* Appends one raw token (already case folded); 0 or -1 on out of memory. */
static int emit(mg_analyzer *a, const char *t, size_t len)
{
    if (len == 0 || len > MG_ANALYZER_MAX_TERM)
        return 0;
    if (a->stopwords && mg_analyzer_is_stopword(t, len))
        return 0;
    if (a->stemmer) {
        uint64_t h = hash_word(t, len);
        size_t i = h & (CACHE_SLOTS - 1);
        struct stem_slot *c = a->cache;
        while (c[i].hash && !(c[i].hash == h && c[i].word_len == len &&
                              memcmp(a->cache_arena + c[i].off, t, len) == 0))
            i = (i + 1) & (CACHE_SLOTS - 1);
        if (c[i].hash) {
            t = a->cache_arena + c[i].off + c[i].word_len;
            len = c[i].stem_len;
        } else {
            const sb_symbol *s = sb_stemmer_stem(a->stemmer, (const sb_symbol *)t, (int)len);
            if (!s)
                return -1;
            size_t sl = (size_t)sb_stemmer_length(a->stemmer);
            if (a->cache_used < CACHE_MAX && a->cache_arena_len + len + sl <= CACHE_ARENA &&
                sl <= 0xffff) {
                c[i].hash = h;
                c[i].off = (uint32_t)a->cache_arena_len;
                c[i].word_len = (uint16_t)len;
                c[i].stem_len = (uint16_t)sl;
                memcpy(a->cache_arena + a->cache_arena_len, t, len);
                memcpy(a->cache_arena + a->cache_arena_len + len, s, sl);
                a->cache_arena_len += len + sl;
                a->cache_used++;
            }
            t = (const char *)s;
            len = sl;
        }
    }
    if (a->n + 2 > a->offs_cap) {
        size_t cap = a->offs_cap * 2;
        uint32_t *o = realloc(a->offs, cap * sizeof *o);
        if (!o)
            return -1;
        a->offs = o;
        a->offs_cap = cap;
    }
    if (a->buf_len + len > a->buf_cap) {
        size_t cap = a->buf_cap * 2;
        while (cap < a->buf_len + len)
            cap *= 2;
        char *b = realloc(a->buf, cap);
        if (!b)
            return -1;
        a->buf = b;
        a->buf_cap = cap;
    }
    if (a->buf_len + len > UINT32_MAX)
        return -1;
    memcpy(a->buf + a->buf_len, t, len);
    a->buf_len += len;
    a->n++;
    a->offs[a->n] = (uint32_t)a->buf_len;
    return 0;
}

static inline int ascii_word(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int run_ascii(mg_analyzer *a, const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && !ascii_word(s[i]))
            i++;
        size_t start = i;
        while (i < n && ascii_word(s[i]))
            i++;
        if (i == start)
            break;
        size_t len = i - start;
        if (len <= MG_ANALYZER_MAX_TERM) {
            for (size_t j = 0; j < len; j++) {
                unsigned char c = s[start + j];
                a->tok[j] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
            }
            if (emit(a, a->tok, len) < 0)
                return -1;
        }
        /* English possessive: "wing's" -> "wing", not "wing" + "s". */
        if (i + 1 < n && s[i] == '\'' && (s[i + 1] | 32) == 's' && (i + 2 == n || !ascii_word(s[i + 2])))
            i += 2;
    }
    return 0;
}

static inline int word_cp(utf8proc_int32_t cp)
{
    if (cp < 0x80)
        return ascii_word((unsigned char)cp);
    switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO:
        return 1;
    default:
        return 0;
    }
}

/* s is valid, normalized, case-folded UTF-8. */
static int run_unicode(mg_analyzer *a, const unsigned char *s, size_t n)
{
    size_t i = 0, start = 0;
    int in_word = 0;
    while (i < n) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t l = utf8proc_iterate(s + i, (utf8proc_ssize_t)(n - i), &cp);
        if (l <= 0) {  /* cannot happen after utf8proc_map; treat as a separator */
            cp = ' ';
            l = 1;
        }
        int w = word_cp(cp);
        if (w && !in_word) {
            start = i;
            in_word = 1;
        } else if (!w && in_word) {
            in_word = 0;
            if (emit(a, (const char *)s + start, i - start) < 0)
                return -1;
            if (cp == '\'' || cp == 0x2019) {  /* possessive 's */
                size_t j = i + (size_t)l;
                if (j < n && s[j] == 's') {
                    utf8proc_int32_t nx = ' ';
                    if (j + 1 < n && utf8proc_iterate(s + j + 1, (utf8proc_ssize_t)(n - j - 1), &nx) <= 0)
                        nx = ' ';
                    if (j + 1 == n || !word_cp(nx)) {
                        i = j + 1;
                        continue;
                    }
                }
            }
        }
        i += (size_t)l;
    }
    if (in_word && emit(a, (const char *)s + start, n - start) < 0)
        return -1;
    return 0;
}

/* Copy of s with every byte that is not part of valid UTF-8 replaced by a space. */
static unsigned char *sanitize(const unsigned char *s, size_t n)
{
    unsigned char *out = malloc(n ? n : 1);
    if (!out)
        return NULL;
    size_t i = 0;
    while (i < n) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t l = utf8proc_iterate(s + i, (utf8proc_ssize_t)(n - i), &cp);
        if (l <= 0) {
            out[i++] = ' ';
        } else {
            memcpy(out + i, s + i, (size_t)l);
            i += (size_t)l;
        }
    }
    return out;
}

int mg_analyzer_run(mg_analyzer *a, const char *text, size_t len,
                    const char **buf, const uint32_t **offs, size_t *n, const char **err)
{
    const unsigned char *s = (const unsigned char *)text;
    a->n = 0;
    a->buf_len = 0;
    a->offs[0] = 0;
    if (!text && len) {
        if (err) *err = "null text";
        return MG_ERROR;
    }
    if (len > (size_t)INT32_MAX) {
        if (err) *err = "text too long";
        return MG_ERROR;
    }
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        if (w & 0x8080808080808080ull)
            break;
    }
    while (i < len && s[i] < 0x80)
        i++;
    int rc;
    if (i == len) {
        rc = run_ascii(a, s, len);
    } else {
        const int opts = UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT |
                         UTF8PROC_CASEFOLD | UTF8PROC_IGNORE;
        utf8proc_uint8_t *norm = NULL;
        utf8proc_ssize_t nl = utf8proc_map(s, (utf8proc_ssize_t)len, &norm, opts);
        if (nl == UTF8PROC_ERROR_INVALIDUTF8) {
            unsigned char *clean = sanitize(s, len);
            if (!clean) {
                if (err) *err = "out of memory";
                return MG_ERROR;
            }
            nl = utf8proc_map(clean, (utf8proc_ssize_t)len, &norm, opts);
            free(clean);
        }
        if (nl < 0) {
            if (err) *err = nl == UTF8PROC_ERROR_NOMEM ? "out of memory" : "invalid text";
            return MG_ERROR;
        }
        rc = run_unicode(a, norm, (size_t)nl);
        free(norm);
    }
    if (rc < 0) {
        a->n = 0;
        if (err) *err = "out of memory";
        return MG_ERROR;
    }
    *buf = a->buf;
    *offs = a->offs;
    *n = a->n;
    return MG_OK;
}
