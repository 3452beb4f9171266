/* checked_file.c: atomic, checksummed index files (see checked_file.h). */
#include "checked_file.h"
#include "mg.h"

#include <stdlib.h>
#include <string.h>

static void cleanup(mg_checked_file *w)
{
    if (w->f) fclose(w->f);
    if (w->tmp) remove(w->tmp);
    free(w->tmp);
    XXH3_freeState(w->sum);
    memset(w, 0, sizeof *w);
}

int mg_checked_open(mg_checked_file *w, const char *path, const char **err)
{
    memset(w, 0, sizeof *w);
    size_t pl = strlen(path);
    w->tmp = malloc(pl + 5);
    w->sum = XXH3_createState();
    if (!w->tmp || !w->sum) {
        free(w->tmp);
        XXH3_freeState(w->sum);
        if (err) *err = "out of memory";
        return MG_ERROR;
    }
    memcpy(w->tmp, path, pl);
    memcpy(w->tmp + pl, ".tmp", 5);
    w->path = (char *)path;
    XXH3_64bits_reset(w->sum);
    if (!(w->f = fopen(w->tmp, "wb"))) {
        free(w->tmp);
        XXH3_freeState(w->sum);
        if (err) *err = "cannot open";
        return MG_ERROR;
    }
    return MG_OK;
}

void mg_checked_write(mg_checked_file *w, const void *p, size_t n)
{
    if (!n || w->bad) return;
    XXH3_64bits_update(w->sum, p, n);
    if (fwrite(p, 1, n, w->f) != n) w->bad = 1;
}

int mg_checked_commit(mg_checked_file *w, const char **err)
{
    uint64_t sum = XXH3_64bits_digest(w->sum);
    if (!w->bad && fwrite(&sum, 8, 1, w->f) != 1) w->bad = 1;
    int closed = fclose(w->f);
    w->f = NULL;
    if (w->bad || closed != 0 || rename(w->tmp, w->path) != 0) {
        cleanup(w);
        if (err) *err = "write failed";
        return MG_ERROR;
    }
    free(w->tmp);
    w->tmp = NULL;
    cleanup(w);
    return MG_OK;
}

int mg_checked_verify(const void *data, size_t len)
{
    if (len < 8) return 0;
    uint64_t stored;
    memcpy(&stored, (const char *)data + len - 8, 8);
    return XXH3_64bits(data, len - 8) == stored;
}
