/* bitset.c: population count for allow-list bitsets (the hot part; set/get stay in Lua
 * on an ffi uint64_t array). */
#include "bitset.h"

size_t mg_bitset_count(const uint64_t *words, size_t nbits)
{
    size_t n = 0, full = nbits / 64;
    for (size_t i = 0; i < full; i++)
        n += (size_t)__builtin_popcountll(words[i]);
    if (nbits % 64)
        n += (size_t)__builtin_popcountll(words[full] & ((1ull << (nbits % 64)) - 1));
    return n;
}
