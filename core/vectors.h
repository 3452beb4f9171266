/* vectors.h: dense vector store (float32, or int8 with a per-vector scale) with exact
 * top-k dot-product search; SIMD kernels (AVX-512, AVX2, portable) chosen at run time. */
#ifndef MG_VECTORS_H
#define MG_VECTORS_H

#include "mg.h"

typedef struct mg_vectors mg_vectors;

enum { MG_VEC_F32 = 0, MG_VEC_I8 = 1 };

#define MG_VECTORS_MAX_DIM 65536

/* dim in [1, MG_VECTORS_MAX_DIM]; quant MG_VEC_F32 or MG_VEC_I8. */
MG_API mg_vectors *mg_vectors_new(uint32_t dim, int quant, const char **err);
MG_API void mg_vectors_free(mg_vectors *vs);

/* Room for n rows in total without reallocating. */
MG_API int mg_vectors_reserve(mg_vectors *vs, size_t n, const char **err);

/* Appends n vectors of dim floats each, back to back; *first gets the first row number.
 * Vectors are stored as given: normalize them first if the score should be a cosine.
 * MG_ERROR "not a finite number" when a component is NaN or infinite. */
MG_API int mg_vectors_add(mg_vectors *vs, const float *v, size_t n, uint32_t *first, const char **err);

/* Exact top-k rows by dot product with q (dim floats), best first, ties by lower row.
 * int8 stores quantize the query too (score = scale_row * scale_q * integer dot).
 * allow: NULL or a bitset of allow_bits bits; rows not in it are skipped in the scan. */
MG_API int mg_vectors_search(const mg_vectors *vs, const float *q, uint32_t k,
                             const uint64_t *allow, size_t allow_bits,
                             uint32_t *rows, float *scores, size_t *n, const char **err);

/* All count() scores of q, in row order (for re-scoring and benchmarks). */
MG_API int mg_vectors_scores(const mg_vectors *vs, const float *q, float *out, const char **err);

/* Row r as floats (dequantized for int8). MG_DECLINED when r is out of range. */
MG_API int mg_vectors_get(const mg_vectors *vs, uint32_t r, float *out);

MG_API uint32_t mg_vectors_count(const mg_vectors *vs);
MG_API uint32_t mg_vectors_dim(const mg_vectors *vs);
MG_API int mg_vectors_quant(const mg_vectors *vs);
/* Bytes one stored row takes (padded to 64 bytes), and the base of the row data. */
MG_API size_t mg_vectors_row_bytes(const mg_vectors *vs);
MG_API const void *mg_vectors_data(const mg_vectors *vs);

MG_API int mg_vectors_save(const mg_vectors *vs, const char *path, const char **err);
/* NULL with *err: "cannot open", "not a vector file", "corrupt vector file", "out of memory". */
MG_API mg_vectors *mg_vectors_load(const char *path, const char **err);

/* The kernel in use: "avx512", "avx2" or "portable". */
MG_API const char *mg_vectors_kernel(void);
/* Forces a kernel by name (tests and benchmarks); MG_DECLINED when this CPU lacks it.
 * The MOONGATE_SIMD environment variable does the same at start-up. */
MG_API int mg_vectors_set_kernel(const char *name);

#endif
