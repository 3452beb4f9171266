/* analyzer.h: turns text into index terms (NFKC case folding, Unicode word split,
 * optional English stop words, optional Snowball stemming) for bm25 and simhash. */
#ifndef MG_ANALYZER_H
#define MG_ANALYZER_H

#include "mg.h"

typedef struct mg_analyzer mg_analyzer;

/* Longest term kept, in bytes after normalization; longer runs are dropped. */
#define MG_ANALYZER_MAX_TERM 255

/* stem: a Snowball language name ("english", "french", ...) or NULL/"" for none.
 * stopwords: nonzero drops the English stop words (Lucene's default set of 33).
 * Returns NULL with *err set ("unknown stemmer language", "out of memory"). */
MG_API mg_analyzer *mg_analyzer_new(const char *stem, int stopwords, const char **err);
MG_API void mg_analyzer_free(mg_analyzer *a);

/* Analyzes text[0..len). On MG_OK, *n terms were produced; term i is the bytes
 * buf[offs[i] .. offs[i+1]) (offs has n+1 entries). The buffers belong to the analyzer
 * and stay valid until its next run or free. Invalid UTF-8 bytes act as separators. */
MG_API int mg_analyzer_run(mg_analyzer *a, const char *text, size_t len,
                           const char **buf, const uint32_t **offs, size_t *n,
                           const char **err);

/* The settings the analyzer was made with ("" when not stemming). */
MG_API const char *mg_analyzer_stem(const mg_analyzer *a);
MG_API int mg_analyzer_stopwords(const mg_analyzer *a);

/* 1 when term[0..len) is one of the English stop words. */
MG_API int mg_analyzer_is_stopword(const char *term, size_t len);

#endif
