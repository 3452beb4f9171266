/* shdict.c: the cross-worker store behind moongate.shared: one MAP_SHARED|MAP_ANONYMOUS region
 * (mapped by the master before it forks, so every worker sees the same bytes at the same address).
 *
 * Layout: header | hash buckets | arena. The header holds a robust process-shared mutex that
 * guards everything (operations are a hash lookup and a memcpy: short critical sections), the
 * dict name table, the bucket array offset and the LRU list. The arena is managed by a buddy
 * allocator (free blocks merge with their buddies, so memory freed by small entries can serve a
 * large one later); when it is full the least recently used entries are evicted. All links are
 * offsets from the region base. Time is CLOCK_MONOTONIC, which every process on the machine
 * shares, so an expiry written by one worker means the same instant to the others. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "shdict.h"

#define SHD_MAGIC 0x6d67736864696374ULL /* "mgshdict" */
#define MIN_ORDER 6                     /* 64-byte blocks */
#define MAX_ORDER 24                    /* 16 MiB: the largest entry the region can hold */
#define NORDERS (MAX_ORDER + 1)

typedef uint64_t off_t64;

typedef struct {
    char name[MG_SHDICT_MAX_NAME + 1];
} shd_name;

typedef struct {
    uint64_t magic;
    pthread_mutex_t lock;
    uint64_t size;       /* whole mapping */
    uint64_t arena;      /* offset of the arena */
    uint64_t arena_size; /* a multiple of the top block size */
    uint32_t top_order;  /* order of the largest block (arena made of these) */
    uint32_t ndicts;
    uint64_t buckets; /* offset of the bucket array (uint64 offsets) */
    uint64_t nbuckets;
    uint64_t free_head[NORDERS];
    uint64_t free_bytes;
    uint64_t lru_head, lru_tail; /* most recently used first */
    uint64_t entries;
    uint64_t evictions;
    shd_name dicts[MG_SHDICT_MAX_DICTS];
} shd_header;

/* Every block starts with this. Free blocks also link into their order's free list. */
typedef struct {
    uint32_t order;
    uint32_t free;
    uint64_t next, prev; /* free list (free blocks only) */
} shd_block;

#define BLOCK_HDR 8 /* order + free: what an allocated block spends on bookkeeping */

typedef struct {
    uint64_t hnext;              /* next entry in the bucket */
    uint64_t lru_prev, lru_next; /* LRU list */
    int64_t expires;             /* CLOCK_MONOTONIC ns; 0 = never */
    double num;
    uint32_t hash;
    uint32_t klen;
    uint32_t vlen;
    uint16_t dict;
    uint8_t type;
    uint8_t pad;
    char data[]; /* key, then the string value */
} shd_entry;

static shd_header *g_shd;

#define PTR(off) ((void *)((char *)g_shd + (off)))
#define OFF(ptr) ((uint64_t)((char *)(ptr) - (char *)g_shd))
#define ENTRY_OF(block_off) ((shd_entry *)PTR((block_off) + BLOCK_HDR))
#define BLOCK_OF(entry) (OFF(entry) - BLOCK_HDR)

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t expiry_from_ttl(double ttl) {
    if (!(ttl > 0)) return 0;
    if (ttl > 1e9) ttl = 1e9; /* ~31 years: "never" in practice, and no overflow */
    int64_t e = now_ns() + (int64_t)(ttl * 1e9);
    return e ? e : 1;
}

/* ---- locking ------------------------------------------------------------------------------ */

static void shd_lock(void) {
    int rc = pthread_mutex_lock(&g_shd->lock);
    /* A worker died holding the lock (killed mid-operation). The critical sections only touch
     * links that each operation leaves consistent before the next one; take the lock over. */
    if (rc == EOWNERDEAD) pthread_mutex_consistent(&g_shd->lock);
}

static void shd_unlock(void) { pthread_mutex_unlock(&g_shd->lock); }

/* ---- buddy allocator ------------------------------------------------------------------------ */

static void freelist_push(uint64_t boff, uint32_t order) {
    shd_block *b = PTR(boff);
    b->order = order;
    b->free = 1;
    b->prev = 0;
    b->next = g_shd->free_head[order];
    if (b->next) ((shd_block *)PTR(b->next))->prev = boff;
    g_shd->free_head[order] = boff;
}

static void freelist_remove(uint64_t boff) {
    shd_block *b = PTR(boff);
    if (b->prev) ((shd_block *)PTR(b->prev))->next = b->next;
    else g_shd->free_head[b->order] = b->next;
    if (b->next) ((shd_block *)PTR(b->next))->prev = b->prev;
    b->free = 0;
}

static uint32_t order_for(size_t bytes) {
    uint32_t o = MIN_ORDER;
    while (((size_t)1 << o) < bytes) o++;
    return o;
}

/* Offset of a block of the given order, or 0 when none is free. */
static uint64_t block_alloc(uint32_t order) {
    uint32_t k = order;
    while (k <= g_shd->top_order && !g_shd->free_head[k]) k++;
    if (k > g_shd->top_order) return 0;
    uint64_t boff = g_shd->free_head[k];
    freelist_remove(boff);
    while (k > order) { /* split: keep the lower half, free the upper */
        k--;
        freelist_push(boff + ((uint64_t)1 << k), k);
    }
    shd_block *b = PTR(boff);
    b->order = order;
    b->free = 0;
    g_shd->free_bytes -= (uint64_t)1 << order;
    return boff;
}

static void block_free(uint64_t boff) {
    shd_block *b = PTR(boff);
    uint32_t k = b->order;
    g_shd->free_bytes += (uint64_t)1 << k;
    while (k < g_shd->top_order) {
        uint64_t rel = boff - g_shd->arena;
        uint64_t buddy = g_shd->arena + (rel ^ ((uint64_t)1 << k));
        if (buddy + ((uint64_t)1 << k) > g_shd->arena + g_shd->arena_size) break;
        shd_block *bb = PTR(buddy);
        if (!bb->free || bb->order != k) break;
        freelist_remove(buddy);
        if (buddy < boff) boff = buddy;
        k++;
    }
    freelist_push(boff, k);
}

/* ---- entries ---------------------------------------------------------------------------------- */

static uint32_t hash_key(int dict, const char *key, size_t klen) {
    uint32_t h = 2166136261u ^ (uint32_t)dict * 16777619u;
    for (size_t i = 0; i < klen; i++) {
        h ^= (unsigned char)key[i];
        h *= 16777619u;
    }
    return h ^ (h >> 15);
}

static uint64_t *bucket_for(uint32_t hash) {
    uint64_t *b = PTR(g_shd->buckets);
    return &b[hash & (g_shd->nbuckets - 1)];
}

static void lru_unlink(shd_entry *e) {
    if (e->lru_prev) ((shd_entry *)PTR(e->lru_prev))->lru_next = e->lru_next;
    else g_shd->lru_head = e->lru_next;
    if (e->lru_next) ((shd_entry *)PTR(e->lru_next))->lru_prev = e->lru_prev;
    else g_shd->lru_tail = e->lru_prev;
    e->lru_prev = e->lru_next = 0;
}

static void lru_push_front(shd_entry *e) {
    uint64_t off = OFF(e);
    e->lru_prev = 0;
    e->lru_next = g_shd->lru_head;
    if (g_shd->lru_head) ((shd_entry *)PTR(g_shd->lru_head))->lru_prev = off;
    g_shd->lru_head = off;
    if (!g_shd->lru_tail) g_shd->lru_tail = off;
}

static void lru_touch(shd_entry *e) {
    if (g_shd->lru_head == OFF(e)) return;
    lru_unlink(e);
    lru_push_front(e);
}

/* Unlinks e from its bucket and the LRU list and frees its block. */
static void entry_remove(shd_entry *e) {
    uint64_t *slot = bucket_for(e->hash), off = OFF(e);
    while (*slot && *slot != off) slot = &((shd_entry *)PTR(*slot))->hnext;
    if (*slot) *slot = e->hnext;
    lru_unlink(e);
    g_shd->entries--;
    block_free(BLOCK_OF(e));
}

/* The live entry for (dict, key), or NULL; expired entries met on the way are removed. */
static shd_entry *entry_find(int dict, const char *key, size_t klen, uint32_t hash, int64_t now) {
    uint64_t off = *bucket_for(hash);
    while (off) {
        shd_entry *e = PTR(off);
        off = e->hnext;
        if (e->hash == hash && e->dict == dict && e->klen == klen && memcmp(e->data, key, klen) == 0) {
            if (e->expires && e->expires <= now) {
                entry_remove(e);
                return NULL;
            }
            return e;
        }
    }
    return NULL;
}

/* A block for an entry of `bytes`, evicting expired then least recently used entries when the
 * arena is full. 0 when even an empty arena could not hold it. */
static uint64_t entry_alloc(size_t bytes, int64_t now) {
    uint32_t order = order_for(bytes + BLOCK_HDR);
    if (order > g_shd->top_order) return 0;
    uint64_t boff = block_alloc(order);
    if (boff) return boff;
    /* First drop expired entries from the cold end (cheap, and they are dead anyway). */
    int scanned = 0;
    for (uint64_t off = g_shd->lru_tail; off && scanned < 64; scanned++) {
        shd_entry *e = PTR(off);
        off = e->lru_prev;
        if (e->expires && e->expires <= now) entry_remove(e);
    }
    while (!(boff = block_alloc(order)) && g_shd->lru_tail) {
        entry_remove(PTR(g_shd->lru_tail));
        g_shd->evictions++;
    }
    return boff;
}

static shd_entry *entry_create(int dict, const char *key, size_t klen, uint32_t hash, int type, double num,
                               const char *str, size_t slen, int64_t expires, int64_t now) {
    uint64_t boff = entry_alloc(sizeof(shd_entry) + klen + slen, now);
    if (!boff) return NULL;
    shd_entry *e = ENTRY_OF(boff);
    e->hash = hash;
    e->dict = (uint16_t)dict;
    e->klen = (uint32_t)klen;
    e->vlen = (uint32_t)slen;
    e->type = (uint8_t)type;
    e->num = num;
    e->expires = expires;
    memcpy(e->data, key, klen);
    if (slen) memcpy(e->data + klen, str, slen);
    uint64_t *slot = bucket_for(hash);
    e->hnext = *slot;
    *slot = OFF(e);
    e->lru_prev = e->lru_next = 0;
    lru_push_front(e);
    g_shd->entries++;
    return e;
}

/* ---- setup ------------------------------------------------------------------------------------- */

int mg_shdict_init(size_t bytes) {
    if (g_shd) return MG_DECLINED;
    if (bytes == 0) bytes = MG_SHDICT_DEFAULT_SIZE;
    if (bytes < (64u << 10)) bytes = 64u << 10;
    size_t page = 4096;
    bytes = (bytes + page - 1) & ~(page - 1);
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return MG_ERROR;
    shd_header *h = p; /* the mapping is zero-filled */
    g_shd = h;
    h->size = bytes;
    /* One bucket per ~256 arena bytes, a power of two. */
    uint64_t nb = 64;
    while (nb * 256 < bytes) nb *= 2;
    nb /= 2;
    h->nbuckets = nb;
    h->buckets = (sizeof(shd_header) + 63) & ~(uint64_t)63;
    uint64_t arena = (h->buckets + nb * sizeof(uint64_t) + 63) & ~(uint64_t)63;
    uint64_t avail = bytes - arena;
    uint32_t top = MAX_ORDER;
    while (top > MIN_ORDER && ((uint64_t)1 << top) > avail) top--;
    h->top_order = top;
    h->arena = arena;
    /* Whole top-order blocks, then the rest as ever smaller blocks (each one's buddy lies
     * above it, so block_free's bounds check keeps merges inside the arena). */
    uint64_t nblocks = avail >> top, used = nblocks << top;
    for (uint64_t i = nblocks; i-- > 0;) freelist_push(arena + (i << top), top);
    for (uint32_t k = top; k-- > MIN_ORDER;) {
        if (avail - used >= ((uint64_t)1 << k)) {
            freelist_push(arena + used, k);
            used += (uint64_t)1 << k;
        }
    }
    h->arena_size = used;
    h->free_bytes = used;

    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
    int rc = pthread_mutex_init(&h->lock, &ma);
    pthread_mutexattr_destroy(&ma);
    if (rc != 0) {
        munmap(p, bytes);
        g_shd = NULL;
        return MG_ERROR;
    }
    atomic_thread_fence(memory_order_seq_cst);
    h->magic = SHD_MAGIC;
    return MG_OK;
}

static int ensure(void) {
    if (g_shd) return 0;
    return mg_shdict_init(0) == MG_OK ? 0 : -1;
}

int mg_shdict_open(const char *name, size_t len) {
    if (ensure() || len == 0 || len > MG_SHDICT_MAX_NAME || memchr(name, 0, len)) return MG_ERROR;
    int id = MG_ERROR;
    shd_lock();
    for (uint32_t i = 0; i < g_shd->ndicts; i++) {
        if (strlen(g_shd->dicts[i].name) == len && memcmp(g_shd->dicts[i].name, name, len) == 0) {
            id = (int)i;
            break;
        }
    }
    if (id < 0 && g_shd->ndicts < MG_SHDICT_MAX_DICTS) {
        id = (int)g_shd->ndicts;
        memcpy(g_shd->dicts[id].name, name, len);
        g_shd->dicts[id].name[len] = 0;
        g_shd->ndicts++;
    }
    shd_unlock();
    return id;
}

static int bad_dict(int dict) { return !g_shd || dict < 0 || (uint32_t)dict >= g_shd->ndicts; }

/* ---- operations -------------------------------------------------------------------------------- */

int mg_shdict_get(int dict, const char *key, size_t klen, mg_shdict_value *out, char *buf, size_t cap) {
    if (bad_dict(dict)) return MG_ERROR;
    int64_t now = now_ns();
    uint32_t h = hash_key(dict, key, klen);
    int rc = MG_DECLINED;
    shd_lock();
    shd_entry *e = entry_find(dict, key, klen, h, now);
    if (e) {
        out->type = e->type;
        out->num = e->num;
        out->len = e->vlen;
        if (e->type == MG_SHDICT_STRING && e->vlen > cap) rc = MG_AGAIN;
        else {
            if (e->type == MG_SHDICT_STRING && e->vlen) memcpy(buf, e->data + e->klen, e->vlen);
            lru_touch(e);
            rc = MG_OK;
        }
    }
    shd_unlock();
    return rc;
}

int mg_shdict_set(int dict, const char *key, size_t klen, int type, double num, const char *str, size_t slen,
                  double ttl, int mode, const char **err) {
    static const char *e_nomem = "no memory", *e_big = "value too large", *e_bad = "bad argument";
    if (bad_dict(dict) || klen == 0 || klen > MG_SHDICT_MAX_KEY || type < 1 || type > 3 || slen > UINT32_MAX) {
        if (err) *err = e_bad;
        return MG_ERROR;
    }
    if (type != MG_SHDICT_STRING) slen = 0;
    size_t need = sizeof(shd_entry) + klen + slen + BLOCK_HDR;
    if (order_for(need) > g_shd->top_order) {
        if (err) *err = e_big;
        return MG_ERROR;
    }
    int64_t now = now_ns(), expires = expiry_from_ttl(ttl);
    uint32_t h = hash_key(dict, key, klen);
    int rc = MG_OK;
    shd_lock();
    shd_entry *e = entry_find(dict, key, klen, h, now);
    if (e && mode == MG_SHDICT_ADD) {
        rc = MG_DECLINED;
        if (err) *err = "exists";
    } else if (!e && mode == MG_SHDICT_REPLACE) {
        rc = MG_DECLINED;
        if (err) *err = "not found";
    } else if (e && order_for(need) == ((shd_block *)PTR(BLOCK_OF(e)))->order) {
        /* Same block size: overwrite in place. */
        e->type = (uint8_t)type;
        e->num = num;
        e->vlen = (uint32_t)slen;
        e->expires = expires;
        if (slen) memcpy(e->data + klen, str, slen);
        lru_touch(e);
    } else {
        if (e) entry_remove(e);
        if (!entry_create(dict, key, klen, h, type, num, str, slen, expires, now)) {
            rc = MG_ERROR;
            if (err) *err = e_nomem;
        }
    }
    shd_unlock();
    return rc;
}

int mg_shdict_incr(int dict, const char *key, size_t klen, double by, int has_init, double init, double ttl,
                   double *out, const char **err) {
    if (bad_dict(dict) || klen == 0 || klen > MG_SHDICT_MAX_KEY) {
        if (err) *err = "bad argument";
        return MG_ERROR;
    }
    int64_t now = now_ns();
    uint32_t h = hash_key(dict, key, klen);
    int rc = MG_OK;
    shd_lock();
    shd_entry *e = entry_find(dict, key, klen, h, now);
    if (e) {
        if (e->type != MG_SHDICT_NUMBER) {
            rc = MG_ERROR;
            if (err) *err = "not a number";
        } else {
            e->num += by;
            *out = e->num;
            lru_touch(e);
        }
    } else if (!has_init) {
        rc = MG_DECLINED;
        if (err) *err = "not found";
    } else {
        double v = init + by;
        if (entry_create(dict, key, klen, h, MG_SHDICT_NUMBER, v, NULL, 0, expiry_from_ttl(ttl), now)) *out = v;
        else {
            rc = MG_ERROR;
            if (err) *err = "no memory";
        }
    }
    shd_unlock();
    return rc;
}

int mg_shdict_incr_capped(int dict, const char *key, size_t klen, double by, double limit, double ttl,
                          double *out, const char **err) {
    if (bad_dict(dict) || klen == 0 || klen > MG_SHDICT_MAX_KEY) {
        if (err) *err = "bad argument";
        return MG_ERROR;
    }
    int64_t now = now_ns();
    uint32_t h = hash_key(dict, key, klen);
    int rc = MG_OK;
    shd_lock();
    shd_entry *e = entry_find(dict, key, klen, h, now);
    double cur = e ? e->num : 0;
    if (e && e->type != MG_SHDICT_NUMBER) {
        rc = MG_ERROR;
        if (err) *err = "not a number";
    } else if (cur + by > limit) {
        rc = MG_DECLINED;   /* the check and the add are one step under the lock: exact */
        *out = cur;
    } else if (e) {
        e->num = cur + by;
        *out = e->num;
        lru_touch(e);
    } else if (entry_create(dict, key, klen, h, MG_SHDICT_NUMBER, by, NULL, 0, expiry_from_ttl(ttl), now)) {
        *out = by;
    } else {
        rc = MG_ERROR;
        if (err) *err = "no memory";
    }
    shd_unlock();
    return rc;
}

int mg_shdict_delete(int dict, const char *key, size_t klen) {
    if (bad_dict(dict)) return MG_ERROR;
    int64_t now = now_ns();
    uint32_t h = hash_key(dict, key, klen);
    shd_lock();
    shd_entry *e = entry_find(dict, key, klen, h, now);
    if (e) entry_remove(e);
    shd_unlock();
    return e ? MG_OK : MG_DECLINED;
}

int mg_shdict_ttl(int dict, const char *key, size_t klen, double *ttl) {
    if (bad_dict(dict)) return MG_ERROR;
    int64_t now = now_ns();
    uint32_t h = hash_key(dict, key, klen);
    shd_lock();
    shd_entry *e = entry_find(dict, key, klen, h, now);
    if (e) *ttl = e->expires ? (double)(e->expires - now) / 1e9 : 0;
    shd_unlock();
    return e ? MG_OK : MG_DECLINED;
}

int mg_shdict_expire(int dict, const char *key, size_t klen, double ttl) {
    if (bad_dict(dict)) return MG_ERROR;
    int64_t now = now_ns(), expires = expiry_from_ttl(ttl);
    uint32_t h = hash_key(dict, key, klen);
    shd_lock();
    shd_entry *e = entry_find(dict, key, klen, h, now);
    if (e) e->expires = expires;
    shd_unlock();
    return e ? MG_OK : MG_DECLINED;
}

int mg_shdict_keys(int dict, const char *prefix, size_t plen, char *buf, size_t cap, size_t *used, size_t *count) {
    if (bad_dict(dict)) return MG_ERROR;
    int64_t now = now_ns();
    size_t n = 0, c = 0;
    shd_lock();
    for (uint64_t off = g_shd->lru_head; off;) {
        shd_entry *e = PTR(off);
        off = e->lru_next;
        if (e->dict != dict || e->klen < plen || (plen && memcmp(e->data, prefix, plen) != 0)) continue;
        if (e->expires && e->expires <= now) continue;
        if (n + 4 + e->klen <= cap) {
            uint32_t kl = e->klen;
            memcpy(buf + n, &kl, 4);
            memcpy(buf + n + 4, e->data, e->klen);
        }
        n += 4 + e->klen;
        c++;
    }
    shd_unlock();
    *used = n;
    *count = c;
    return n <= cap ? MG_OK : MG_AGAIN;
}

int mg_shdict_flush(int dict) {
    if (bad_dict(dict)) return MG_ERROR;
    shd_lock();
    for (uint64_t off = g_shd->lru_head; off;) {
        shd_entry *e = PTR(off);
        off = e->lru_next;
        if (e->dict == dict) entry_remove(e);
    }
    shd_unlock();
    return MG_OK;
}

int mg_shdict_stats(size_t *capacity, size_t *free_bytes, size_t *entries, uint64_t *evictions) {
    if (ensure()) return MG_ERROR;
    shd_lock();
    if (capacity) *capacity = g_shd->arena_size;
    if (free_bytes) *free_bytes = g_shd->free_bytes;
    if (entries) *entries = g_shd->entries;
    if (evictions) *evictions = g_shd->evictions;
    shd_unlock();
    return MG_OK;
}
