/* bm25.c: inverted index with Lucene BM25 scoring. Postings are doc-ordered arrays of
 * (docno, tf) with a precomputed impact tf/(tf + k1*(1-b+b*dl/avgdl)) per posting, so a
 * query is a term-at-a-time scan into a dense accumulator followed by a k-sized heap; large
 * indexes use MaxScore over document windows instead, with the same results. */
#include "bm25.h"
#include "analyzer.h"
#include "checked_file.h"
#include "topk.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mg_bm25 {
    double k1, b;
    mg_analyzer *an;
    int committed;

    /* term dictionary: open addressing, slot = term id + 1 (0 = empty) */
    uint32_t *slots;
    size_t slot_mask;
    uint64_t *term_hash;
    uint32_t *term_off, *term_len, *df;
    uint32_t nterms, terms_cap;
    char *arena;
    size_t arena_len, arena_cap;

    /* while adding: (term, tf) pairs in doc order, and per-term scratch */
    uint32_t *pair_term, *pair_tf;
    size_t npairs, pairs_cap;
    uint32_t *last_doc, *slot_in_doc;

    uint32_t *doc_len, *doc_uniq;
    uint32_t ndocs, docs_cap;
    uint64_t total_len;

    /* after commit */
    uint64_t *post_start;   /* nterms + 1 */
    uint32_t *post_doc, *post_tf;
    float *post_impact, *idf, *max_impact;
    int mode;               /* query strategy: 0 auto, 1 term at a time, 2 MaxScore */
    uint64_t nposts;
    float *acc;
    uint32_t *touched;
};

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h ^ (h >> 29);
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 16;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c * elem);
    if (!q)
        return -1;
    *p = q;
    *cap = c;
    return 0;
}

static int64_t dict_find(const mg_bm25 *ix, const char *t, size_t len, uint64_t h)
{
    if (!ix->slots)
        return -1;
    for (size_t i = h & ix->slot_mask;; i = (i + 1) & ix->slot_mask) {
        uint32_t s = ix->slots[i];
        if (!s)
            return -1;
        uint32_t id = s - 1;
        if (ix->term_hash[id] == h && ix->term_len[id] == len &&
            memcmp(ix->arena + ix->term_off[id], t, len) == 0)
            return id;
    }
}

static int dict_rehash(mg_bm25 *ix, size_t nslots)
{
    uint32_t *slots = calloc(nslots, sizeof *slots);
    if (!slots)
        return -1;
    size_t mask = nslots - 1;
    for (uint32_t id = 0; id < ix->nterms; id++) {
        size_t i = ix->term_hash[id] & mask;
        while (slots[i])
            i = (i + 1) & mask;
        slots[i] = id + 1;
    }
    free(ix->slots);
    ix->slots = slots;
    ix->slot_mask = mask;
    return 0;
}

/* Term id of t, adding it when new; -1 on out of memory. */
static int64_t dict_intern(mg_bm25 *ix, const char *t, size_t len)
{
    uint64_t h = hash_bytes(t, len);
    int64_t id = dict_find(ix, t, len, h);
    if (id >= 0)
        return id;
    if (ix->nterms == UINT32_MAX - 1)
        return -1;
    if ((size_t)(ix->nterms + 1) * 2 > (ix->slots ? ix->slot_mask + 1 : 0) &&
        dict_rehash(ix, ix->slots ? (ix->slot_mask + 1) * 2 : 1024) < 0)
        return -1;
    if (ix->nterms == ix->terms_cap) {
        size_t cap = ix->terms_cap ? ix->terms_cap * 2 : 1024;
        uint64_t *th = realloc(ix->term_hash, cap * sizeof *th);
        if (th) ix->term_hash = th;
        uint32_t *to = realloc(ix->term_off, cap * sizeof *to);
        if (to) ix->term_off = to;
        uint32_t *tl = realloc(ix->term_len, cap * sizeof *tl);
        if (tl) ix->term_len = tl;
        uint32_t *df = realloc(ix->df, cap * sizeof *df);
        if (df) ix->df = df;
        uint32_t *ld = realloc(ix->last_doc, cap * sizeof *ld);
        if (ld) ix->last_doc = ld;
        uint32_t *sd = realloc(ix->slot_in_doc, cap * sizeof *sd);
        if (sd) ix->slot_in_doc = sd;
        if (!th || !to || !tl || !df || !ld || !sd)
            return -1;
        ix->terms_cap = (uint32_t)cap;
    }
    if (ix->arena_len + len > UINT32_MAX ||
        grow((void **)&ix->arena, &ix->arena_cap, ix->arena_len + len, 1) < 0)
        return -1;
    id = ix->nterms++;
    memcpy(ix->arena + ix->arena_len, t, len);
    ix->term_off[id] = (uint32_t)ix->arena_len;
    ix->term_len[id] = (uint32_t)len;
    ix->term_hash[id] = h;
    ix->df[id] = 0;
    ix->last_doc[id] = UINT32_MAX;
    ix->arena_len += len;
    size_t i = h & ix->slot_mask;
    while (ix->slots[i])
        i = (i + 1) & ix->slot_mask;
    ix->slots[i] = (uint32_t)id + 1;
    return id;
}

mg_bm25 *mg_bm25_new(double k1, double b, const char *stem, int stopwords, const char **err)
{
    if (!(k1 >= 0 && k1 <= 1e6) || !(b >= 0 && b <= 1)) {
        if (err) *err = "k1 must be >= 0 and b within [0, 1]";
        return NULL;
    }
    mg_bm25 *ix = calloc(1, sizeof *ix);
    if (!ix) {
        if (err) *err = "out of memory";
        return NULL;
    }
    ix->k1 = k1;
    ix->b = b;
    if (!(ix->an = mg_analyzer_new(stem, stopwords, err))) {
        free(ix);
        return NULL;
    }
    return ix;
}

static void free_build(mg_bm25 *ix)
{
    free(ix->pair_term);
    free(ix->pair_tf);
    free(ix->last_doc);
    free(ix->slot_in_doc);
    free(ix->doc_uniq);
    ix->pair_term = ix->pair_tf = ix->last_doc = ix->slot_in_doc = ix->doc_uniq = NULL;
    ix->npairs = ix->pairs_cap = 0;
}

void mg_bm25_free(mg_bm25 *ix)
{
    if (!ix)
        return;
    free_build(ix);
    mg_analyzer_free(ix->an);
    free(ix->slots);
    free(ix->term_hash);
    free(ix->term_off);
    free(ix->term_len);
    free(ix->df);
    free(ix->arena);
    free(ix->doc_len);
    free(ix->post_start);
    free(ix->post_doc);
    free(ix->post_tf);
    free(ix->post_impact);
    free(ix->max_impact);
    free(ix->idf);
    free(ix->acc);
    free(ix->touched);
    free(ix);
}

int mg_bm25_add(mg_bm25 *ix, const char *text, size_t len, uint32_t *docno, const char **err)
{
    if (ix->committed) {
        if (err) *err = "committed";
        return MG_ERROR;
    }
    if (ix->ndocs == UINT32_MAX - 1) {
        if (err) *err = "too many documents";
        return MG_ERROR;
    }
    const char *buf;
    const uint32_t *offs;
    size_t n;
    if (mg_analyzer_run(ix->an, text, len, &buf, &offs, &n, err) != MG_OK)
        return MG_ERROR;
    uint32_t d = ix->ndocs;
    if (ix->ndocs == ix->docs_cap) {
        size_t cap = ix->docs_cap ? (size_t)ix->docs_cap * 2 : 1024;
        if (cap > UINT32_MAX) cap = UINT32_MAX;
        uint32_t *dl = realloc(ix->doc_len, cap * sizeof *dl);
        if (dl) ix->doc_len = dl;
        uint32_t *du = realloc(ix->doc_uniq, cap * sizeof *du);
        if (du) ix->doc_uniq = du;
        if (!dl || !du)
            goto oom;
        ix->docs_cap = (uint32_t)cap;
    }
    size_t first = ix->npairs;
    if (ix->npairs + n > ix->pairs_cap) {
        size_t cap = ix->pairs_cap ? ix->pairs_cap : 4096;
        while (cap < ix->npairs + n)
            cap *= 2;
        uint32_t *pt = realloc(ix->pair_term, cap * sizeof *pt);
        if (pt) ix->pair_term = pt;
        uint32_t *pf = realloc(ix->pair_tf, cap * sizeof *pf);
        if (pf) ix->pair_tf = pf;
        if (!pt || !pf)
            goto oom;
        ix->pairs_cap = cap;
    }
    for (size_t i = 0; i < n; i++) {
        int64_t id = dict_intern(ix, buf + offs[i], offs[i + 1] - offs[i]);
        if (id < 0)
            goto oom_undo;
        if (ix->last_doc[id] != d) {
            ix->last_doc[id] = d;
            ix->slot_in_doc[id] = (uint32_t)ix->npairs;
            ix->pair_term[ix->npairs] = (uint32_t)id;
            ix->pair_tf[ix->npairs] = 1;
            ix->npairs++;
            ix->df[id]++;
        } else {
            ix->pair_tf[ix->slot_in_doc[id]]++;
        }
    }
    ix->doc_len[d] = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
    ix->doc_uniq[d] = (uint32_t)(ix->npairs - first);
    ix->total_len += n;
    ix->ndocs++;
    if (docno)
        *docno = d;
    return MG_OK;
oom_undo:
    /* forget this document's pairs; the terms it added stay in the dictionary with df 0 */
    for (size_t p = first; p < ix->npairs; p++) {
        ix->df[ix->pair_term[p]]--;
        ix->last_doc[ix->pair_term[p]] = UINT32_MAX;
    }
    ix->npairs = first;
oom:
    if (err) *err = "out of memory";
    return MG_ERROR;
}

/* Norms, idf, impacts and search scratch, from doc_len, df, post_start/doc/tf. */
static int finish(mg_bm25 *ix)
{
    uint32_t N = ix->ndocs;
    double avgdl = N ? (double)ix->total_len / N : 0;
    ix->idf = malloc(((size_t)ix->nterms + 1) * sizeof *ix->idf);
    ix->post_impact = malloc((ix->nposts + 1) * sizeof *ix->post_impact);
    ix->max_impact = calloc((size_t)ix->nterms + 1, sizeof *ix->max_impact);
    ix->acc = calloc((size_t)N + 1, sizeof *ix->acc);
    ix->touched = malloc(((size_t)N + 1) * sizeof *ix->touched);
    float *norm = malloc(((size_t)N + 1) * sizeof *norm);
    if (!ix->idf || !ix->post_impact || !ix->max_impact || !ix->acc || !ix->touched || !norm) {
        free(norm);
        return -1;
    }
    for (uint32_t d = 0; d < N; d++)
        norm[d] = (float)(ix->k1 * (1 - ix->b + (avgdl > 0 ? ix->b * ix->doc_len[d] / avgdl : 0)));
    for (uint32_t t = 0; t < ix->nterms; t++) {
        double df = ix->df[t];
        ix->idf[t] = (float)log(1 + (N - df + 0.5) / (df + 0.5));
    }
    for (uint32_t t = 0; t < ix->nterms; t++) {
        float m = 0;
        for (uint64_t p = ix->post_start[t]; p < ix->post_start[t + 1]; p++) {
            float tf = (float)ix->post_tf[p];
            ix->post_impact[p] = tf / (tf + norm[ix->post_doc[p]]);
            if (ix->post_impact[p] > m)
                m = ix->post_impact[p];
        }
        ix->max_impact[t] = m;
    }
    free(norm);
    return 0;
}

int mg_bm25_commit(mg_bm25 *ix, const char **err)
{
    if (ix->committed)
        return MG_OK;
    uint32_t T = ix->nterms;
    ix->nposts = ix->npairs;
    ix->post_start = malloc(((size_t)T + 1) * sizeof *ix->post_start);
    ix->post_doc = malloc((ix->nposts + 1) * sizeof *ix->post_doc);
    ix->post_tf = malloc((ix->nposts + 1) * sizeof *ix->post_tf);
    uint64_t *cursor = malloc(((size_t)T + 1) * sizeof *cursor);
    if (!ix->post_start || !ix->post_doc || !ix->post_tf || !cursor)
        goto oom;
    uint64_t s = 0;
    for (uint32_t t = 0; t < T; t++) {
        ix->post_start[t] = cursor[t] = s;
        s += ix->df[t];
    }
    ix->post_start[T] = s;
    size_t p = 0;
    for (uint32_t d = 0; d < ix->ndocs; d++) {
        for (uint32_t j = 0; j < ix->doc_uniq[d]; j++, p++) {
            uint64_t pos = cursor[ix->pair_term[p]]++;
            ix->post_doc[pos] = d;
            ix->post_tf[pos] = ix->pair_tf[p];
        }
    }
    free(cursor);
    cursor = NULL;
    if (finish(ix) < 0)
        goto oom;
    free_build(ix);
    ix->committed = 1;
    return MG_OK;
oom:
    free(cursor);
    free(ix->post_start); free(ix->post_doc); free(ix->post_tf);
    free(ix->post_impact); free(ix->max_impact); free(ix->idf); free(ix->acc); free(ix->touched);
    ix->post_start = NULL; ix->post_doc = ix->post_tf = ix->touched = NULL;
    ix->post_impact = ix->max_impact = ix->idf = ix->acc = NULL;
    if (err) *err = "out of memory";
    return MG_ERROR;
}

int mg_bm25_committed(const mg_bm25 *ix) { return ix->committed; }

/* One query term: its weight (idf times its count in the query), postings and bound. */
typedef struct {
    float w, max;          /* max = w * the term's largest impact */
    const uint32_t *doc;
    const float *imp;
    size_t n, pos;
    uint32_t ord;          /* rank of the term id among the query's terms */
} qterm;

static inline int allowed(const uint64_t *allow, size_t bits, uint32_t d)
{
    return !allow || (d < bits && ((allow[d >> 6] >> (d & 63)) & 1));
}

/* Term at a time into the dense accumulator: every posting of every term. */
static void search_taat(mg_bm25 *ix, qterm *q, size_t nq, const uint64_t *allow, size_t bits,
                        mg_hit *heap, size_t *hn, size_t k)
{
    float *acc = ix->acc;
    uint32_t *touched = ix->touched;
    size_t ntouched = 0;
    for (size_t i = 0; i < nq; i++) {
        const uint32_t *pd = q[i].doc;
        const float *pi = q[i].imp;
        float w = q[i].w;
        for (size_t p = 0; p < q[i].n; p++) {
            uint32_t d = pd[p];
            if (allow && !allowed(allow, bits, d))
                continue;
            /* branch-free: whether d is new is a coin toss the predictor loses */
            touched[ntouched] = d;
            ntouched += acc[d] == 0;
            acc[d] += w * pi[p];
        }
    }
    for (size_t i = 0; i < ntouched; i++) {
        uint32_t d = touched[i];
        mg_topk_offer(heap, hn, k, (mg_hit){acc[d], d});
        acc[d] = 0;
    }
}

/* First position at or after pos whose doc is >= d (galloping, then binary search). */
static size_t seek(const uint32_t *doc, size_t n, size_t pos, uint32_t d)
{
    if (pos >= n || doc[pos] >= d)
        return pos;
    size_t step = 1, lo = pos, hi = pos + 1;
    while (hi < n && doc[hi] < d) {
        lo = hi;
        step *= 2;
        hi = lo + step;
    }
    if (hi > n)
        hi = n;
    while (lo + 1 < hi) {   /* doc[lo] < d, and doc[hi] >= d or hi == n */
        size_t mid = lo + (hi - lo) / 2;
        if (doc[mid] < d)
            lo = mid;
        else
            hi = mid;
    }
    return hi;
}

static int by_max(const void *a, const void *b)
{
    float x = ((const qterm *)a)->max, y = ((const qterm *)b)->max;
    return x < y ? -1 : x > y;
}

/* MaxScore (Turtle & Flood) over windows of documents, the way Lucene's MaxScoreBulkScorer
 * does it: terms sorted by their bound; once the k-th best score exceeds the summed bounds
 * of the weakest terms ("non-essential"), those terms are only looked up (by seeking) for
 * documents the essential terms found, and only while the document can still make it.
 * Within a window the essential terms are added term at a time into a small dense array.
 * A document that survives is scored again in term id order, so its score is bit for bit
 * the one search_taat computes: both strategies return the same hits, ties included. */
#define WINDOW 4096

static void search_maxscore(qterm *q, size_t nq, uint32_t ndocs, const uint64_t *allow,
                            size_t bits, mg_hit *heap, size_t *hn, size_t k)
{
    qsort(q, nq, sizeof *q, by_max);
    float ub[64];          /* ub[i] = bound of terms 0..i, nudged up against rounding */
    uint32_t canon[64];    /* term positions in term id order, the order search_taat adds in */
    size_t vpos[64];       /* each term's cursor for the exact rescoring */
    float sum = 0;
    for (size_t i = 0; i < nq; i++) {
        sum += q[i].max;
        ub[i] = sum * (1 + 1e-5f);
        canon[q[i].ord] = (uint32_t)i;
        vpos[i] = 0;
    }
    float acc[WINDOW];
    memset(acc, 0, sizeof acc);
    size_t first = 0;      /* terms [0, first) are non-essential */
    for (uint32_t base = 0; base < ndocs; base = base + WINDOW < base ? ndocs : base + WINDOW) {
        float theta = *hn == k ? heap[0].score : -1;
        while (first < nq && ub[first] <= theta)
            first++;
        if (first == nq)
            break;     /* not even every term together can beat the k-th score */
        uint32_t end = ndocs - base < WINDOW ? ndocs : base + WINDOW;
        for (size_t i = first; i < nq; i++) {
            const uint32_t *pd = q[i].doc;
            const float *pi = q[i].imp;
            float w = q[i].w;
            size_t p = q[i].pos, n = q[i].n;
            for (; p < n && pd[p] < end; p++) {
                uint32_t d = pd[p];
                if (allow && !allowed(allow, bits, d))
                    continue;
                acc[d - base] += w * pi[p];
            }
            q[i].pos = p;
        }
        /* a linear pass over the window finds the touched documents in doc order, and
         * costs less than marking them as they are touched */
        for (uint32_t off = 0; off < end - base; off++) {
            if (acc[off] == 0)
                continue;
            uint32_t d = base + off;
            float est = acc[off] * (1 + 1e-5f);
            acc[off] = 0;
            theta = *hn == k ? heap[0].score : -1;
            size_t i = first;
            int pruned = 0;
            if (first == 0) {
                pruned = est <= theta;
            } else {
                while (i-- > 0) {
                    if (est + ub[i] <= theta) {
                        pruned = 1;
                        break;
                    }
                    q[i].pos = seek(q[i].doc, q[i].n, q[i].pos, d);
                    if (q[i].pos < q[i].n && q[i].doc[q[i].pos] == d)
                        est += q[i].w * q[i].imp[q[i].pos] * (1 + 1e-5f);
                }
            }
            if (pruned)
                continue;
            float exact = 0;
            for (size_t j = 0; j < nq; j++) {
                size_t t = canon[j];
                vpos[t] = seek(q[t].doc, q[t].n, vpos[t], d);
                if (vpos[t] < q[t].n && q[t].doc[vpos[t]] == d)
                    exact += q[t].w * q[t].imp[vpos[t]];
            }
            mg_topk_offer(heap, hn, k, (mg_hit){exact, d});
        }
    }
}

typedef struct { uint32_t id, at; float w; } qid;

static int cmp_qid(const void *a, const void *b)
{
    const qid *x = a, *y = b;
    if (x->id != y->id)
        return x->id < y->id ? -1 : 1;
    return x->at < y->at ? -1 : x->at > y->at;
}

/* The search proper, over analyzed terms buf[offs[i] .. offs[i + 1]) with optional weights. */
static int search_terms(mg_bm25 *ix, const char *buf, const uint32_t *offs, size_t nt,
                        const float *weights, uint32_t k, const uint64_t *allow, size_t allow_bits,
                        uint32_t *docs, float *scores, size_t *n, const char **err)
{
    *n = 0;
    if (k == 0 || nt == 0)
        return MG_OK;
    qid stack_ids[64];
    qterm stack_q[64];
    qid *ids = nt <= 64 ? stack_ids : malloc(nt * sizeof *ids);
    qterm *q = nt <= 64 ? stack_q : malloc(nt * sizeof *q);
    size_t kk = k < ix->ndocs ? k : ix->ndocs;
    mg_hit stack_heap[128];
    mg_hit *heap = kk <= 128 ? stack_heap : malloc(kk * sizeof *heap);
    if (!ids || !q || !heap) {
        if (ids != stack_ids) free(ids);
        if (q != stack_q) free(q);
        if (heap != stack_heap) free(heap);
        if (err) *err = "out of memory";
        return MG_ERROR;
    }
    size_t nid = 0;
    for (size_t i = 0; i < nt; i++) {
        size_t l = offs[i + 1] - offs[i];
        int64_t id = dict_find(ix, buf + offs[i], l, hash_bytes(buf + offs[i], l));
        if (id >= 0 && ix->df[id] > 0)
            ids[nid++] = (qid){(uint32_t)id, (uint32_t)i, weights ? weights[i] : 1.0f};
    }
    qsort(ids, nid, sizeof *ids, cmp_qid);
    size_t nq = 0, total = 0;
    for (size_t i = 0; i < nid;) {
        uint32_t t = ids[i].id;
        /* a term repeated in the query counts once per occurrence, as in Lucene */
        float qw = 0;
        for (; i < nid && ids[i].id == t; i++)
            qw += ids[i].w;
        float w = ix->idf[t] * qw;
        uint64_t s0 = ix->post_start[t];
        q[nq] = (qterm){w, w * ix->max_impact[t], ix->post_doc + s0, ix->post_impact + s0,
                        (size_t)(ix->post_start[t + 1] - s0), 0, (uint32_t)nq};
        total += q[nq].n;
        nq++;
    }
    size_t hn = 0;
    /* Measured on Cranfield and on copies of it (tests/bench/retrieval): the dense pass
     * wins below some 30k documents, MaxScore above (1.5-2x at 140k); its bounds need nq <= 64. */
    if (kk == 0)
        ;
    else if (nq > 64 || ix->mode == 1 || (ix->mode == 0 && (ix->ndocs < 32768 || total < 4096)))
        search_taat(ix, q, nq, allow, allow_bits, heap, &hn, kk);
    else
        search_maxscore(q, nq, ix->ndocs, allow, allow_bits, heap, &hn, kk);
    mg_topk_drain(heap, hn, docs, scores);
    *n = hn;
    if (ids != stack_ids) free(ids);
    if (q != stack_q) free(q);
    if (heap != stack_heap) free(heap);
    return MG_OK;
}

int mg_bm25_search(mg_bm25 *ix, const char *query, size_t len, uint32_t k,
                   const uint64_t *allow, size_t allow_bits,
                   uint32_t *docs, float *scores, size_t *n, const char **err)
{
    *n = 0;
    if (!ix->committed) {
        if (err) *err = "not committed";
        return MG_ERROR;
    }
    const char *buf;
    const uint32_t *offs;
    size_t nt;
    if (mg_analyzer_run(ix->an, query, len, &buf, &offs, &nt, err) != MG_OK)
        return MG_ERROR;
    return search_terms(ix, buf, offs, nt, NULL, k, allow, allow_bits, docs, scores, n, err);
}

int mg_bm25_search_terms(mg_bm25 *ix, const char *buf, const uint32_t *offs, size_t nterms,
                         const float *weights, uint32_t k, const uint64_t *allow, size_t allow_bits,
                         uint32_t *docs, float *scores, size_t *n, const char **err)
{
    *n = 0;
    if (!ix->committed) {
        if (err) *err = "not committed";
        return MG_ERROR;
    }
    for (size_t i = 0; weights && i < nterms; i++) {
        if (!(weights[i] > 0 && weights[i] <= 1e30f)) {
            if (err) *err = "weights must be positive";
            return MG_ERROR;
        }
    }
    for (size_t i = 0; i < nterms; i++) {
        if (offs[i + 1] < offs[i]) {
            if (err) *err = "bad term offsets";
            return MG_ERROR;
        }
    }
    return search_terms(ix, buf, offs, nterms, weights, k, allow, allow_bits, docs, scores, n, err);
}

void mg_bm25_set_strategy(mg_bm25 *ix, int mode) { ix->mode = mode; }

uint32_t mg_bm25_count(const mg_bm25 *ix) { return ix->ndocs; }
uint32_t mg_bm25_term_count(const mg_bm25 *ix) { return ix->nterms; }
double mg_bm25_k1(const mg_bm25 *ix) { return ix->k1; }
double mg_bm25_b(const mg_bm25 *ix) { return ix->b; }
const char *mg_bm25_stem(const mg_bm25 *ix) { return mg_analyzer_stem(ix->an); }
int mg_bm25_stopwords(const mg_bm25 *ix) { return mg_analyzer_stopwords(ix->an); }

uint32_t mg_bm25_df(const mg_bm25 *ix, const char *term, size_t len)
{
    int64_t id = dict_find(ix, term, len, hash_bytes(term, len));
    return id < 0 ? 0 : ix->df[id];
}

uint32_t mg_bm25_doc_len(const mg_bm25 *ix, uint32_t docno)
{
    return docno < ix->ndocs ? ix->doc_len[docno] : 0;
}

/* ---- file format --------------------------------------------------------------------
 * header, then doc_len[ndocs] u32, term_len[nterms] u32, term bytes, df[nterms] u32,
 * post_doc[nposts] u32, post_tf[nposts] u32, then the XXH3-64 of everything before
 * (core/checked_file.h). */

#define BM25_MAGIC "MGBM25\0\0"
#define BM25_VERSION 2u

typedef struct {
    char magic[8];
    uint32_t version, endian;
    double k1, b;
    uint32_t stopwords, ndocs;
    char stem[32];
    uint64_t nterms, nposts, arena_len, total_len;
} bm25_header;

int mg_bm25_save(const mg_bm25 *ix, const char *path, const char **err)
{
    if (!ix->committed) {
        if (err) *err = "not committed";
        return MG_ERROR;
    }
    mg_checked_file w;
    if (mg_checked_open(&w, path, err) != MG_OK)
        return MG_ERROR;
    bm25_header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, BM25_MAGIC, 8);
    h.version = BM25_VERSION;
    h.endian = 0x01020304;
    h.k1 = ix->k1;
    h.b = ix->b;
    h.stopwords = (uint32_t)mg_analyzer_stopwords(ix->an);
    h.ndocs = ix->ndocs;
    strncpy(h.stem, mg_analyzer_stem(ix->an), sizeof h.stem - 1);
    h.nterms = ix->nterms;
    h.nposts = ix->nposts;
    h.total_len = ix->total_len;
    for (uint32_t t = 0; t < ix->nterms; t++)
        h.arena_len += ix->term_len[t];
    mg_checked_write(&w, &h, sizeof h);
    mg_checked_write(&w, ix->doc_len, (size_t)ix->ndocs * 4);
    mg_checked_write(&w, ix->term_len, (size_t)ix->nterms * 4);
    for (uint32_t t = 0; t < ix->nterms; t++)
        mg_checked_write(&w, ix->arena + ix->term_off[t], ix->term_len[t]);
    mg_checked_write(&w, ix->df, (size_t)ix->nterms * 4);
    mg_checked_write(&w, ix->post_doc, ix->nposts * 4);
    mg_checked_write(&w, ix->post_tf, ix->nposts * 4);
    return mg_checked_commit(&w, err);
}

static unsigned char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = malloc(cap);
    while (buf) {
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (n < cap)
            break;
        unsigned char *b = realloc(buf, cap * 2);
        if (!b) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = b;
        cap *= 2;
    }
    if (buf && ferror(f)) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = n;
    return buf;
}

mg_bm25 *mg_bm25_load(const char *path, const char **err)
{
    size_t len;
    unsigned char *data = read_all(path, &len);
    mg_bm25 *ix = NULL;
    if (!data) {
        if (err) *err = "cannot open";
        return NULL;
    }
    bm25_header h;
    if (len < sizeof h + 8 || memcmp(data, BM25_MAGIC, 8) != 0) {
        if (err) *err = "not a bm25 index";
        goto fail;
    }
    memcpy(&h, data, sizeof h);
    if (h.version != BM25_VERSION || h.endian != 0x01020304) {
        if (err) *err = "not a bm25 index";
        goto fail;
    }
    h.stem[sizeof h.stem - 1] = 0;
    /* sizes are checked one by one so that no sum below can overflow */
    if (!mg_checked_verify(data, len) || h.nterms >= UINT32_MAX || h.nposts > len || h.arena_len > len ||
        (uint64_t)h.ndocs * 4 > len || h.nterms * 4 > len ||
        sizeof h + 8 + (uint64_t)h.ndocs * 4 + h.nterms * 8 + h.arena_len + h.nposts * 8 != len) {
        if (err) *err = "corrupt index";
        goto fail;
    }
    const char *e2 = NULL;
    if (!(ix = mg_bm25_new(h.k1, h.b, h.stem, (int)h.stopwords, &e2))) {
        if (err) *err = e2 && strcmp(e2, "out of memory") == 0 ? e2 : "corrupt index";
        goto fail;
    }
    const unsigned char *p = data + sizeof h;
    const uint32_t *doc_len = (const void *)p;
    p += (size_t)h.ndocs * 4;
    const uint32_t *term_len = (const void *)p;
    p += h.nterms * 4;
    const char *bytes = (const char *)p;
    p += h.arena_len;
    const unsigned char *dfp = p;
    p += h.nterms * 4;
    const unsigned char *docp = p;
    p += h.nposts * 4;
    const unsigned char *tfp = p;

    ix->ndocs = ix->docs_cap = h.ndocs;
    ix->doc_len = malloc(((size_t)h.ndocs + 1) * 4);
    ix->post_start = malloc((h.nterms + 1) * 8);
    ix->post_doc = malloc((h.nposts + 1) * 4);
    ix->post_tf = malloc((h.nposts + 1) * 4);
    if (!ix->doc_len || !ix->post_start || !ix->post_doc || !ix->post_tf)
        goto oom;
    memcpy(ix->doc_len, doc_len, (size_t)h.ndocs * 4);
    memcpy(ix->post_doc, docp, h.nposts * 4);
    memcpy(ix->post_tf, tfp, h.nposts * 4);
    uint64_t total = 0;
    for (uint32_t d = 0; d < h.ndocs; d++)
        total += ix->doc_len[d];
    if (total != h.total_len)
        goto corrupt;
    ix->total_len = total;
    ix->nposts = h.nposts;
    uint64_t off = 0, ps = 0;
    for (uint64_t t = 0; t < h.nterms; t++) {
        uint32_t tl;
        memcpy(&tl, (const unsigned char *)term_len + t * 4, 4);
        if (tl == 0 || tl > h.arena_len - off)
            goto corrupt;
        uint32_t before = ix->nterms;
        int64_t id = dict_intern(ix, bytes + off, tl);
        if (id < 0)
            goto oom;
        if ((uint64_t)id != t || ix->nterms == before)   /* duplicate term */
            goto corrupt;
        off += tl;
        uint32_t df;
        memcpy(&df, dfp + t * 4, 4);
        ix->df[t] = df;
        ix->post_start[t] = ps;
        if (df > h.ndocs || df > h.nposts - ps)
            goto corrupt;
        for (uint64_t q = ps; q < ps + df; q++) {
            if (ix->post_doc[q] >= h.ndocs || ix->post_tf[q] == 0 ||
                (q > ps && ix->post_doc[q] <= ix->post_doc[q - 1]))
                goto corrupt;
        }
        ps += df;
    }
    if (off != h.arena_len || ps != h.nposts)
        goto corrupt;
    ix->post_start[h.nterms] = ps;
    if (finish(ix) < 0)
        goto oom;
    free_build(ix);
    ix->committed = 1;
    free(data);
    return ix;
corrupt:
    if (err) *err = "corrupt index";
    goto fail;
oom:
    if (err) *err = "out of memory";
fail:
    mg_bm25_free(ix);
    free(data);
    return NULL;
}
