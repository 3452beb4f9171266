/* trace_id.c: W3C trace and span ids (lower-case hex, never all zero) for moongate.trace.
 *
 * Ids need to be unique, not secret: like OpenTelemetry's SDKs, a fast generator (splitmix64)
 * seeded from getrandom(2), and seeded again in a forked worker so two workers never draw the
 * same sequence. One FFI call writes an id, where formatting random numbers in Lua cost more and
 * kept the request's root span out of the JIT (string.format of 32-bit values aborts recording). */
#include <pthread.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "crypto.h"
#include "mg.h"

MG_API size_t mg_trace_hex_id(char *out, size_t nbytes);

static uint64_t state;
static int seeded;

static void forget_seed(void) { seeded = 0; }

static void seed(void)
{
    static int registered;
    if (!registered) {
        registered = 1;
        pthread_atfork(NULL, NULL, forget_seed);
    }
    uint64_t s;
    if (mg_crypto_random(&s, sizeof s, NULL) != MG_OK) {   /* never expected: time and pid then */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        s = ((uint64_t)ts.tv_sec << 30) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 48);
    }
    state = s;
    seeded = 1;
}

static uint64_t next(void)
{
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* out[0 .. 2*nbytes) = nbytes random bytes in hex (nbytes a multiple of 8: 8 for a span id,
 * 16 for a trace id); returns 2*nbytes. */
size_t mg_trace_hex_id(char *out, size_t nbytes)
{
    static const char digits[] = "0123456789abcdef";
    if (!seeded) seed();
    uint64_t any = 0;
    do {
        any = 0;
        for (size_t w = 0; w < nbytes / 8; w++) {
            uint64_t v = next();
            any |= v;
            for (int i = 15; i >= 0; i--, v >>= 4) out[16 * w + i] = digits[v & 15];
        }
    } while (!any);
    return 2 * nbytes;
}
