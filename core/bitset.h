/* bitset.h: helpers for the allow-list bitsets that bm25 and vectors searches take
 * (bit i is word i/64, bit i%64; the words themselves are owned by Lua). */
#ifndef MG_BITSET_H
#define MG_BITSET_H

#include "mg.h"

/* Number of set bits among the first nbits bits of words. */
MG_API size_t mg_bitset_count(const uint64_t *words, size_t nbits);

#endif
