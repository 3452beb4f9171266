/* test_vectors.c: every SIMD kernel against a double-precision reference, exact top-k
 * order, allow lists across word boundaries, int8 error bounds, save/load. */
#include "vectors.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failures;
#define EXPECT(c) do { if (!(c)) { printf("line %d: %s\n", __LINE__, #c); failures++; } } while (0)

static uint64_t rng = 88172645463325252ull;
static float frand(void)
{
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2 - 1;
}

static int cmp_desc(const void *a, const void *b)
{
    double x = ((const double *)a)[0], y = ((const double *)b)[0];
    return x < y ? 1 : x > y ? -1 : 0;
}

static void check_kernel(const char *kname, uint32_t dim, int quant)
{
    const size_t N = 1000;
    const char *err = NULL;
    mg_vectors *vs = mg_vectors_new(dim, quant, &err);
    float *v = malloc(N * dim * sizeof *v), *q = malloc(dim * sizeof *q);
    for (size_t i = 0; i < N * dim; i++) v[i] = frand();
    for (uint32_t j = 0; j < dim; j++) q[j] = frand();
    uint32_t first = 99;
    EXPECT(mg_vectors_add(vs, v, 10, &first, &err) == MG_OK && first == 0);
    EXPECT(mg_vectors_add(vs, v + 10 * dim, N - 10, &first, &err) == MG_OK && first == 10);
    EXPECT(mg_vectors_count(vs) == N);
    double (*ref)[2] = malloc(N * sizeof *ref);
    double maxabs_q = 0;
    for (uint32_t j = 0; j < dim; j++) maxabs_q = fmax(maxabs_q, fabs(q[j]));
    for (size_t i = 0; i < N; i++) {
        double s = 0;
        for (uint32_t j = 0; j < dim; j++) s += (double)q[j] * v[i * dim + j];
        ref[i][0] = s;
        ref[i][1] = (double)i;
    }
    float *all = malloc(N * sizeof *all);
    EXPECT(mg_vectors_scores(vs, q, all, &err) == MG_OK);
    /* f32: float rounding only; i8: half a step of the row's and the query's scale */
    double worst = 0;
    for (size_t i = 0; i < N; i++) {
        double maxabs_v = 0;
        for (uint32_t j = 0; j < dim; j++) maxabs_v = fmax(maxabs_v, fabs(v[i * dim + j]));
        double bound = quant == MG_VEC_F32 ? 1e-5 * dim
            : dim * (maxabs_v / 127 / 2 * maxabs_q + maxabs_q / 4096 * maxabs_v) + 1e-5 * dim;
        double e = fabs(all[i] - ref[i][0]);
        if (e > bound && worst < e) worst = e;
    }
    if (worst > 0)
        printf("%s dim %u quant %d: error %g over its bound\n", kname, dim, quant, worst);
    EXPECT(worst == 0);
    /* top-k equals the order of the kernel's own scores, ties by row */
    qsort(ref, N, sizeof *ref, cmp_desc);
    uint32_t rows[20];
    float sc[20];
    size_t n;
    EXPECT(mg_vectors_search(vs, q, 20, NULL, 0, rows, sc, &n, &err) == MG_OK && n == 20);
    for (size_t i = 0; i < n; i++) {
        EXPECT(sc[i] == all[rows[i]]);
        if (i) EXPECT(sc[i - 1] > sc[i] || (sc[i - 1] == sc[i] && rows[i - 1] < rows[i]));
    }
    if (quant == MG_VEC_F32) EXPECT(rows[0] == (uint32_t)ref[0][1]);
    for (size_t r = 0; r < N; r++) {
        int in = 0;
        for (size_t i = 0; i < n; i++) in |= rows[i] == r;
        if (!in) EXPECT(all[r] < sc[n - 1] || (all[r] == sc[n - 1] && r > rows[n - 1]));
    }
    /* allow list: rows 60..70 and 130, and a few past the bitset's end */
    uint64_t allow[16] = {0};
    for (int r = 60; r <= 70; r++) allow[r / 64] |= 1ull << (r % 64);
    allow[130 / 64] |= 1ull << (130 % 64);
    EXPECT(mg_vectors_search(vs, q, 20, allow, 131, rows, sc, &n, &err) == MG_OK && n == 12);
    for (size_t i = 0; i < n; i++) EXPECT((rows[i] >= 60 && rows[i] <= 70) || rows[i] == 130);
    EXPECT(mg_vectors_search(vs, q, 20, allow, 130, rows, sc, &n, &err) == MG_OK && n == 11);
    free(ref); free(all); free(v); free(q);
    mg_vectors_free(vs);
}

int main(void)
{
    const char *err = NULL;
    const char *kernels[] = {"portable", "avx2", "avx512"};
    const uint32_t dims[] = {1, 7, 16, 100, 384, 385};
    printf("default kernel: %s\n", mg_vectors_kernel());
    for (int k = 0; k < 3; k++) {
        if (mg_vectors_set_kernel(kernels[k]) != MG_OK) {
            printf("kernel %s: not on this CPU, skipped\n", kernels[k]);
            continue;
        }
        EXPECT(strcmp(mg_vectors_kernel(), kernels[k]) == 0);
        for (size_t d = 0; d < sizeof dims / sizeof *dims; d++)
            for (int quant = 0; quant < 2; quant++)
                check_kernel(kernels[k], dims[d], quant);
    }
    EXPECT(mg_vectors_set_kernel("sse9") == MG_DECLINED);

    /* exact small case */
    mg_vectors *vs = mg_vectors_new(3, MG_VEC_F32, &err);
    float rowsv[] = {1, 0, 0, 0, 1, 0, 0.6f, 0.8f, 0};
    EXPECT(mg_vectors_add(vs, rowsv, 3, NULL, &err) == MG_OK);
    float q[] = {0.6f, 0.8f, 0};
    uint32_t r[5];
    float s[5];
    size_t n;
    EXPECT(mg_vectors_search(vs, q, 5, NULL, 0, r, s, &n, &err) == MG_OK && n == 3);
    EXPECT(r[0] == 2 && r[1] == 1 && r[2] == 0);
    EXPECT(fabsf(s[0] - 1.0f) < 1e-6 && fabsf(s[1] - 0.8f) < 1e-6 && fabsf(s[2] - 0.6f) < 1e-6);
    EXPECT(mg_vectors_search(vs, q, 0, NULL, 0, r, s, &n, &err) == MG_OK && n == 0);
    float bad[] = {1, NAN, 0};
    EXPECT(mg_vectors_add(vs, bad, 1, NULL, &err) == MG_ERROR && strcmp(err, "not a finite number") == 0);
    EXPECT(mg_vectors_search(vs, bad, 1, NULL, 0, r, s, &n, &err) == MG_ERROR);
    EXPECT(mg_vectors_count(vs) == 3);
    float got[3];
    EXPECT(mg_vectors_get(vs, 2, got) == MG_OK && got[1] == 0.8f);
    EXPECT(mg_vectors_get(vs, 3, got) == MG_DECLINED);

    /* save / load, both quantizations */
    for (int quant = 0; quant < 2; quant++) {
        mg_vectors *a = mg_vectors_new(5, quant, &err);
        float data[50];
        for (int i = 0; i < 50; i++) data[i] = frand();
        mg_vectors_add(a, data, 10, NULL, &err);
        char path[] = "/tmp/mg_test_vec_XXXXXX";
        EXPECT(mkstemp(path) >= 0);
        EXPECT(mg_vectors_save(a, path, &err) == MG_OK);
        mg_vectors *b = mg_vectors_load(path, &err);
        EXPECT(b && mg_vectors_count(b) == 10 && mg_vectors_dim(b) == 5 && mg_vectors_quant(b) == quant);
        float sa[10], sb[10];
        mg_vectors_scores(a, data, sa, &err);
        if (b) mg_vectors_scores(b, data, sb, &err);
        EXPECT(b && memcmp(sa, sb, sizeof sa) == 0);
        /* a loaded (mapped) store still takes new rows: they move to memory first */
        uint32_t row = 0;
        EXPECT(b && mg_vectors_add(b, data, 1, &row, &err) == MG_OK && row == 10);
        EXPECT(b && mg_vectors_count(b) == 11);
        float back[5];
        EXPECT(b && mg_vectors_get(b, 10, back) == MG_OK && mg_vectors_get(b, 0, data + 45) == MG_OK);
        EXPECT(memcmp(back, data + 45, sizeof back) == 0);
        mg_vectors_free(b);
        /* truncated by one byte */
        FILE *t = fopen(path, "r+b");
        fseek(t, 0, SEEK_END);
        long size = ftell(t);
        fclose(t);
        EXPECT(truncate(path, size - 1) == 0);
        EXPECT(mg_vectors_load(path, &err) == NULL && strcmp(err, "corrupt vector file") == 0);
        EXPECT(truncate(path, size) == 0);
        FILE *f = fopen(path, "r+b");
        fseek(f, 60, SEEK_SET);
        int c = fgetc(f);
        fseek(f, 60, SEEK_SET);
        fputc(c ^ 1, f);
        fclose(f);
        EXPECT(mg_vectors_load(path, &err) == NULL && strcmp(err, "corrupt vector file") == 0);
        f = fopen(path, "wb");
        fputs("nope", f);
        fclose(f);
        EXPECT(mg_vectors_load(path, &err) == NULL && strcmp(err, "not a vector file") == 0);
        remove(path);
        mg_vectors_free(a);
    }
    EXPECT(mg_vectors_new(0, MG_VEC_F32, &err) == NULL && strcmp(err, "dim must be within [1, 65536]") == 0);
    EXPECT(mg_vectors_new(3, 7, &err) == NULL && strcmp(err, "unknown quantization") == 0);
    mg_vectors_free(vs);
    printf("%s\n", failures ? "FAIL" : "ok");
    return failures != 0;
}
