/* bm25.h: an in-memory inverted index scored with Lucene's BM25, built once (add, then
 * commit) and searched with an optional allow-list bitset checked during the scan. */
#ifndef MG_BM25_H
#define MG_BM25_H

#include "mg.h"

typedef struct mg_bm25 mg_bm25;

/* k1 >= 0, 0 <= b <= 1; stem/stopwords as for mg_analyzer_new. NULL with *err on failure. */
MG_API mg_bm25 *mg_bm25_new(double k1, double b, const char *stem, int stopwords, const char **err);
MG_API void mg_bm25_free(mg_bm25 *ix);

/* Analyzes and adds one document; *docno gets its number (0, 1, 2, ... in order).
 * MG_ERROR with *err "committed" after mg_bm25_commit, "too many documents", "out of memory". */
MG_API int mg_bm25_add(mg_bm25 *ix, const char *text, size_t len, uint32_t *docno, const char **err);

/* Freezes the index: builds postings, norms and idf. Idempotent. */
MG_API int mg_bm25_commit(mg_bm25 *ix, const char **err);
MG_API int mg_bm25_committed(const mg_bm25 *ix);

/* Top-k documents for query, best first (ties: lower docno first). allow: NULL or a
 * bitset of allow_bits bits (bit i = word i/64, bit i%64); documents not set in it, or
 * at or past allow_bits, are never scored. docs/scores hold room for k; *n gets the count.
 * MG_ERROR "not committed" before commit. Not safe to call from two threads at once. */
MG_API int mg_bm25_search(mg_bm25 *ix, const char *query, size_t len, uint32_t k,
                          const uint64_t *allow, size_t allow_bits,
                          uint32_t *docs, float *scores, size_t *n, const char **err);

/* Like mg_bm25_search, for terms already analyzed (as the index's analyzer outputs them:
 * term i is buf[offs[i] .. offs[i + 1]), offs has nterms + 1 entries), each counting
 * weights[i] times (NULL: once each). Query expansion and boosts go through here without a
 * second analysis. MG_ERROR "weights must be positive" for a weight <= 0, NaN or huge. */
MG_API int mg_bm25_search_terms(mg_bm25 *ix, const char *buf, const uint32_t *offs, size_t nterms,
                                const float *weights, uint32_t k,
                                const uint64_t *allow, size_t allow_bits,
                                uint32_t *docs, float *scores, size_t *n, const char **err);

/* Query strategy: 0 picks per query (default), 1 always term at a time into a dense
 * accumulator, 2 always document at a time with MaxScore. All return the same hits. */
MG_API void mg_bm25_set_strategy(mg_bm25 *ix, int mode);

MG_API uint32_t mg_bm25_count(const mg_bm25 *ix);        /* documents */
MG_API uint32_t mg_bm25_term_count(const mg_bm25 *ix);   /* distinct terms */
/* Document frequency of an already-analyzed term (0 when absent; needs commit). */
MG_API uint32_t mg_bm25_df(const mg_bm25 *ix, const char *term, size_t len);
/* Length of a document in terms, after analysis. */
MG_API uint32_t mg_bm25_doc_len(const mg_bm25 *ix, uint32_t docno);
MG_API double mg_bm25_k1(const mg_bm25 *ix);
MG_API double mg_bm25_b(const mg_bm25 *ix);
MG_API const char *mg_bm25_stem(const mg_bm25 *ix);
MG_API int mg_bm25_stopwords(const mg_bm25 *ix);

/* Binary file holding the committed index (terms, postings, lengths, settings); written
 * to path.tmp then renamed, so readers never see half a file. */
MG_API int mg_bm25_save(const mg_bm25 *ix, const char *path, const char **err);
/* NULL with *err: "cannot open", "not a bm25 index", "corrupt index", "out of memory". */
MG_API mg_bm25 *mg_bm25_load(const char *path, const char **err);

#endif
