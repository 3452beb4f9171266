/* shdict.h: moongate.shared, a key/value store shared by all worker processes (as
 * OpenResty's ngx.shared.DICT): one MAP_SHARED|MAP_ANONYMOUS region mapped before the fork. */
#ifndef MG_SHDICT_H
#define MG_SHDICT_H

#include <stddef.h>
#include <stdint.h>

#include "mg.h"

enum { MG_SHDICT_NUMBER = 1, MG_SHDICT_STRING = 2, MG_SHDICT_BOOLEAN = 3 };
enum { MG_SHDICT_SET = 0, MG_SHDICT_ADD = 1, MG_SHDICT_REPLACE = 2 };

#define MG_SHDICT_DEFAULT_SIZE (16u << 20)
#define MG_SHDICT_MAX_DICTS 64
#define MG_SHDICT_MAX_NAME 47
#define MG_SHDICT_MAX_KEY 65535

typedef struct {
    int type;   /* MG_SHDICT_* */
    double num; /* number, or 0/1 for a boolean */
    size_t len; /* string length (also when it did not fit the caller's buffer) */
} mg_shdict_value;

/* Maps the shared region (bytes: total size; 0 = default 16 MiB). Call in the master before
 * forking workers. MG_DECLINED if it is already mapped; MG_ERROR if mmap fails. Every other
 * call maps the default size lazily when this was never called (single-process use). */
MG_API int mg_shdict_init(size_t bytes);

/* Id (>= 0) of the named dict, created on first use; MG_ERROR when the name is empty, longer
 * than MG_SHDICT_MAX_NAME, or MG_SHDICT_MAX_DICTS names exist already. */
MG_API int mg_shdict_open(const char *name, size_t len);

/* MG_OK: *out filled, a string copied into buf; MG_AGAIN: the string is longer than cap
 * (out->len says how long; nothing copied); MG_DECLINED: absent or expired. */
MG_API int mg_shdict_get(int dict, const char *key, size_t klen, mg_shdict_value *out, char *buf, size_t cap);

/* mode MG_SHDICT_SET / ADD (only if absent) / REPLACE (only if present). ttl in seconds,
 * 0 = never expires. MG_OK; MG_DECLINED ("exists" / "not found"); MG_ERROR ("no memory",
 * "value too large"). Least recently used entries are evicted to make room. */
MG_API int mg_shdict_set(int dict, const char *key, size_t klen, int type, double num, const char *str,
                         size_t slen, double ttl, int mode, const char **err);

/* Adds by to a number. When the key is absent: with has_init, stores init + by with ttl;
 * without, MG_DECLINED. MG_ERROR "not a number" when the value is not a number. */
MG_API int mg_shdict_incr(int dict, const char *key, size_t klen, double by, int has_init, double init,
                          double ttl, double *out, const char **err);

/* Adds by to the number at key only when the result stays <= limit (an absent key counts as 0
 * and is created with ttl). MG_OK: added, *out the new value; MG_DECLINED: it would not fit,
 * *out the current value; MG_ERROR: "not a number" / "no memory". */
MG_API int mg_shdict_incr_capped(int dict, const char *key, size_t klen, double by, double limit, double ttl,
                                 double *out, const char **err);

MG_API int mg_shdict_delete(int dict, const char *key, size_t klen);

/* Remaining seconds in *ttl (0 when the key never expires); MG_DECLINED when absent. */
MG_API int mg_shdict_ttl(int dict, const char *key, size_t klen, double *ttl);

/* Sets the ttl of an existing key (0 = never expires); MG_DECLINED when absent. */
MG_API int mg_shdict_expire(int dict, const char *key, size_t klen, double ttl);

/* Live keys starting with prefix, written to buf as (uint32 length, bytes) records.
 * MG_AGAIN when cap is too small: *used says how many bytes are needed. */
MG_API int mg_shdict_keys(int dict, const char *prefix, size_t plen, char *buf, size_t cap, size_t *used,
                          size_t *count);

/* Removes every key of the dict. */
MG_API int mg_shdict_flush(int dict);

/* Region-wide figures: arena bytes, free bytes, live entries, evictions so far. */
MG_API int mg_shdict_stats(size_t *capacity, size_t *free_bytes, size_t *entries, uint64_t *evictions);

#endif
