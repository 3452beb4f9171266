/* bench.c: moongate's search primitives beside their peers, in one process: BM25 vs SQLite
 * FTS5 on Cranfield (build time, queries/s, one thread), and the dense scan over N x D
 * float32 vectors beside a plain sequential read of the same array, int8, and FAISS. */
#include "analyzer.h"
#include "bm25.h"
#include "vectors.h"

#include <cjson/cJSON.h>
#include <immintrin.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef FAISS_WHY
#define FAISS_WHY "not built with FAISS"
#endif

#ifdef HAVE_FAISS
void *bench_faiss_flat_ip(int dim);
void bench_faiss_add(void *ix, long n, const float *x);
void bench_faiss_search(void *ix, const float *q, long k, float *d, long *labels);
void bench_faiss_free(void *ix);
#endif

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* CPU time of this thread: BM25 is CPU-bound and single-threaded on both sides, and this
 * figure holds still when other processes share the machine; wall time would not. */
static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void die(const char *what, const char *why)
{
    fprintf(stderr, "bench: %s: %s\n", what, why ? why : "failed");
    exit(1);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- Cranfield ------------------------------------------------------------------------ */

typedef struct { char *id, *text; } rec;
typedef struct { rec *v; int n, cap; } recs;

static void load_jsonl(const char *path, int with_title, recs *out)
{
    FILE *f = fopen(path, "r");
    if (!f)
        die(path, "cannot open");
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        cJSON *j = cJSON_Parse(line);
        if (!j)
            die(path, "bad JSON line");
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(j, "_id"));
        const char *text = cJSON_GetStringValue(cJSON_GetObjectItem(j, "text"));
        const char *title = with_title ? cJSON_GetStringValue(cJSON_GetObjectItem(j, "title")) : NULL;
        if (!id || !text)
            die(path, "record without _id or text");
        if (out->n == out->cap) {
            out->cap = out->cap ? out->cap * 2 : 256;
            out->v = realloc(out->v, (size_t)out->cap * sizeof *out->v);
        }
        size_t tl = title ? strlen(title) : 0, xl = strlen(text);
        char *t = malloc(tl + xl + 2);
        if (title) {
            memcpy(t, title, tl);
            t[tl++] = '\n';
        }
        memcpy(t + tl, text, xl + 1);
        out->v[out->n].id = strdup(id);
        out->v[out->n].text = t;
        out->n++;
        cJSON_Delete(j);
    }
    free(line);
    fclose(f);
}

typedef struct { char q[64], d[64]; int rel; } qrel;
static qrel *qrels;
static int nqrels;

static void load_qrels(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        die(path, "cannot open");
    char a[64], b[64];
    int r, cap = 0;
    char head[256];
    if (!fgets(head, sizeof head, f))
        die(path, "empty");
    while (fscanf(f, "%63s %63s %d", a, b, &r) == 3) {
        if (nqrels == cap) {
            cap = cap ? cap * 2 : 1024;
            qrels = realloc(qrels, (size_t)cap * sizeof *qrels);
        }
        snprintf(qrels[nqrels].q, 64, "%s", a);
        snprintf(qrels[nqrels].d, 64, "%s", b);
        qrels[nqrels++].rel = r;
    }
    fclose(f);
}

static int rel_of(const char *q, const char *d)
{
    for (int i = 0; i < nqrels; i++)
        if (strcmp(qrels[i].q, q) == 0 && strcmp(qrels[i].d, d) == 0)
            return qrels[i].rel;
    return 0;
}

/* nDCG@10 with linear gains, as trec_eval's ndcg_cut.10 and BEIR compute it. */
static double ndcg10(const char *qid, const char **docids, int n)
{
    double dcg = 0, idcg = 0;
    int ideal[4096], ni = 0;
    for (int i = 0; i < n && i < 10; i++) {
        int g = rel_of(qid, docids[i]);
        if (g > 0)
            dcg += g / log2(i + 2.0);
    }
    for (int i = 0; i < nqrels && ni < 4096; i++)
        if (strcmp(qrels[i].q, qid) == 0 && qrels[i].rel > 0)
            ideal[ni++] = qrels[i].rel;
    for (int i = 0; i < ni; i++)   /* selection sort, descending: the lists are short */
        for (int j = i + 1; j < ni; j++)
            if (ideal[j] > ideal[i]) { int t = ideal[i]; ideal[i] = ideal[j]; ideal[j] = t; }
    for (int i = 0; i < ni && i < 10; i++)
        idcg += ideal[i] / log2(i + 2.0);
    return idcg > 0 ? dcg / idcg : -1;
}

static int judged(const char *qid)
{
    for (int i = 0; i < nqrels; i++)
        if (strcmp(qrels[i].q, qid) == 0)
            return 1;
    return 0;
}

/* FTS5 query for free text: every word quoted, OR-ed (BM25 is a disjunctive ranking). */
static char *fts_query(const char *text)
{
    size_t n = strlen(text);
    char *out = malloc(n * 6 + 8), *o = out;
    const char *p = text;
    int first = 1;
    while (*p) {
        while (*p && !((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
            p++;
        const char *s = p;
        while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9'))
            p++;
        if (p == s)
            break;
        if (!first) { memcpy(o, " OR ", 4); o += 4; }
        first = 0;
        *o++ = '"';
        memcpy(o, s, (size_t)(p - s));
        o += p - s;
        *o++ = '"';
    }
    *o = 0;
    return out;
}

static void bench_bm25(const char *dir, double seconds)
{
    char path[4096];
    recs docs = {0}, queries = {0};
    snprintf(path, sizeof path, "%s/corpus.jsonl", dir);
    load_jsonl(path, 1, &docs);
    snprintf(path, sizeof path, "%s/queries.jsonl", dir);
    load_jsonl(path, 0, &queries);
    snprintf(path, sizeof path, "%s/qrels.tsv", dir);
    load_qrels(path);
    const char *err = NULL;
    enum { BUILDS = 5 };

    /* moongate: build */
    double tb[BUILDS];
    mg_bm25 *ix = NULL;
    for (int r = 0; r < BUILDS; r++) {
        if (ix)
            mg_bm25_free(ix);
        double t0 = cpu_now();
        ix = mg_bm25_new(1.2, 0.75, "english", 0, &err);
        if (!ix)
            die("bm25", err);
        for (int i = 0; i < docs.n; i++)
            if (mg_bm25_add(ix, docs.v[i].text, strlen(docs.v[i].text), NULL, &err) != MG_OK)
                die("bm25 add", err);
        if (mg_bm25_commit(ix, &err) != MG_OK)
            die("bm25 commit", err);
        tb[r] = cpu_now() - t0;
    }
    double mg_build = median(tb, BUILDS);

    /* FTS5: build (in memory, one transaction, prepared insert) */
    sqlite3 *db = NULL;
    for (int r = 0; r < BUILDS; r++) {
        if (db)
            sqlite3_close(db);
        double t0 = cpu_now();
        if (sqlite3_open(":memory:", &db) != SQLITE_OK)
            die("sqlite", sqlite3_errmsg(db));
        if (sqlite3_exec(db, "CREATE VIRTUAL TABLE docs USING fts5(body, tokenize='porter unicode61');"
                             "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
            die("fts5", sqlite3_errmsg(db));
        sqlite3_stmt *ins;
        sqlite3_prepare_v2(db, "INSERT INTO docs(rowid, body) VALUES (?1, ?2)", -1, &ins, NULL);
        for (int i = 0; i < docs.n; i++) {
            sqlite3_bind_int(ins, 1, i);
            sqlite3_bind_text(ins, 2, docs.v[i].text, -1, SQLITE_STATIC);
            if (sqlite3_step(ins) != SQLITE_DONE)
                die("fts5 insert", sqlite3_errmsg(db));
            sqlite3_reset(ins);
        }
        sqlite3_finalize(ins);
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
        tb[r] = cpu_now() - t0;
    }
    double fts_build = median(tb, BUILDS);

    /* quality check: both engines rank for real */
    char **fq = malloc((size_t)queries.n * sizeof *fq);
    for (int i = 0; i < queries.n; i++)
        fq[i] = fts_query(queries.v[i].text);
    sqlite3_stmt *sel;
    if (sqlite3_prepare_v2(db, "SELECT rowid FROM docs WHERE docs MATCH ?1 ORDER BY rank LIMIT 10",
                           -1, &sel, NULL) != SQLITE_OK)
        die("fts5 select", sqlite3_errmsg(db));
    double mg_ndcg = 0, fts_ndcg = 0;
    int nj = 0;
    for (int i = 0; i < queries.n; i++) {
        if (!judged(queries.v[i].id))
            continue;
        uint32_t d[10];
        float s[10];
        size_t n;
        const char *ids[10];
        mg_bm25_search(ix, queries.v[i].text, strlen(queries.v[i].text), 10, NULL, 0, d, s, &n, &err);
        for (size_t j = 0; j < n; j++)
            ids[j] = docs.v[d[j]].id;
        mg_ndcg += fmax(0, ndcg10(queries.v[i].id, ids, (int)n));
        int m = 0;
        sqlite3_bind_text(sel, 1, fq[i], -1, SQLITE_STATIC);
        while (sqlite3_step(sel) == SQLITE_ROW && m < 10)
            ids[m++] = docs.v[sqlite3_column_int(sel, 0)].id;
        sqlite3_reset(sel);
        fts_ndcg += fmax(0, ndcg10(queries.v[i].id, ids, m));
        nj++;
    }

    /* queries/s: every query in turn, top 10, until `seconds` have passed */
    long mg_q = 0;
    double t0 = cpu_now(), mg_t;
    do {
        for (int i = 0; i < queries.n; i++) {
            uint32_t d[10];
            float s[10];
            size_t n;
            mg_bm25_search(ix, queries.v[i].text, strlen(queries.v[i].text), 10, NULL, 0, d, s, &n, &err);
        }
        mg_q += queries.n;
    } while ((mg_t = cpu_now() - t0) < seconds);
    long fts_q = 0;
    double fts_t;
    t0 = cpu_now();
    do {
        for (int i = 0; i < queries.n; i++) {
            sqlite3_bind_text(sel, 1, fq[i], -1, SQLITE_STATIC);
            while (sqlite3_step(sel) == SQLITE_ROW)
                (void)sqlite3_column_int(sel, 0);
            sqlite3_reset(sel);
        }
        fts_q += queries.n;
    } while ((fts_t = cpu_now() - t0) < seconds);
    sqlite3_finalize(sel);
    sqlite3_close(db);

    double mg_qps = mg_q / mg_t, fts_qps = fts_q / fts_t;
    printf("BM25 on Cranfield: %d documents, %d queries (top 10, one thread, thread CPU time), SQLite %s\n",
           docs.n, queries.n, sqlite3_libversion());
    printf("  %-34s %14s %14s %10s\n", "", "moongate", "SQLite FTS5", "ratio");
    printf("  %-34s %14.1f %14.1f %9.1fx\n", "index build, ms (median of 5)", mg_build * 1e3,
           fts_build * 1e3, fts_build / mg_build);
    printf("  %-34s %14.0f %14.0f %9.1fx\n", "queries/s", mg_qps, fts_qps, mg_qps / fts_qps);
    printf("  %-34s %14.1f %14.1f\n", "microseconds/query", 1e6 / mg_qps, 1e6 / fts_qps);
    printf("  %-34s %14.4f %14.4f\n", "nDCG@10 (judged queries)", mg_ndcg / nj, fts_ndcg / nj);
    printf("  target: queries/s >= 20x FTS5 -> %s\n\n", mg_qps >= 20 * fts_qps ? "met" : "NOT met");
    mg_bm25_free(ix);
    for (int i = 0; i < queries.n; i++)
        free(fq[i]);
    free(fq);
}

/* ---- dense ---------------------------------------------------------------------------- */

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static inline float frand(void)
{
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (float)((rng >> 40) * (1.0 / 16777216.0)) * 2 - 1;
}

static void random_unit(float *v, size_t dim)
{
    double s = 0;
    for (size_t j = 0; j < dim; j++) {
        v[j] = frand();
        s += (double)v[j] * v[j];
    }
    float inv = (float)(1 / sqrt(s));
    for (size_t j = 0; j < dim; j++)
        v[j] *= inv;
}

/* The plain sequential read: every byte loaded once into vector registers and folded so
 * the compiler cannot drop it; the widest loads this CPU has. */
__attribute__((target("avx512f")))
static double read_avx512(const void *p, size_t bytes)
{
    const __m512i *x = p;
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    size_t n = bytes / 64, i = 0;
    for (; i + 4 <= n; i += 4) {
        a0 = _mm512_xor_si512(a0, _mm512_load_si512(x + i));
        a1 = _mm512_xor_si512(a1, _mm512_load_si512(x + i + 1));
        a2 = _mm512_xor_si512(a2, _mm512_load_si512(x + i + 2));
        a3 = _mm512_xor_si512(a3, _mm512_load_si512(x + i + 3));
    }
    for (; i < n; i++)
        a0 = _mm512_xor_si512(a0, _mm512_load_si512(x + i));
    a0 = _mm512_xor_si512(_mm512_xor_si512(a0, a1), _mm512_xor_si512(a2, a3));
    return (double)_mm512_reduce_add_epi64(a0);
}

__attribute__((target("avx2")))
static double read_avx2(const void *p, size_t bytes)
{
    const __m256i *x = p;
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    size_t n = bytes / 32, i = 0;
    for (; i + 4 <= n; i += 4) {
        a0 = _mm256_xor_si256(a0, _mm256_load_si256(x + i));
        a1 = _mm256_xor_si256(a1, _mm256_load_si256(x + i + 1));
        a2 = _mm256_xor_si256(a2, _mm256_load_si256(x + i + 2));
        a3 = _mm256_xor_si256(a3, _mm256_load_si256(x + i + 3));
    }
    for (; i < n; i++)
        a0 = _mm256_xor_si256(a0, _mm256_load_si256(x + i));
    a0 = _mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3));
    return (double)_mm256_extract_epi64(a0, 0);
}

static double read_portable(const void *p, size_t bytes)
{
    const uint64_t *x = p;
    uint64_t a = 0, b = 0, c = 0, d = 0;
    for (size_t i = 0; i + 4 <= bytes / 8; i += 4) {
        a ^= x[i]; b ^= x[i + 1]; c ^= x[i + 2]; d ^= x[i + 3];
    }
    return (double)(a ^ b ^ c ^ d);
}

static volatile double sink;

static void bench_dense(size_t N, size_t dim, int reps)
{
    const char *err = NULL;
    const char *kname = mg_vectors_kernel();
    double (*readfn)(const void *, size_t) =
        strcmp(kname, "avx512") == 0 ? read_avx512 : strcmp(kname, "avx2") == 0 ? read_avx2 : read_portable;
    printf("Dense scan: %zu x %zu vectors, top 10 by dot product, one thread, kernel %s\n", N, dim, kname);
    double tg = now();
    float *src = malloc(N * dim * sizeof *src);
    if (!src)
        die("dense", "out of memory");
    for (size_t i = 0; i < N; i++)
        random_unit(src + i * dim, dim);
    mg_vectors *f32 = mg_vectors_new((uint32_t)dim, MG_VEC_F32, &err);
    mg_vectors *i8 = mg_vectors_new((uint32_t)dim, MG_VEC_I8, &err);
    if (!f32 || !i8 || mg_vectors_add(f32, src, N, NULL, &err) != MG_OK ||
        mg_vectors_add(i8, src, N, NULL, &err) != MG_OK)
        die("vectors", err);
#ifdef HAVE_FAISS
    void *fx = bench_faiss_flat_ip((int)dim);
    bench_faiss_add(fx, (long)N, src);
#endif
    free(src);
    printf("  (data generated and loaded in %.1f s)\n", now() - tg);

    size_t f32_bytes = N * mg_vectors_row_bytes(f32), i8_bytes = N * mg_vectors_row_bytes(i8);
    float *qs = malloc((size_t)reps * dim * sizeof *qs);
    for (int r = 0; r < reps; r++)
        random_unit(qs + (size_t)r * dim, dim);
    double t_read[64], t_f32[64], t_i8[64], t_faiss[64];
    uint32_t rows[10], rows8[10];
    float sc[10];
    size_t n;
    int same = 1, overlap8 = 0;
    /* interleaved so that each figure sees the same machine state */
    for (int r = 0; r < reps; r++) {
        const float *q = qs + (size_t)r * dim;
        double t0 = now();
        sink = readfn(mg_vectors_data(f32), f32_bytes);
        t_read[r] = now() - t0;
        t0 = now();
        mg_vectors_search(f32, q, 10, NULL, 0, rows, sc, &n, &err);
        t_f32[r] = now() - t0;
        t0 = now();
        mg_vectors_search(i8, q, 10, NULL, 0, rows8, sc, &n, &err);
        t_i8[r] = now() - t0;
        for (int a = 0; a < 10; a++)
            for (int b = 0; b < 10; b++)
                overlap8 += rows[a] == rows8[b];
#ifdef HAVE_FAISS
        float d[10];
        long lab[10];
        t0 = now();
        bench_faiss_search(fx, q, 10, d, lab);
        t_faiss[r] = now() - t0;
        for (int a = 0; a < 10; a++)
            same &= (long)rows[a] == lab[a];
#else
        t_faiss[r] = 0;
        (void)same;
#endif
    }
    double read = median(t_read, reps), tf = median(t_f32, reps), ti = median(t_i8, reps);
    double bw = f32_bytes / read / 1e9;
    printf("  %-44s %10s %10s %10s\n", "(median of each)", "ms", "GB/s", "vs read");
    printf("  %-44s %10.1f %10.2f %9.0f%%\n", "sequential read of the float32 array", read * 1e3, bw, 100.0);
    printf("  %-44s %10.1f %10.2f %9.0f%%\n", "moongate float32 search", tf * 1e3, f32_bytes / tf / 1e9,
           100 * read / tf);
    printf("  %-44s %10.1f %10.2f %9.0f%%\n", "moongate int8 search (int8 bytes)", ti * 1e3, i8_bytes / ti / 1e9,
           100 * read / ti);
#ifdef HAVE_FAISS
    double tx = median(t_faiss, reps);
    printf("  %-44s %10.1f %10.2f %9.0f%%\n", "FAISS IndexFlatIP search (float32)", tx * 1e3, f32_bytes / tx / 1e9,
           100 * read / tx);
    printf("  moongate float32 vs FAISS: %.2fx faster; same top-10 rows as FAISS on all %d queries: %s\n",
           tx / tf, reps, same ? "yes" : "NO");
#else
    printf("  FAISS: not measured: %s\n", FAISS_WHY);
#endif
    printf("  int8 top-10 overlap with float32 top-10: %.1f of 10\n", overlap8 / (double)reps);
    printf("  target: float32 scan >= 90%% of read bandwidth -> %s (%.0f%%)\n",
           read / tf >= 0.9 ? "met" : "NOT met", 100 * read / tf);
    printf("  target: int8 faster than the read bandwidth allows float32 (%.1f ms) -> %s (%.1f ms, %.1fx)\n",
           read * 1e3, ti < read ? "met" : "NOT met", ti * 1e3, read / ti);
    /* each kernel this CPU has, on the same data: what the SIMD buys */
    const char *names[] = {"avx512", "avx2", "portable"};
    printf("  %-20s %14s %14s\n", "kernel", "float32 ms", "int8 ms");
    for (int kn = 0; kn < 3; kn++) {
        if (mg_vectors_set_kernel(names[kn]) != MG_OK) {
            printf("  %-20s %14s %14s\n", names[kn], "not on CPU", "");
            continue;
        }
        int kr = reps < 5 ? reps : 5;
        double a[5], b[5];
        for (int r = 0; r < kr; r++) {
            const float *q = qs + (size_t)r * dim;
            double t0 = now();
            mg_vectors_search(f32, q, 10, NULL, 0, rows, sc, &n, &err);
            a[r] = now() - t0;
            t0 = now();
            mg_vectors_search(i8, q, 10, NULL, 0, rows8, sc, &n, &err);
            b[r] = now() - t0;
        }
        printf("  %-20s %14.1f %14.1f\n", names[kn], median(a, kr) * 1e3, median(b, kr) * 1e3);
    }
    mg_vectors_set_kernel(kname);
    mg_vectors_free(f32);
    mg_vectors_free(i8);
#ifdef HAVE_FAISS
    bench_faiss_free(fx);
#endif
    free(qs);
}

int main(int argc, char **argv)
{
    const char *dir = NULL;
    size_t rows = 1000000, dim = 384;
    double seconds = 2;
    int reps = 15, do_bm25 = 1, do_dense = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--cranfield") == 0 && i + 1 < argc) dir = argv[++i];
        else if (strcmp(argv[i], "--rows") == 0 && i + 1 < argc) rows = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--dim") == 0 && i + 1 < argc) dim = strtoull(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) seconds = atof(argv[++i]);
        else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--bm25-only") == 0) do_dense = 0;
        else if (strcmp(argv[i], "--dense-only") == 0) do_bm25 = 0;
        else {
            fprintf(stderr, "usage: bench --cranfield DIR [--rows N] [--dim D] [--seconds S] [--reps R]"
                            " [--bm25-only | --dense-only]\n");
            return 2;
        }
    }
    if (reps < 1 || reps > 64 || rows < 1 || dim < 1 || dim > MG_VECTORS_MAX_DIM)
        die("arguments", "reps within [1, 64], rows >= 1, dim within [1, 65536]");
    if (do_bm25) {
        if (!dir)
            die("arguments", "--cranfield DIR is required");
        bench_bm25(dir, seconds);
    }
    if (do_dense)
        bench_dense(rows, dim, reps);
    return 0;
}
