/* checked_file.h: index files (BM25 postings, vectors) written atomically — into PATH.tmp,
 * renamed over PATH only when every write succeeded — and sealed with an XXH3-64 checksum of
 * everything before it, which a reader verifies before trusting a byte. */
#ifndef MG_CHECKED_FILE_H
#define MG_CHECKED_FILE_H

#include <stdint.h>
#include <stdio.h>
#include <xxhash.h>

typedef struct {
    FILE *f;
    char *path, *tmp;
    XXH3_state_t *sum;
    int bad;
} mg_checked_file;

/* Start writing path (through path.tmp). MG_OK or MG_ERROR with *err set. */
int mg_checked_open(mg_checked_file *w, const char *path, const char **err);
/* Append n bytes; a failure is remembered and reported by the commit. */
void mg_checked_write(mg_checked_file *w, const void *p, size_t n);
/* Append the checksum, close, rename over the target; on any failure remove the temporary
 * file and leave the target as it was. MG_OK or MG_ERROR ("write failed"). */
int mg_checked_commit(mg_checked_file *w, const char **err);

/* Whether the last 8 bytes of data[0..len) are the checksum of the bytes before them. */
int mg_checked_verify(const void *data, size_t len);

#endif
