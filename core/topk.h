/* topk.h: the k best (score, id) hits of a scan, kept in a bounded min-heap. Shared by the
 * BM25 and vector scans; ties rank the lower id first, so results are deterministic. */
#ifndef MG_TOPK_H
#define MG_TOPK_H

#include <stddef.h>
#include <stdint.h>

typedef struct { float score; uint32_t id; } mg_hit;

/* a ranks below b: lower score, or the same score and a higher id */
static inline int mg_hit_worse(mg_hit a, mg_hit b)
{
    return a.score < b.score || (a.score == b.score && a.id > b.id);
}

static inline void mg_heap_sift_down(mg_hit *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && mg_hit_worse(h[l], h[m])) m = l;
        if (r < n && mg_hit_worse(h[r], h[m])) m = r;
        if (m == i) return;
        mg_hit t = h[i]; h[i] = h[m]; h[m] = t;
        i = m;
    }
}

static inline void mg_heap_sift_up(mg_hit *h, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!mg_hit_worse(h[i], h[p])) return;
        mg_hit t = h[i]; h[i] = h[p]; h[p] = t;
        i = p;
    }
}

/* Offer a hit to a heap of *n entries holding at most k. */
static inline void mg_topk_offer(mg_hit *heap, size_t *n, size_t k, mg_hit h)
{
    if (*n < k) {
        heap[*n] = h;
        mg_heap_sift_up(heap, (*n)++);
    } else if (mg_hit_worse(heap[0], h)) {
        heap[0] = h;
        mg_heap_sift_down(heap, *n, 0);
    }
}

/* Empty the heap into ids/scores, best first (the heap is consumed). */
static inline void mg_topk_drain(mg_hit *heap, size_t n, uint32_t *ids, float *scores)
{
    for (size_t i = n; i > 0; i--) {
        ids[i - 1] = heap[0].id;
        scores[i - 1] = heap[0].score;
        heap[0] = heap[i - 1];
        mg_heap_sift_down(heap, i - 1, 0);
    }
}

#endif
