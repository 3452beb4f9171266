// faiss_shim.cpp: the three calls the retrieval bench makes into FAISS. Debian's libfaiss-dev
// ships the C API headers but not libfaiss_c, so these extern "C" wrappers stand in for it.
#include <faiss/IndexFlat.h>

extern "C" {
void *bench_faiss_flat_ip(int dim) { return new faiss::IndexFlatIP(dim); }
void bench_faiss_add(void *ix, long n, const float *x) { static_cast<faiss::IndexFlatIP *>(ix)->add(n, x); }
void bench_faiss_search(void *ix, const float *q, long k, float *d, long *labels)
{
    static_cast<faiss::IndexFlatIP *>(ix)->search(1, q, k, d, labels);
}
void bench_faiss_free(void *ix) { delete static_cast<faiss::IndexFlatIP *>(ix); }
}
