/* vectors.c: dense vector store with exact top-k dot-product search. Rows are padded to
 * 64 bytes so every kernel runs whole SIMD blocks; the kernel is picked once at run time. */
#include "vectors.h"
#include "checked_file.h"
#include "topk.h"

#include <immintrin.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct mg_vectors {
    uint32_t dim;
    int quant;
    size_t stride;      /* elements per stored row: floats (f32) or bytes (i8) */
    size_t row_bytes;
    size_t count, cap;
    unsigned char *data;   /* 64-byte aligned */
    float *scale;          /* i8: per-row scale */
    void *map;             /* a loaded file, mapped read-only: data and scale point into it */
    size_t map_len;
};

/* ---- kernels ------------------------------------------------------------------------
 * f32: out[r] = dot(q, row r) over `stride` floats (a multiple of 16, padding is zero).
 * i8:  out[r] = dot(q16, row r) in int32 over `stride` bytes (a multiple of 64). */

/* Software prefetch this far ahead of the row being scored: the hardware prefetcher alone
 * leaves the scan some 10% short of a plain sequential read on the machines we measured. */
#define PREFETCH_AHEAD 4096

static inline void prefetch_row(const void *row, size_t bytes)
{
    const char *p = (const char *)row + PREFETCH_AHEAD;
    for (size_t j = 0; j < bytes; j += 64)
        __builtin_prefetch(p + j, 0, 3);
}

typedef void (*f32_kernel)(const float *q, const float *base, size_t stride, size_t nrows, float *out);
typedef void (*i8_kernel)(const int16_t *q, const int8_t *base, size_t stride, size_t nrows, int32_t *out);

static void f32_portable(const float *q, const float *base, size_t stride, size_t nrows, float *out)
{
    for (size_t r = 0; r < nrows; r++) {
        const float *x = base + r * stride;
        float a[8] = {0};
        for (size_t j = 0; j < stride; j += 8)
            for (int l = 0; l < 8; l++)
                a[l] += q[j + l] * x[j + l];
        out[r] = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
    }
}

static void i8_portable(const int16_t *q, const int8_t *base, size_t stride, size_t nrows, int32_t *out)
{
    for (size_t r = 0; r < nrows; r++) {
        const int8_t *x = base + r * stride;
        int32_t a[16] = {0};   /* independent lanes the compiler can keep in vector registers */
        for (size_t j = 0; j < stride; j += 16)
            for (int l = 0; l < 16; l++)
                a[l] += (int32_t)q[j + l] * x[j + l];
        int32_t s = 0;
        for (int l = 0; l < 16; l++)
            s += a[l];
        out[r] = s;
    }
}

__attribute__((target("avx2,fma")))
static void f32_avx2(const float *q, const float *base, size_t stride, size_t nrows, float *out)
{
    for (size_t r = 0; r < nrows; r++) {
        const float *x = base + r * stride;
        prefetch_row(x, stride * 4);
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        size_t j = 0;
        for (; j + 32 <= stride; j += 32) {
            a0 = _mm256_fmadd_ps(_mm256_load_ps(x + j), _mm256_load_ps(q + j), a0);
            a1 = _mm256_fmadd_ps(_mm256_load_ps(x + j + 8), _mm256_load_ps(q + j + 8), a1);
            a2 = _mm256_fmadd_ps(_mm256_load_ps(x + j + 16), _mm256_load_ps(q + j + 16), a2);
            a3 = _mm256_fmadd_ps(_mm256_load_ps(x + j + 24), _mm256_load_ps(q + j + 24), a3);
        }
        if (j < stride) {
            a0 = _mm256_fmadd_ps(_mm256_load_ps(x + j), _mm256_load_ps(q + j), a0);
            a1 = _mm256_fmadd_ps(_mm256_load_ps(x + j + 8), _mm256_load_ps(q + j + 8), a1);
        }
        __m256 s = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
        out[r] = _mm_cvtss_f32(h);
    }
}

__attribute__((target("avx2")))
static void i8_avx2(const int16_t *q, const int8_t *base, size_t stride, size_t nrows, int32_t *out)
{
    for (size_t r = 0; r < nrows; r++) {
        const int8_t *x = base + r * stride;
        prefetch_row(x, stride);
        __m256i a0 = _mm256_setzero_si256(), a1 = a0;
        for (size_t j = 0; j < stride; j += 32) {
            __m256i x0 = _mm256_cvtepi8_epi16(_mm_load_si128((const __m128i *)(x + j)));
            __m256i x1 = _mm256_cvtepi8_epi16(_mm_load_si128((const __m128i *)(x + j + 16)));
            a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(x0, _mm256_load_si256((const __m256i *)(q + j))));
            a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(x1, _mm256_load_si256((const __m256i *)(q + j + 16))));
        }
        __m256i s = _mm256_add_epi32(a0, a1);
        __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
        h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
        h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1));
        out[r] = _mm_cvtsi128_si32(h);
    }
}

__attribute__((target("avx512f")))
static void f32_avx512(const float *q, const float *base, size_t stride, size_t nrows, float *out)
{
    for (size_t r = 0; r < nrows; r++) {
        const float *x = base + r * stride;
        prefetch_row(x, stride * 4);
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        size_t j = 0;
        for (; j + 64 <= stride; j += 64) {
            a0 = _mm512_fmadd_ps(_mm512_load_ps(x + j), _mm512_load_ps(q + j), a0);
            a1 = _mm512_fmadd_ps(_mm512_load_ps(x + j + 16), _mm512_load_ps(q + j + 16), a1);
            a2 = _mm512_fmadd_ps(_mm512_load_ps(x + j + 32), _mm512_load_ps(q + j + 32), a2);
            a3 = _mm512_fmadd_ps(_mm512_load_ps(x + j + 48), _mm512_load_ps(q + j + 48), a3);
        }
        for (; j < stride; j += 16)
            a0 = _mm512_fmadd_ps(_mm512_load_ps(x + j), _mm512_load_ps(q + j), a0);
        out[r] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
    }
}

__attribute__((target("avx512f,avx512bw")))
static void i8_avx512(const int16_t *q, const int8_t *base, size_t stride, size_t nrows, int32_t *out)
{
    for (size_t r = 0; r < nrows; r++) {
        const int8_t *x = base + r * stride;
        prefetch_row(x, stride);
        __m512i a0 = _mm512_setzero_si512(), a1 = a0;
        for (size_t j = 0; j < stride; j += 64) {
            __m512i x0 = _mm512_cvtepi8_epi16(_mm256_load_si256((const __m256i *)(x + j)));
            __m512i x1 = _mm512_cvtepi8_epi16(_mm256_load_si256((const __m256i *)(x + j + 32)));
            a0 = _mm512_add_epi32(a0, _mm512_madd_epi16(x0, _mm512_load_si512(q + j)));
            a1 = _mm512_add_epi32(a1, _mm512_madd_epi16(x1, _mm512_load_si512(q + j + 32)));
        }
        out[r] = _mm512_reduce_add_epi32(_mm512_add_epi32(a0, a1));
    }
}

static struct {
    const char *name;
    f32_kernel f32;
    i8_kernel i8;
} kernel;

static int pick(const char *name)
{
    __builtin_cpu_init();
    if (strcmp(name, "avx512") == 0) {
        if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw"))
            return MG_DECLINED;
        kernel.name = "avx512"; kernel.f32 = f32_avx512; kernel.i8 = i8_avx512;
    } else if (strcmp(name, "avx2") == 0) {
        if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma"))
            return MG_DECLINED;
        kernel.name = "avx2"; kernel.f32 = f32_avx2; kernel.i8 = i8_avx2;
    } else if (strcmp(name, "portable") == 0) {
        kernel.name = "portable"; kernel.f32 = f32_portable; kernel.i8 = i8_portable;
    } else {
        return MG_DECLINED;
    }
    return MG_OK;
}

/* Runs when the library loads, before any thread can search. */
__attribute__((constructor)) static void kernel_init(void)
{
    const char *env = getenv("MOONGATE_SIMD");
    if (env && pick(env) == MG_OK)
        return;
    if (pick("avx512") != MG_OK && pick("avx2") != MG_OK)
        pick("portable");
}

const char *mg_vectors_kernel(void)
{
    return kernel.name;
}

int mg_vectors_set_kernel(const char *name)
{
    return pick(name);
}

/* ---- the store ----------------------------------------------------------------------- */

mg_vectors *mg_vectors_new(uint32_t dim, int quant, const char **err)
{
    if (dim < 1 || dim > MG_VECTORS_MAX_DIM) {
        if (err) *err = "dim must be within [1, 65536]";
        return NULL;
    }
    if (quant != MG_VEC_F32 && quant != MG_VEC_I8) {
        if (err) *err = "unknown quantization";
        return NULL;
    }
    mg_vectors *vs = calloc(1, sizeof *vs);
    if (!vs) {
        if (err) *err = "out of memory";
        return NULL;
    }
    vs->dim = dim;
    vs->quant = quant;
    if (quant == MG_VEC_F32) {
        vs->stride = (dim + 15) & ~(size_t)15;
        vs->row_bytes = vs->stride * 4;
    } else {
        vs->stride = (dim + 63) & ~(size_t)63;
        vs->row_bytes = vs->stride;
    }
    return vs;
}

static void release(mg_vectors *vs)
{
    if (vs->map) {
        munmap(vs->map, vs->map_len);
        vs->map = NULL;
    } else {
        free(vs->data);
        free(vs->scale);
    }
    vs->data = NULL;
    vs->scale = NULL;
}

void mg_vectors_free(mg_vectors *vs)
{
    if (!vs)
        return;
    release(vs);
    free(vs);
}

int mg_vectors_reserve(mg_vectors *vs, size_t n, const char **err)
{
    if (n <= vs->cap)
        return MG_OK;
    if (n > UINT32_MAX || n > SIZE_MAX / vs->row_bytes) {
        if (err) *err = "too many vectors";
        return MG_ERROR;
    }
    unsigned char *d = aligned_alloc(64, n * vs->row_bytes);
    float *s = vs->quant == MG_VEC_I8 ? malloc(n * sizeof *s) : NULL;
    if (!d || (vs->quant == MG_VEC_I8 && !s)) {
        free(d);
        free(s);
        if (err) *err = "out of memory";
        return MG_ERROR;
    }
    if (vs->count) {   /* also how a mapped store becomes writable: its rows move to memory */
        memcpy(d, vs->data, vs->count * vs->row_bytes);
        if (s)
            memcpy(s, vs->scale, vs->count * sizeof *s);
    }
    release(vs);
    vs->data = d;
    vs->scale = s;
    vs->cap = n;
    return MG_OK;
}

static int all_finite(const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return 0;
    return 1;
}

int mg_vectors_add(mg_vectors *vs, const float *v, size_t n, uint32_t *first, const char **err)
{
    if (!all_finite(v, n * vs->dim)) {
        if (err) *err = "not a finite number";
        return MG_ERROR;
    }
    if (vs->count + n > vs->cap) {
        size_t cap = vs->cap ? vs->cap * 2 : 1024;
        while (cap < vs->count + n)
            cap *= 2;
        if (cap > UINT32_MAX)
            cap = vs->count + n;
        if (mg_vectors_reserve(vs, cap, err) != MG_OK)
            return MG_ERROR;
    }
    if (first)
        *first = (uint32_t)vs->count;
    for (size_t i = 0; i < n; i++) {
        const float *x = v + i * vs->dim;
        unsigned char *row = vs->data + vs->count * vs->row_bytes;
        memset(row, 0, vs->row_bytes);
        if (vs->quant == MG_VEC_F32) {
            memcpy(row, x, vs->dim * sizeof *x);
        } else {
            float m = 0;
            for (uint32_t j = 0; j < vs->dim; j++)
                m = fmaxf(m, fabsf(x[j]));
            float scale = m / 127.0f;
            int8_t *c = (int8_t *)row;
            for (uint32_t j = 0; j < vs->dim && m > 0; j++) {
                long q = lrintf(x[j] / scale);
                c[j] = (int8_t)(q > 127 ? 127 : q < -127 ? -127 : q);
            }
            vs->scale[vs->count] = scale;
        }
        vs->count++;
    }
    return MG_OK;
}

/* A query prepared for the kernels: padded and aligned, quantized for int8 stores. */
typedef struct {
    float *f;
    int16_t *i;
    float scale;
} prepared;

static int prepare(const mg_vectors *vs, const float *q, prepared *p, const char **err)
{
    memset(p, 0, sizeof *p);
    if (!all_finite(q, vs->dim)) {
        if (err) *err = "not a finite number";
        return MG_ERROR;
    }
    if (vs->quant == MG_VEC_F32) {
        p->f = aligned_alloc(64, vs->stride * sizeof(float));
        if (!p->f)
            goto oom;
        memset(p->f, 0, vs->stride * sizeof(float));
        memcpy(p->f, q, vs->dim * sizeof(float));
    } else {
        p->i = aligned_alloc(64, vs->stride * sizeof(int16_t));
        if (!p->i)
            goto oom;
        memset(p->i, 0, vs->stride * sizeof(int16_t));
        /* as many query levels as keep 127 * levels * stride within int32 */
        double levels = fmin(32767.0, floor(2147483647.0 / (127.0 * (double)vs->stride)));
        float m = 0;
        for (uint32_t j = 0; j < vs->dim; j++)
            m = fmaxf(m, fabsf(q[j]));
        p->scale = m > 0 ? (float)(m / levels) : 0;
        for (uint32_t j = 0; j < vs->dim && m > 0; j++) {
            long v = lrintf(q[j] / p->scale);
            p->i[j] = (int16_t)(v > levels ? levels : v < -levels ? -levels : v);
        }
    }
    return MG_OK;
oom:
    if (err) *err = "out of memory";
    return MG_ERROR;
}

#define BLOCK 256

/* Scores of rows [r, r + n), n <= BLOCK. */
static void score_block(const mg_vectors *vs, const prepared *p, size_t r, size_t n, float *out)
{
    if (vs->quant == MG_VEC_F32) {
        kernel.f32(p->f, (const float *)(vs->data + r * vs->row_bytes), vs->stride, n, out);
    } else {
        int32_t dots[BLOCK];
        kernel.i8(p->i, (const int8_t *)(vs->data + r * vs->row_bytes), vs->stride, n, dots);
        for (size_t i = 0; i < n; i++)
            out[i] = vs->scale[r + i] * p->scale * (float)dots[i];
    }
}

typedef struct {
    mg_hit *heap;
    size_t n, k;
} topk;

/* Rows arrive in increasing order, so an equal score never displaces an earlier row. */
static void scan_range(const mg_vectors *vs, const prepared *p, size_t r, size_t end, topk *t)
{
    float s[BLOCK];
    while (r < end) {
        size_t n = end - r < BLOCK ? end - r : BLOCK;
        score_block(vs, p, r, n, s);
        for (size_t i = 0; i < n; i++) {
            mg_topk_offer(t->heap, &t->n, t->k, (mg_hit){s[i], (uint32_t)(r + i)});
        }
        r += n;
    }
}

static size_t next_set(const uint64_t *w, size_t r, size_t lim)
{
    while (r < lim) {
        uint64_t x = w[r >> 6] >> (r & 63);
        if (x)
            return r + (size_t)__builtin_ctzll(x) < lim ? r + (size_t)__builtin_ctzll(x) : lim;
        r = (r | 63) + 1;
    }
    return lim;
}

static size_t next_clear(const uint64_t *w, size_t r, size_t lim)
{
    while (r < lim) {
        uint64_t x = ~w[r >> 6] >> (r & 63);
        if (x)
            return r + (size_t)__builtin_ctzll(x) < lim ? r + (size_t)__builtin_ctzll(x) : lim;
        r = (r | 63) + 1;
    }
    return lim;
}

int mg_vectors_search(const mg_vectors *vs, const float *q, uint32_t k,
                      const uint64_t *allow, size_t allow_bits,
                      uint32_t *rows, float *scores, size_t *n, const char **err)
{
    *n = 0;
    prepared p;
    if (prepare(vs, q, &p, err) != MG_OK)
        return MG_ERROR;
    size_t kk = k < vs->count ? k : vs->count;
    topk t = {NULL, 0, kk};
    if (kk) {
        t.heap = malloc(kk * sizeof *t.heap);
        if (!t.heap) {
            free(p.f);
            free(p.i);
            if (err) *err = "out of memory";
            return MG_ERROR;
        }
        if (!allow) {
            scan_range(vs, &p, 0, vs->count, &t);
        } else {
            size_t lim = allow_bits < vs->count ? allow_bits : vs->count;
            for (size_t r = next_set(allow, 0, lim); r < lim;) {
                size_t e = next_clear(allow, r, lim);
                scan_range(vs, &p, r, e, &t);
                r = next_set(allow, e, lim);
            }
        }
    }
    mg_topk_drain(t.heap, t.n, rows, scores);
    *n = t.n;
    free(t.heap);
    free(p.f);
    free(p.i);
    return MG_OK;
}

int mg_vectors_scores(const mg_vectors *vs, const float *q, float *out, const char **err)
{
    prepared p;
    if (prepare(vs, q, &p, err) != MG_OK)
        return MG_ERROR;
    for (size_t r = 0; r < vs->count; r += BLOCK)
        score_block(vs, &p, r, vs->count - r < BLOCK ? vs->count - r : BLOCK, out + r);
    free(p.f);
    free(p.i);
    return MG_OK;
}

int mg_vectors_get(const mg_vectors *vs, uint32_t r, float *out)
{
    if (r >= vs->count)
        return MG_DECLINED;
    const unsigned char *row = vs->data + (size_t)r * vs->row_bytes;
    if (vs->quant == MG_VEC_F32) {
        memcpy(out, row, vs->dim * sizeof *out);
    } else {
        for (uint32_t j = 0; j < vs->dim; j++)
            out[j] = vs->scale[r] * (float)((const int8_t *)row)[j];
    }
    return MG_OK;
}

uint32_t mg_vectors_count(const mg_vectors *vs) { return (uint32_t)vs->count; }
uint32_t mg_vectors_dim(const mg_vectors *vs) { return vs->dim; }
int mg_vectors_quant(const mg_vectors *vs) { return vs->quant; }
size_t mg_vectors_row_bytes(const mg_vectors *vs) { return vs->row_bytes; }
const void *mg_vectors_data(const mg_vectors *vs) { return vs->data; }

/* ---- file format: a 64-byte header, rows (count * row_bytes, so 64-byte aligned in the
 * file as in memory), scales (i8), then the XXH3-64 of everything before
 * (core/checked_file.h). Loading maps the
 * file: workers that load the same index share its pages, and nothing is copied. */

#define VEC_MAGIC "MGVECS\0\0"
#define VEC_VERSION 3u

typedef struct {
    char magic[8];
    uint32_t version, endian, dim, quant;
    uint64_t count, row_bytes;
    unsigned char reserved[24];
} vec_header;

_Static_assert(sizeof(vec_header) == 64, "rows start 64-byte aligned in the file");

int mg_vectors_save(const mg_vectors *vs, const char *path, const char **err)
{
    mg_checked_file w;
    if (mg_checked_open(&w, path, err) != MG_OK)
        return MG_ERROR;
    vec_header h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, VEC_MAGIC, 8);
    h.version = VEC_VERSION;
    h.endian = 0x01020304;
    h.dim = vs->dim;
    h.quant = (uint32_t)vs->quant;
    h.count = vs->count;
    h.row_bytes = vs->row_bytes;
    size_t nd = vs->count * vs->row_bytes, ns = vs->quant == MG_VEC_I8 ? vs->count * 4 : 0;
    mg_checked_write(&w, &h, sizeof h);
    mg_checked_write(&w, vs->data, nd);
    mg_checked_write(&w, vs->scale, ns);
    return mg_checked_commit(&w, err);
}

mg_vectors *mg_vectors_load(const char *path, const char **err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    mg_vectors *vs = NULL;
    void *map = MAP_FAILED;
    size_t len = 0;
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0)
            close(fd);
        if (err) *err = "cannot open";
        return NULL;
    }
    vec_header h;
    if (pread(fd, &h, sizeof h, 0) != (ssize_t)sizeof h || memcmp(h.magic, VEC_MAGIC, 8) != 0 ||
        h.version != VEC_VERSION || h.endian != 0x01020304) {
        if (err) *err = "not a vector file";
        goto fail;
    }
    if (!(vs = mg_vectors_new(h.dim, (int)h.quant, err)) || h.row_bytes != vs->row_bytes ||
        h.count > UINT32_MAX) {
        if (err) *err = "corrupt vector file";
        goto fail;
    }
    size_t nd = h.count * h.row_bytes, ns = vs->quant == MG_VEC_I8 ? h.count * 4 : 0;
    len = sizeof h + nd + ns + 8;
    if ((uint64_t)st.st_size != len) {
        if (err) *err = "corrupt vector file";
        goto fail;
    }
    map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
        if (err) *err = "out of memory";
        goto fail;
    }
    if (!mg_checked_verify(map, len)) {
        if (err) *err = "corrupt vector file";
        goto fail;
    }
    vs->map = map;
    vs->map_len = len;
    vs->data = (unsigned char *)map + sizeof h;
    vs->scale = ns ? (float *)(void *)((unsigned char *)map + sizeof h + nd) : NULL;
    vs->count = vs->cap = h.count;
    close(fd);
    return vs;
fail:
    if (map != MAP_FAILED)
        munmap(map, len);
    mg_vectors_free(vs);
    close(fd);
    return NULL;
}
