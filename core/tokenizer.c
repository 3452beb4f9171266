/* tokenizer.c: tiktoken-exact byte-level BPE for cl100k_base and o200k_base.
 * A hand-written scanner replays OpenAI's split regexes; merges run in O(n log n) per piece. */
#include "tokenizer.h"

#include <errno.h>
#include <pthread.h>
#include <sys/mman.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

MG_API const char *mg_home(void); /* runtime.c: the folder holding data/ */

/* ---- encodings ------------------------------------------------------------------------- */

enum { PAT_CL100K, PAT_O200K };

typedef struct {
    const char *text;
    uint32_t id;
} special_def;

typedef struct {
    const char *name;
    int pattern;
    uint32_t nranks; /* ranks are exactly 0..nranks-1 in the file */
    uint32_t nspecial;
    special_def special[5];
} enc_def;

static const enc_def ENC_DEFS[] = {
    {"cl100k_base", PAT_CL100K, 100256, 5,
     {{"<|endoftext|>", 100257}, {"<|fim_prefix|>", 100258}, {"<|fim_middle|>", 100259},
      {"<|fim_suffix|>", 100260}, {"<|endofprompt|>", 100276}}},
    {"o200k_base", PAT_O200K, 199998, 2, {{"<|endoftext|>", 199999}, {"<|endofprompt|>", 200018}}},
};
#define N_ENCS (sizeof ENC_DEFS / sizeof ENC_DEFS[0])

/* One hash slot (half a cache line): a token's first 24 bytes and its length live in the
 * slot, so a look-up compares without touching the token table for all but the longest. */
typedef struct {
    uint64_t k[3]; /* bytes 0..23, zero-padded, little-endian */
    uint32_t rank;
    uint32_t meta; /* hash bits << 8 | len; 0 = empty slot */
} slot;

struct mg_tok {
    const enc_def *def;
    uint32_t nranks;
    uint8_t *bytes;   /* every token's bytes, back to back */
    uint32_t *off;    /* rank -> offset in bytes; off[nranks] = end */
    slot *slots;
    uint64_t mask;
    size_t maxlen;    /* longest token, in bytes */
};

static mg_tok *g_loaded[N_ENCS];
static char g_dir[4096];
static char g_err[512];

/* ---- hashing ----------------------------------------------------------------------------- */

static inline uint32_t load32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* The first min(n, 8) bytes of p as a zero-padded little-endian integer, reading only p[0..n). */
static inline uint64_t load_head(const uint8_t *p, size_t n) {
    if (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        return v;
    }
    if (n >= 4) return (uint64_t)load32(p) | ((uint64_t)load32(p + n - 4) << (8 * (n - 4)));
    return (uint64_t)p[0] | ((uint64_t)p[n >> 1] << (8 * (n >> 1))) | ((uint64_t)p[n - 1] << (8 * (n - 1)));
}

static inline uint64_t mix64(uint64_t h) {
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ull;
    h ^= h >> 32;
    return h;
}

/* A look-up key: the bytes as the slot holds them, and the hash. */
typedef struct {
    uint64_t k[3];
    uint64_t h;
    uint32_t meta;
} key;

#define INLINE_KEY 24

static inline __attribute__((always_inline)) void make_key(const uint8_t *p, size_t n, key *k) {
    k->k[0] = load_head(p, n);
    k->k[1] = n > 8 ? load_head(p + 8, n - 8) : 0;
    k->k[2] = n > 16 ? load_head(p + 16, n - 16) : 0;
    uint64_t h = (k->k[0] ^ ((uint64_t)n << 56)) * 0x9e3779b97f4a7c15ull;
    if (n > 8) {
        h = (h ^ k->k[1]) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 29;
    }
    for (size_t i = 16; i < n; i += 8) {
        uint64_t v = load_head(p + i, n - i);
        h = (h ^ v) * 0x94d049bb133111ebull;
        h ^= h >> 29;
    }
    k->h = mix64(h);
    k->meta = (uint32_t)(k->h >> 40) << 8 | (uint32_t)n;
}

#define NO_RANK UINT32_MAX

static inline void prefetch_key(const mg_tok *t, const key *k) {
    __builtin_prefetch(&t->slots[k->h & t->mask]);
}

static inline uint32_t find_key(const mg_tok *t, const key *k, const uint8_t *p, size_t n) {
    for (uint64_t i = k->h & t->mask;; i = (i + 1) & t->mask) {
        const slot *s = &t->slots[i];
        if (s->meta == k->meta && s->k[0] == k->k[0] && s->k[1] == k->k[1] && s->k[2] == k->k[2] &&
            (n <= INLINE_KEY ||
             memcmp(t->bytes + t->off[s->rank] + INLINE_KEY, p + INLINE_KEY, n - INLINE_KEY) == 0))
            return s->rank;
        if (s->meta == 0) return NO_RANK;
    }
}

static inline uint32_t rank_of(const mg_tok *t, const uint8_t *p, size_t n) {
    if (n > t->maxlen) return NO_RANK;
    key k;
    make_key(p, n, &k);
    return find_key(t, &k, p, n);
}

/* ---- Unicode classes --------------------------------------------------------------------- */

enum {
    K_L = 1,   /* \p{L} */
    K_N = 2,   /* \p{N} */
    K_WS = 4,  /* \s: the White_Space property */
    K_NL = 8,  /* \r or \n */
    K_U = 16,  /* o200k's [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}] */
    K_W = 32,  /* o200k's [\p{Ll}\p{Lm}\p{Lo}\p{M}] */
};

static uint8_t g_bmp[65536]; /* class of every BMP code point */
static int g_bmp_ready;

#include "tokenizer_ucd.h"

/* The general category as tiktoken's tables have it: utf8proc's, except for the characters
 * Unicode added (or recategorized) after utf8proc's version, from UCD_PATCH. */
static int category_of(int32_t cp) {
    size_t lo = 0, hi = sizeof UCD_PATCH / sizeof UCD_PATCH[0] - 1; /* last: a sentinel */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (UCD_PATCH[mid].hi < cp) lo = mid + 1;
        else hi = mid;
    }
    if (UCD_PATCH[lo].lo <= cp && cp <= UCD_PATCH[lo].hi) return UCD_PATCH[lo].cat;
    return utf8proc_category(cp);
}

static uint8_t class_of_cp(int32_t cp) {
    uint8_t k = 0;
    switch (category_of(cp)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LT: k = K_L | K_U; break;
    case UTF8PROC_CATEGORY_LL: k = K_L | K_W; break;
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO: k = K_L | K_U | K_W; break;
    case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME:
        k = K_U | K_W; break;
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO: k = K_N; break;
    default: break;
    }
    if ((cp >= 0x09 && cp <= 0x0d) || cp == 0x20 || cp == 0x85 || cp == 0xa0 || cp == 0x1680 ||
        (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 || cp == 0x202f ||
        cp == 0x205f || cp == 0x3000)
        k |= K_WS;
    if (cp == '\r' || cp == '\n') k |= K_NL;
    return k;
}

static void init_classes(void) {
    if (g_bmp_ready) return;
    for (int32_t cp = 0; cp < 65536; cp++) g_bmp[cp] = class_of_cp(cp);
    g_bmp_ready = 1;
}

static inline int is_cont(uint8_t b) { return (b & 0xc0) == 0x80; }

/* Class and length of the character at s[i], i < n. An invalid sequence is its maximal
 * subpart (WHATWG / Unicode "U+FFFD substitution of maximal subparts"): U+FFFD, class 0. */
static inline __attribute__((always_inline)) unsigned cls_at(const uint8_t *s, size_t n, size_t i, size_t *len) {
    uint8_t b0 = s[i];
    if (b0 < 0x80) {
        *len = 1;
        return g_bmp[b0];
    }
    if (b0 >= 0xc2 && b0 <= 0xdf) {
        if (i + 1 < n && is_cont(s[i + 1])) {
            *len = 2;
            return g_bmp[((b0 & 0x1f) << 6) | (s[i + 1] & 0x3f)];
        }
        *len = 1;
        return 0;
    }
    if (b0 >= 0xe0 && b0 <= 0xef) {
        uint8_t lo = b0 == 0xe0 ? 0xa0 : 0x80, hi = b0 == 0xed ? 0x9f : 0xbf;
        if (i + 1 < n && s[i + 1] >= lo && s[i + 1] <= hi) {
            if (i + 2 < n && is_cont(s[i + 2])) {
                *len = 3;
                return g_bmp[((b0 & 0x0f) << 12) | ((s[i + 1] & 0x3f) << 6) | (s[i + 2] & 0x3f)];
            }
            *len = 2;
            return 0;
        }
        *len = 1;
        return 0;
    }
    if (b0 >= 0xf0 && b0 <= 0xf4) {
        uint8_t lo = b0 == 0xf0 ? 0x90 : 0x80, hi = b0 == 0xf4 ? 0x8f : 0xbf;
        if (i + 1 < n && s[i + 1] >= lo && s[i + 1] <= hi) {
            if (i + 2 < n && is_cont(s[i + 2])) {
                if (i + 3 < n && is_cont(s[i + 3])) {
                    *len = 4;
                    int32_t cp = ((b0 & 0x07) << 18) | ((s[i + 1] & 0x3f) << 12) |
                                 ((s[i + 2] & 0x3f) << 6) | (s[i + 3] & 0x3f);
                    return class_of_cp(cp);
                }
                *len = 3;
                return 0;
            }
            *len = 2;
            return 0;
        }
    }
    *len = 1;
    return 0;
}

/* Length of the next character (or invalid sequence) as a WHATWG decoder reads it. */
static inline size_t char_len(const uint8_t *s, size_t n, size_t i) {
    size_t l;
    (void)cls_at(s, n, i, &l);
    return l;
}

static int utf8_valid(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (i + 8 <= n) {
            uint64_t v;
            memcpy(&v, s + i, 8);
            if (!(v & 0x8080808080808080ull)) {
                i += 8;
                continue;
            }
        }
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t l;
        cls_at(s, n, i, &l);
        /* a valid multi-byte character is 2..4 bytes and its lead is C2..F4 with the right
         * continuation count; cls_at returns 1 or a short length for every invalid one */
        uint8_t b0 = s[i];
        size_t want = b0 >= 0xf0 ? 4 : b0 >= 0xe0 ? 3 : 2;
        if (b0 < 0xc2 || b0 > 0xf4 || l != want) return 0;
        i += l;
    }
    return 1;
}

/* ---- pre-tokenizer ----------------------------------------------------------------------- */

/* (?i:'s|'t|'re|'ve|'m|'ll|'d) at s[i]: its length or 0. Unicode case folding adds U+017F
 * (long s) to 's'; no other character folds to these letters. */
static inline size_t contraction(const uint8_t *s, size_t n, size_t i) {
    if (i + 1 >= n || s[i] != '\'') return 0;
    uint8_t c = s[i + 1];
    if (c < 0x80) {
        c |= 0x20;
        if (c == 's' || c == 't' || c == 'm' || c == 'd') return 2;
        if (i + 2 < n) {
            uint8_t d = s[i + 2] | 0x20;
            if ((c == 'r' || c == 'v') && d == 'e') return 3;
            if (c == 'l' && d == 'l') return 3;
        }
        return 0;
    }
    if (c == 0xc5 && i + 2 < n && s[i + 2] == 0xbf) return 3;
    return 0;
}

static inline size_t scan_while(const uint8_t *s, size_t n, size_t i, unsigned want) {
    while (i < n) {
        size_t l;
        if (!(cls_at(s, n, i, &l) & want)) break;
        i += l;
    }
    return i;
}

static inline size_t scan_until(const uint8_t *s, size_t n, size_t i, unsigned stop) {
    while (i < n) {
        size_t l;
        if (cls_at(s, n, i, &l) & stop) break;
        i += l;
    }
    return i;
}

/* The whitespace alternatives, c0 at i being whitespace:
 * \s*[\r\n]+ | \s+(?!\S) | \s+ */
static inline size_t ws_piece(const uint8_t *s, size_t n, size_t i, unsigned c0, size_t l0) {
    size_t k = i + l0, last = i, nl_end = (c0 & K_NL) ? k : 0;
    while (k < n) {
        size_t l;
        unsigned c = cls_at(s, n, k, &l);
        if (!(c & K_WS)) break;
        last = k;
        k += l;
        if (c & K_NL) nl_end = k;
    }
    if (nl_end) return nl_end;       /* ends after the run's last \r or \n */
    if (k == n) return n;            /* nothing follows: the whole run */
    if (last > i) return last;       /* leave the last space to the next word */
    return i + l0;
}

/* ' ?[^\s\p{L}\p{N}]+' then [\r\n]* (cl100k) or [\r\n/]* (o200k); 0 if it does not match. */
static inline size_t punct_piece(const uint8_t *s, size_t n, size_t i, unsigned c0, size_t l0,
                                 int slash) {
    size_t q = i;
    if (s[i] == ' ' && i + 1 < n) {
        size_t l1;
        if (!(cls_at(s, n, i + 1, &l1) & (K_WS | K_L | K_N))) q = i + 1;
    }
    if (q == i && (c0 & (K_WS | K_L | K_N))) return 0;
    size_t k = scan_until(s, n, q, K_WS | K_L | K_N);
    while (k < n && (s[k] == '\r' || s[k] == '\n' || (slash && s[k] == '/'))) k++;
    return k;
}

static inline size_t digits_piece(const uint8_t *s, size_t n, size_t i, size_t l0) {
    size_t k = i + l0;
    for (int t = 1; t < 3 && k < n; t++) {
        size_t l;
        if (!(cls_at(s, n, k, &l) & K_N)) break;
        k += l;
    }
    return k;
}

/* cl100k_base, as the npm tiktoken package compiles it:
 * (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*
 * |\s*[\r\n]+|\s+(?!\S)|\s+ */
static size_t piece_cl100k(const uint8_t *s, size_t n, size_t i) {
    size_t l0, k;
    unsigned c0 = cls_at(s, n, i, &l0);
    if (s[i] == '\'' && (k = contraction(s, n, i))) return i + k;
    if (c0 & K_L) return scan_while(s, n, i + l0, K_L);
    if (!(c0 & (K_N | K_NL)) && i + l0 < n) {
        size_t l1;
        if (cls_at(s, n, i + l0, &l1) & K_L) return scan_while(s, n, i + l0 + l1, K_L);
    }
    if (c0 & K_N) return digits_piece(s, n, i, l0);
    if ((k = punct_piece(s, n, i, c0, l0, 0))) return k;
    return ws_piece(s, n, i, c0, l0);
}

/* o200k letters, first form: U* W+ C? from st (U, W: the K_U, K_W classes). 0 if no match. */
static inline size_t o200k_lower(const uint8_t *s, size_t n, size_t st) {
    size_t k = st, last_w = 0, l, e;
    unsigned c = 0;
    while (k < n) {
        c = cls_at(s, n, k, &l);
        if (!(c & K_U)) break;
        k += l;
        if (c & K_W) last_w = k;
    }
    if (k < n && (c & K_W)) e = scan_while(s, n, k + l, K_W);
    else if (last_w) e = last_w; /* U* gives back up to its last char that is also in W */
    else return 0;
    return e + contraction(s, n, e);
}

/* second form: U+ W* C? */
static inline size_t o200k_upper(const uint8_t *s, size_t n, size_t st) {
    size_t k = scan_while(s, n, st, K_U);
    if (k == st) return 0;
    k = scan_while(s, n, k, K_W);
    return k + contraction(s, n, k);
}

/* o200k_base:
 * [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|…)?
 * |[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|…)?
 * |\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
 * A backtracking engine tries the optional prefix char taken, then not taken. */
static size_t piece_o200k(const uint8_t *s, size_t n, size_t i) {
    size_t l0, k;
    unsigned c0 = cls_at(s, n, i, &l0);
    int pre = !(c0 & (K_NL | K_L | K_N)) && i + l0 < n;
    if (pre && (k = o200k_lower(s, n, i + l0))) return k;
    if ((c0 & (K_U | K_W)) && (k = o200k_lower(s, n, i))) return k;
    if (pre && (k = o200k_upper(s, n, i + l0))) return k;
    if ((c0 & K_U) && (k = o200k_upper(s, n, i))) return k;
    if (c0 & K_N) return digits_piece(s, n, i, l0);
    if ((k = punct_piece(s, n, i, c0, l0, 1))) return k;
    return ws_piece(s, n, i, c0, l0);
}

/* ---- byte pair merges -------------------------------------------------------------------- */

#define SMALL_PIECE 64

/* Merges a piece of n bytes into tokens; writes token start offsets to starts[0..m) and
 * returns m. Same result as tiktoken: repeatedly merge the lowest-ranked adjacent pair, the
 * leftmost one on ties. Short pieces use an array scan; long ones a heap (O(n log n)). */
/* A heap entry, ordered as (rank, left start): rank << 40 | left start << 8 | pair length.
 * Ranks are below 2^24, starts below 2^32, tokens at most 255 bytes long. */
typedef uint64_t hent;
#define HENT(rank, pos, len) ((uint64_t)(rank) << 40 | (uint64_t)(pos) << 8 | (uint64_t)(len))

typedef struct {
    uint32_t *nxt, *prv;
    hent *heap;
    size_t cap; /* piece length the arrays fit */
} scratch;

static void scratch_free(scratch *w) {
    free(w->nxt);
    free(w->prv);
    free(w->heap);
    memset(w, 0, sizeof *w);
}

static int scratch_fit(scratch *w, size_t n) {
    if (w->cap >= n) return 0;
    scratch_free(w);
    w->nxt = malloc((n + 1) * sizeof *w->nxt);
    w->prv = malloc((n + 1) * sizeof *w->prv);
    w->heap = malloc(3 * (n + 1) * sizeof *w->heap);
    if (!w->nxt || !w->prv || !w->heap) {
        scratch_free(w);
        return -1;
    }
    w->cap = n;
    return 0;
}

static size_t bpe_small(const mg_tok *t, const uint8_t *p, size_t n, uint32_t *starts) {
    uint32_t pos[SMALL_PIECE + 1], rk[SMALL_PIECE + 1];
    size_t m = n; /* parts; pos[m] = n */
    key keys[SMALL_PIECE];
    for (size_t i = 0; i < n; i++) pos[i] = (uint32_t)i;
    pos[n] = (uint32_t)n;
    for (size_t i = 0; i + 1 < n; i++) {
        make_key(p + i, 2, &keys[i]);
        prefetch_key(t, &keys[i]);
    }
    for (size_t i = 0; i + 1 < n; i++) rk[i] = find_key(t, &keys[i], p + i, 2);
    rk[n - 1] = NO_RANK;
    for (;;) {
        uint32_t best = NO_RANK;
        size_t bi = 0;
        for (size_t i = 0; i + 1 < m; i++)
            if (rk[i] < best) best = rk[i], bi = i;
        if (best == NO_RANK) break;
        /* merge parts bi and bi+1 */
        memmove(pos + bi + 1, pos + bi + 2, (m - bi - 1) * sizeof *pos);
        memmove(rk + bi + 1, rk + bi + 2, (m - bi - 2) * sizeof *rk);
        m--;
        rk[bi] = bi + 1 < m ? rank_of(t, p + pos[bi], pos[bi + 2] - pos[bi]) : NO_RANK;
        if (bi > 0) rk[bi - 1] = rank_of(t, p + pos[bi - 1], pos[bi + 1] - pos[bi - 1]);
    }
    memcpy(starts, pos, m * sizeof *pos);
    return m;
}

/* A 4-ary min-heap: half the depth of a binary one, and the four children share a line. */
static void heap_down(hent *h, size_t n, size_t i) {
    hent x = h[i];
    for (;;) {
        size_t c = 4 * i + 1;
        if (c >= n) break;
        size_t best = c;
        size_t e = c + 4 < n ? c + 4 : n;
        for (size_t j = c + 1; j < e; j++)
            if (h[j] < h[best]) best = j;
        if (h[best] >= x) break;
        h[i] = h[best];
        i = best;
    }
    h[i] = x;
}

static void heap_push(hent *h, size_t *hn, hent x) {
    size_t i = (*hn)++;
    while (i > 0) {
        size_t par = (i - 1) / 4;
        if (h[par] <= x) break;
        h[i] = h[par];
        i = par;
    }
    h[i] = x;
}

static hent heap_pop(hent *h, size_t *hn) {
    hent top = h[0];
    size_t n = --(*hn);
    if (n) {
        h[0] = h[n];
        heap_down(h, n, 0);
    }
    return top;
}

/* Returns the number of tokens, or (size_t)-1 if memory ran out. starts may be NULL. */
static size_t bpe_large(const mg_tok *t, const uint8_t *p, size_t n, scratch *w, uint32_t *starts) {
    if (scratch_fit(w, n)) return (size_t)-1;
    uint32_t *nxt = w->nxt, *prv = w->prv; /* by part start; nxt[x] == 0 marks a dead part */
    hent *h = w->heap;
    size_t hn = 0, m = n;
    for (size_t i = 0; i < n; i++) {
        nxt[i] = (uint32_t)(i + 1);
        prv[i] = (uint32_t)(i ? i - 1 : 0);
    }
    /* the initial pairs, looked up with prefetching, then heapified in O(n) */
    enum { AHEAD = 16 };
    key ks[AHEAD];
    for (size_t i = 0; i + 1 < n && i < AHEAD; i++) {
        make_key(p + i, 2, &ks[i]);
        prefetch_key(t, &ks[i]);
    }
    for (size_t i = 0; i + 1 < n; i++) {
        uint32_t r = find_key(t, &ks[i % AHEAD], p + i, 2);
        if (i + AHEAD + 1 < n) {
            make_key(p + i + AHEAD, 2, &ks[i % AHEAD]);
            prefetch_key(t, &ks[i % AHEAD]);
        }
        if (r != NO_RANK) h[hn++] = HENT(r, i, 2);
    }
    for (size_t i = hn / 4 + 1; i-- > 0;)
        if (i < hn) heap_down(h, hn, i);
    while (hn) {
        hent e = heap_pop(h, &hn);
        uint32_t a = (uint32_t)(e >> 8), b = nxt[a], end = a + (uint32_t)(e & 0xff);
        if (b == 0 || b >= n || nxt[b] != end) continue; /* stale */
        /* merge a and b */
        nxt[a] = end;
        nxt[b] = 0;
        if (end < n) prv[end] = a;
        m--;
        if (a > 0) {
            uint32_t l = prv[a];
            uint32_t r = rank_of(t, p + l, end - l);
            if (r != NO_RANK) heap_push(h, &hn, HENT(r, l, end - l));
        }
        if (end < n) {
            uint32_t e2 = nxt[end];
            uint32_t r = rank_of(t, p + a, e2 - a);
            if (r != NO_RANK) heap_push(h, &hn, HENT(r, a, e2 - a));
        }
    }
    if (starts) {
        size_t k = 0;
        for (uint32_t x = 0; x < n; x = nxt[x]) starts[k++] = x;
    }
    return m;
}

/* ---- the driver: pieces -> tokens -> sink ------------------------------------------------- */

enum { MODE_COUNT, MODE_ENCODE, MODE_TRUNCATE };

typedef struct {
    int mode;
    size_t n;          /* tokens so far */
    uint32_t *ids;     /* encode */
    size_t cap;
    size_t max;        /* truncate: token budget */
    size_t cut;        /* truncate: bytes of the prefix so far */
    int done;
    scratch w;
    uint32_t *starts;  /* token starts of a piece (heap-sized for long pieces) */
    size_t starts_cap;
    uint8_t *fix;      /* a piece with invalid UTF-8, as U+FFFD-substituted bytes */
    uint32_t *fix_map; /* fix offset -> original offset at character starts, else UINT32_MAX */
    size_t fix_cap;
} sink;

static void sink_free(sink *k) {
    scratch_free(&k->w);
    free(k->starts);
    free(k->fix);
    free(k->fix_map);
}

static int ensure_starts(sink *k, size_t n) {
    if (k->starts_cap >= n + 1) return 0;
    size_t c = n + 1 < 256 ? 256 : n + 1;
    uint32_t *s = realloc(k->starts, c * sizeof *s);
    if (!s) return -1;
    k->starts = s;
    k->starts_cap = c;
    return 0;
}

/* ---- piece cache ------------------------------------------------------------------------- */

/* Words that are not one token recur (names, numbers, code identifiers); each costs a few
 * dozen look-ups to merge. A small direct-mapped cache per thread remembers the token
 * boundaries of recent short pieces. Entries are checked byte for byte. */
#define PC_ENTRIES 4096
#define PC_BYTES 24

typedef struct {
    uint64_t h;
    uint8_t len, enc, ntok, pad;
    uint8_t bytes[PC_BYTES];
    uint8_t ends[PC_BYTES]; /* token ends within the piece */
    uint32_t pad2;
} pc_entry; /* one cache line */

static pthread_key_t g_pc_key;
static pthread_once_t g_pc_once = PTHREAD_ONCE_INIT;
static void pc_key_init(void) { pthread_key_create(&g_pc_key, free); }

static pc_entry *pc_table(void) {
    pthread_once(&g_pc_once, pc_key_init);
    pc_entry *c = pthread_getspecific(g_pc_key);
    if (!c) {
        c = aligned_alloc(64, PC_ENTRIES * sizeof *c);
        if (!c) return NULL;
        memset(c, 0, PC_ENTRIES * sizeof *c);
        pthread_setspecific(g_pc_key, c);
    }
    return c;
}

/* Token ends of piece p[0..n) into ends[0..m), m returned; from the cache when it has them. */
static size_t piece_bpe(const mg_tok *t, const uint8_t *p, size_t n, const key *pk, sink *k,
                        uint32_t *starts) {
    pc_entry *e = NULL;
    uint8_t enc = (uint8_t)(t->def - ENC_DEFS);
    if (pk && n <= PC_BYTES && (e = pc_table())) {
        e += (pk->h >> 20) & (PC_ENTRIES - 1);
        if (e->h == pk->h && e->len == n && e->enc == enc && memcmp(e->bytes, p, n) == 0) {
            starts[0] = 0;
            for (size_t j = 0; j < e->ntok; j++) starts[j + 1] = e->ends[j];
            return e->ntok;
        }
    }
    size_t m = n <= SMALL_PIECE ? bpe_small(t, p, n, starts) : bpe_large(t, p, n, &k->w, starts);
    if (m == (size_t)-1) return m;
    starts[m] = (uint32_t)n;
    if (e) {
        e->h = pk->h;
        e->len = (uint8_t)n;
        e->enc = enc;
        e->ntok = (uint8_t)m;
        memcpy(e->bytes, p, n);
        for (size_t j = 0; j < m; j++) e->ends[j] = (uint8_t)starts[j + 1];
    }
    return m;
}

/* Encodes one piece p[0..n) (valid UTF-8). orig/omap locate it in the caller's text for
 * truncation: token boundary at piece offset x is text offset omap ? omap[x] : orig + x.
 * r: the whole piece's rank, looked up by the caller; pk: its key, or NULL. */
static int emit_piece(const mg_tok *t, const uint8_t *p, size_t n, sink *k, size_t orig,
                      const uint32_t *omap, uint32_t r, const key *pk) {
    /* fast path: the whole piece is a token */
    if (r != NO_RANK) {
        if (k->mode == MODE_TRUNCATE) {
            if (k->n + 1 > k->max) {
                k->done = 1;
                return 0;
            }
            k->cut = omap ? omap[n] : orig + n;
        } else if (k->mode == MODE_ENCODE && k->n < k->cap) {
            k->ids[k->n] = r;
        }
        k->n++;
        return 0;
    }
    if (k->mode == MODE_COUNT && n <= SMALL_PIECE) {
        uint32_t st[SMALL_PIECE + 1];
        size_t m = piece_bpe(t, p, n, pk, k, st);
        k->n += m;
        return 0;
    }
    if (k->mode == MODE_COUNT) {
        size_t m = bpe_large(t, p, n, &k->w, NULL);
        if (m == (size_t)-1) return MG_ERROR;
        k->n += m;
        return 0;
    }
    if (ensure_starts(k, n)) return MG_ERROR;
    size_t m = piece_bpe(t, p, n, pk, k, k->starts);
    if (m == (size_t)-1) return MG_ERROR;
    uint32_t *st = k->starts;
    if (k->mode == MODE_ENCODE) {
        for (size_t j = 0; j < m; j++, k->n++)
            if (k->n < k->cap) k->ids[k->n] = rank_of(t, p + st[j], st[j + 1] - st[j]);
        return 0;
    }
    /* truncate: take tokens while the budget lasts, cutting only between characters */
    for (size_t j = 0; j < m; j++) {
        if (k->n + 1 > k->max) {
            k->done = 1;
            return 0;
        }
        k->n++;
        size_t x = st[j + 1];
        if (omap) {
            if (omap[x] != UINT32_MAX) k->cut = omap[x];
        } else if (x == n || !is_cont(p[x])) {
            k->cut = orig + x;
        }
    }
    return 0;
}

/* Substitutes U+FFFD for each invalid sequence of s[a..b) into k->fix, with the offset map. */
static int fix_piece(sink *k, const uint8_t *s, size_t n, size_t a, size_t b, size_t *fn) {
    size_t need = 3 * (b - a) + 1;
    if (k->fix_cap < need) {
        uint8_t *f = realloc(k->fix, need);
        if (!f) return -1;
        k->fix = f;
        uint32_t *m = realloc(k->fix_map, need * sizeof *m);
        if (!m) return -1;
        k->fix_map = m;
        k->fix_cap = need;
    }
    size_t o = 0;
    for (size_t i = a; i < b;) {
        size_t l = char_len(s, n, i);
        uint8_t b0 = s[i];
        size_t want = b0 < 0x80 ? 1 : b0 >= 0xf0 ? 4 : b0 >= 0xe0 ? 3 : 2;
        int ok = b0 < 0x80 || (b0 >= 0xc2 && b0 <= 0xf4 && l == want);
        k->fix_map[o] = (uint32_t)i;
        if (ok) {
            for (size_t j = 0; j < l; j++) {
                if (j) k->fix_map[o] = UINT32_MAX;
                k->fix[o++] = s[i + j];
            }
        } else {
            k->fix[o++] = 0xef;
            k->fix_map[o] = UINT32_MAX;
            k->fix[o++] = 0xbf;
            k->fix_map[o] = UINT32_MAX;
            k->fix[o++] = 0xbd;
        }
        i += l;
    }
    k->fix_map[o] = (uint32_t)b;
    *fn = o;
    return 0;
}

/* Ordinary text s[a..b): split into pieces, merge each. */
/* Pieces are split and looked up in batches: the whole-piece look-ups of a batch are
 * prefetched together, so their cache misses overlap instead of following one another. */
#define BATCH 16

/* Ordinary text s[a..b): split into pieces, merge each. */
static int run_ordinary(const mg_tok *t, const uint8_t *s, size_t a, size_t b, int valid, sink *k) {
    size_t (*next)(const uint8_t *, size_t, size_t) =
        t->def->pattern == PAT_O200K ? piece_o200k : piece_cl100k;
    const uint8_t *seg = s + a; /* the regex sees this segment as the whole text */
    size_t n = b - a;
    size_t ps[BATCH + 1];
    key keys[BATCH];
    uint8_t ok[BATCH]; /* 1: valid UTF-8 and short enough to be a token */
    for (size_t i = 0; i < n && !k->done;) {
        int m = 0;
        ps[0] = i;
        while (m < BATCH && ps[m] < n) {
            size_t st = ps[m], e = next(seg, n, st);
            ps[++m] = e;
            size_t len = e - st;
            ok[m - 1] = len <= t->maxlen && (valid || utf8_valid(seg + st, len));
            if (ok[m - 1]) {
                make_key(seg + st, len, &keys[m - 1]);
                prefetch_key(t, &keys[m - 1]);
            }
        }
        for (int j = 0; j < m && !k->done; j++) {
            size_t st = ps[j], e = ps[j + 1];
            int rc;
            if (ok[j]) {
                uint32_t r = find_key(t, &keys[j], seg + st, e - st);
                rc = emit_piece(t, seg + st, e - st, k, a + st, NULL, r, &keys[j]);
            } else if (valid || utf8_valid(seg + st, e - st)) {
                rc = emit_piece(t, seg + st, e - st, k, a + st, NULL, NO_RANK, NULL); /* too long */
            } else {
                size_t fn;
                if (fix_piece(k, seg, n, st, e, &fn)) return MG_ERROR;
                /* the map holds segment offsets; shift them to text offsets */
                for (size_t x = 0; x <= fn; x++)
                    if (k->fix_map[x] != UINT32_MAX) k->fix_map[x] += (uint32_t)a;
                rc = emit_piece(t, k->fix, fn, k, a + st, k->fix_map, rank_of(t, k->fix, fn), NULL);
            }
            if (rc) return rc;
        }
        i = ps[m];
    }
    return MG_OK;
}

/* Finds the first allowed special token at or after s[i]: its start, or n; *which its index. */
static size_t find_special(const mg_tok *t, const uint8_t *s, size_t n, size_t i, uint32_t allowed,
                           uint32_t *which) {
    while (i + 1 < n) {
        const uint8_t *q = memchr(s + i, '<', n - i - 1);
        if (!q) return n;
        i = (size_t)(q - s);
        if (s[i + 1] == '|') {
            for (uint32_t j = 0; j < t->def->nspecial; j++) {
                if (!(allowed & (1u << j))) continue;
                const char *sp = t->def->special[j].text;
                size_t sl = strlen(sp);
                if (sl <= n - i && memcmp(s + i, sp, sl) == 0) {
                    *which = j;
                    return i;
                }
            }
        }
        i++;
    }
    return n;
}

static int run(const mg_tok *t, const char *text, size_t n, uint32_t allowed, sink *k) {
    if (!t || (!text && n)) return MG_ERROR;
    const uint8_t *s = (const uint8_t *)text;
    if (n > UINT32_MAX - 4) return MG_ERROR; /* offsets are 32-bit */
    int valid = utf8_valid(s, n);
    size_t i = 0;
    allowed &= (1u << t->def->nspecial) - 1;
    while (i < n && !k->done) {
        uint32_t which = 0;
        size_t sp = allowed ? find_special(t, s, n, i, allowed, &which) : n;
        int rc = run_ordinary(t, s, i, sp, valid, k);
        if (rc) return rc;
        if (sp == n || k->done) break;
        size_t sl = strlen(t->def->special[which].text);
        if (k->mode == MODE_TRUNCATE) {
            if (k->n + 1 > k->max) {
                k->done = 1;
                break;
            }
            k->cut = sp + sl;
        } else if (k->mode == MODE_ENCODE && k->n < k->cap) {
            k->ids[k->n] = t->def->special[which].id;
        }
        k->n++;
        i = sp + sl;
    }
    return MG_OK;
}

/* ---- public API -------------------------------------------------------------------------- */

MG_API int mg_tok_count_special(const mg_tok *t, const char *s, size_t n, uint32_t allowed,
                                size_t *out) {
    sink k = {.mode = MODE_COUNT};
    int rc = run(t, s, n, allowed, &k);
    sink_free(&k);
    if (out) *out = k.n;
    return rc;
}

MG_API int mg_tok_count(const mg_tok *t, const char *s, size_t n, size_t *out) {
    return mg_tok_count_special(t, s, n, 0, out);
}

MG_API int mg_tok_encode_special(const mg_tok *t, const char *s, size_t n, uint32_t allowed,
                                 uint32_t *ids, size_t cap, size_t *nout) {
    sink k = {.mode = MODE_ENCODE, .ids = ids, .cap = ids ? cap : 0};
    int rc = run(t, s, n, allowed, &k);
    sink_free(&k);
    if (nout) *nout = k.n;
    if (rc) return rc;
    return k.n > k.cap ? MG_AGAIN : MG_OK;
}

MG_API int mg_tok_encode(const mg_tok *t, const char *s, size_t n, uint32_t *ids, size_t cap,
                         size_t *nout) {
    return mg_tok_encode_special(t, s, n, 0, ids, cap, nout);
}

MG_API int mg_tok_truncate_special(const mg_tok *t, const char *s, size_t n, uint32_t allowed,
                                   size_t max_tokens, size_t *prefix_bytes) {
    size_t budget = max_tokens;
    for (;;) {
        sink k = {.mode = MODE_TRUNCATE, .max = budget};
        int rc = run(t, s, n, allowed, &k);
        sink_free(&k);
        if (rc) return rc;
        if (!k.done) { /* the whole text fits */
            if (prefix_bytes) *prefix_bytes = n;
            return MG_OK;
        }
        /* re-encoding a prefix may split its last piece differently; make sure it fits */
        size_t c;
        rc = mg_tok_count_special(t, s, k.cut, allowed, &c);
        if (rc) return rc;
        if (c <= max_tokens || k.cut == 0) {
            if (prefix_bytes) *prefix_bytes = k.cut;
            return MG_OK;
        }
        budget = k.n > 0 ? k.n - 1 : 0;
    }
}

MG_API int mg_tok_truncate(const mg_tok *t, const char *s, size_t n, size_t max_tokens,
                           size_t *prefix_bytes) {
    return mg_tok_truncate_special(t, s, n, 0, max_tokens, prefix_bytes);
}

MG_API int mg_tok_rank(const mg_tok *t, const char *p, size_t n, uint32_t *id) {
    if (!t || (!p && n)) return MG_ERROR;
    uint32_t r = n ? rank_of(t, (const uint8_t *)p, n) : NO_RANK;
    for (uint32_t j = 0; r == NO_RANK && j < t->def->nspecial; j++)
        if (strlen(t->def->special[j].text) == n && memcmp(t->def->special[j].text, p, n) == 0)
            r = t->def->special[j].id;
    if (r == NO_RANK) return MG_DECLINED;
    if (id) *id = r;
    return MG_OK;
}

MG_API int mg_tok_token_bytes(const mg_tok *t, uint32_t id, const char **p, size_t *len) {
    if (!t) return MG_ERROR;
    if (id < t->nranks) {
        *p = (const char *)t->bytes + t->off[id];
        *len = t->off[id + 1] - t->off[id];
        return MG_OK;
    }
    for (uint32_t j = 0; j < t->def->nspecial; j++) {
        if (t->def->special[j].id == id) {
            *p = t->def->special[j].text;
            *len = strlen(*p);
            return MG_OK;
        }
    }
    return MG_DECLINED;
}

MG_API int mg_tok_decode(const mg_tok *t, const uint32_t *ids, size_t n, char *out, size_t cap,
                         size_t *nout) {
    if (!t || (!ids && n)) return MG_ERROR;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        const char *p;
        size_t l;
        if (mg_tok_token_bytes(t, ids[i], &p, &l) != MG_OK) {
            if (nout) *nout = i;
            return MG_DECLINED;
        }
        if (out && o + l <= cap) memcpy(out + o, p, l);
        else cap = o; /* once something did not fit, write nothing more */
        o += l;
    }
    if (nout) *nout = o;
    return o > cap || (!out && o) ? MG_AGAIN : MG_OK;
}

MG_API const char *mg_tok_name(const mg_tok *t) { return t ? t->def->name : NULL; }
MG_API uint32_t mg_tok_vocab_size(const mg_tok *t) {
    if (!t) return 0;
    uint32_t v = t->nranks;
    for (uint32_t j = 0; j < t->def->nspecial; j++)
        if (t->def->special[j].id + 1 > v) v = t->def->special[j].id + 1;
    return v;
}

MG_API int mg_tok_special(const mg_tok *t, uint32_t i, const char **text, uint32_t *id) {
    if (!t || i >= t->def->nspecial) return MG_DECLINED;
    if (text) *text = t->def->special[i].text;
    if (id) *id = t->def->special[i].id;
    return MG_OK;
}

MG_API const char *mg_tok_error(void) { return g_err; }

MG_API int mg_tok_set_dir(const char *dir) {
    if (!dir || strlen(dir) >= sizeof g_dir) return MG_ERROR;
    strcpy(g_dir, dir);
    return MG_OK;
}

/* ---- loading ----------------------------------------------------------------------------- */

static int b64val(uint8_t c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Decodes base64 s[0..n) into out; returns bytes written or -1. */
static long b64decode(const uint8_t *s, size_t n, uint8_t *out) {
    long o = 0;
    uint32_t acc = 0;
    int bits = 0;
    size_t i = 0;
    for (; i < n && s[i] != '='; i++) {
        int v = b64val(s[i]);
        if (v < 0) return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    for (; i < n; i++)
        if (s[i] != '=') return -1;
    return o;
}

static void rank_path(const char *name, char *buf, size_t cap) {
    if (g_dir[0]) snprintf(buf, cap, "%s/%s.tiktoken", g_dir, name);
    else snprintf(buf, cap, "%s/data/tokenizers/%s.tiktoken", mg_home(), name);
}

/* The hash table is read at random: 2 MB pages spare the TLB a miss on most look-ups. */
#define HUGE_PAGE (2u << 20)

static void *alloc_table(size_t bytes) {
    size_t sz = (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
    void *p = aligned_alloc(HUGE_PAGE, sz);
    if (!p) return NULL;
#ifdef MADV_HUGEPAGE
    madvise(p, sz, MADV_HUGEPAGE);
#endif
    memset(p, 0, sz);
    return p;
}

static void tok_free(mg_tok *t) {
    if (!t) return;
    free(t->bytes);
    free(t->off);
    free(t->slots);
    free(t);
}

static mg_tok *load_ranks(const enc_def *d) {
    char path[4200];
    rank_path(d->name, path, sizeof path);
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(g_err, sizeof g_err, "cannot open rank file %.400s: %s", path, strerror(errno));
        return NULL;
    }
    uint8_t *data = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 65536 > cap) {
            cap = cap ? cap * 2 : 1 << 22;
            uint8_t *nd = realloc(data, cap);
            if (!nd) {
                free(data);
                fclose(f);
                snprintf(g_err, sizeof g_err, "out of memory");
                return NULL;
            }
            data = nd;
        }
        size_t r = fread(data + len, 1, cap - len, f);
        len += r;
        if (r == 0) break;
    }
    fclose(f);

    mg_tok *t = calloc(1, sizeof *t);
    uint32_t N = d->nranks;
    if (t) {
        t->def = d;
        t->nranks = N;
        t->bytes = malloc(len); /* decoded bytes are shorter than their base64 lines */
        t->off = calloc((size_t)N + 2, sizeof *t->off);
    }
    uint32_t *blen = calloc((size_t)N + 1, sizeof *blen);
    uint8_t *tmp = malloc(len + 1);
    uint32_t *boff = calloc((size_t)N + 1, sizeof *boff);
    uint8_t *seen = calloc(N, 1);
    const char *why = NULL;
    if (!t || !t->bytes || !t->off || !blen || !tmp || !boff || !seen) why = "out of memory";
    /* pass 1: decode each line into tmp in file order, remember where each rank landed */
    size_t o = 0, i = 0, lines = 0;
    while (!why && i < len) {
        size_t e = i;
        while (e < len && data[e] != '\n') e++;
        size_t ln = e;
        if (ln > i && data[ln - 1] == '\r') ln--;
        if (ln > i) {
            size_t sp = i;
            while (sp < ln && data[sp] != ' ') sp++;
            if (sp == ln || sp == i) { why = "malformed line"; break; }
            unsigned long r = 0;
            size_t q = sp + 1;
            if (q == ln) { why = "malformed line"; break; }
            for (; q < ln; q++) {
                if (data[q] < '0' || data[q] > '9' || r > 100000000ul) { why = "malformed rank"; break; }
                r = r * 10 + (data[q] - '0');
            }
            if (why) break;
            if (r >= N || seen[r]) { why = "unexpected rank"; break; }
            long bl = b64decode(data + i, sp - i, tmp + o);
            if (bl <= 0) { why = "bad base64"; break; }
            seen[r] = 1;
            boff[r] = (uint32_t)o;
            blen[r] = (uint32_t)bl;
            o += (size_t)bl;
            lines++;
        }
        i = e + 1;
    }
    if (!why && lines != N) why = "missing ranks";
    if (!why) {
        /* pass 2: lay tokens out by rank so rank -> bytes is off[r]..off[r+1] */
        size_t p = 0;
        for (uint32_t r = 0; r < N; r++) {
            t->off[r] = (uint32_t)p;
            memcpy(t->bytes + p, tmp + boff[r], blen[r]);
            p += blen[r];
            if (blen[r] > t->maxlen) t->maxlen = blen[r];
            if (blen[r] > 255) why = "token longer than 255 bytes";
        }
        t->off[N] = (uint32_t)p;
        uint8_t *shrunk = realloc(t->bytes, p ? p : 1); /* base64 took a third more */
        if (shrunk) t->bytes = shrunk;
        size_t slots = 1;
        while (slots < (size_t)N * 2) slots <<= 1;
        t->slots = alloc_table(slots * sizeof *t->slots);
        t->mask = slots - 1;
        if (!t->slots) why = "out of memory";
        for (uint32_t r = 0; !why && r < N; r++) {
            const uint8_t *kb = t->bytes + t->off[r];
            size_t kl = t->off[r + 1] - t->off[r];
            key k;
            make_key(kb, kl, &k);
            uint64_t x = k.h & t->mask;
            while (t->slots[x].meta) x = (x + 1) & t->mask;
            memcpy(t->slots[x].k, k.k, sizeof k.k);
            t->slots[x].meta = k.meta;
            t->slots[x].rank = r;
        }
        for (int b = 0; !why && b < 256; b++) {
            uint8_t c = (uint8_t)b;
            if (rank_of(t, &c, 1) == NO_RANK) why = "a byte has no rank";
        }
    }
    free(data);
    free(blen);
    free(tmp);
    free(boff);
    free(seen);
    if (why) {
        snprintf(g_err, sizeof g_err, "bad rank file %.400s: %s", path, why);
        tok_free(t);
        return NULL;
    }
    return t;
}

MG_API const mg_tok *mg_tok_get(const char *name, const char **err) {
    for (size_t i = 0; name && i < N_ENCS; i++) {
        if (strcmp(ENC_DEFS[i].name, name) != 0) continue;
        if (!g_loaded[i]) {
            init_classes();
            g_loaded[i] = load_ranks(&ENC_DEFS[i]);
            if (!g_loaded[i]) {
                if (err) *err = g_err;
                return NULL;
            }
        }
        return g_loaded[i];
    }
    snprintf(g_err, sizeof g_err, "unknown encoding");
    if (err) *err = g_err;
    return NULL;
}

MG_API int mg_tok_load(const char *name) { return mg_tok_get(name, NULL) ? MG_OK : MG_ERROR; }
