/* simhash.h: 64-bit SimHash fingerprints over analyzer term shingles, for near-duplicate
 * detection (a few differing bits = nearly the same text). */
#ifndef MG_SIMHASH_H
#define MG_SIMHASH_H

#include "mg.h"
#include "analyzer.h"

/* Fingerprint of text: each run of `shingle` consecutive terms (all terms when the text
 * has fewer) is hashed to 64 bits and votes on every bit. Text with no terms gives 0.
 * shingle in [1, 16]. */
MG_API int mg_simhash_text(mg_analyzer *a, const char *text, size_t len, uint32_t shingle,
                           uint64_t *out, const char **err);

/* Number of differing bits, 0..64. */
MG_API int mg_simhash_distance(uint64_t a, uint64_t b);

#endif
