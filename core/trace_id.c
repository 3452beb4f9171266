/* trace_id.c: W3C trace and span ids (lower-case hex, never all zero) for moongate.trace.
 *
 * Ids need to be unique, not secret: like OpenTelemetry's SDKs, a fast generator (splitmix64)
 * seeded from getrandom(2), and seeded again in a forked worker so two workers never draw the
 * same sequence. The lua_CFunction module moongate._trace_id: one call makes an id, where
 * formatting random numbers in Lua cost more (and its string.format of 32-bit values aborted the
 * JIT's recording); not the FFI, whose calls are slow from the interpreter, where much of a
 * request's once-per-request code runs. */
#include <pthread.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "crypto.h"
#include "mg.h"

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

/* out[0 .. 2*nbytes) = nbytes random bytes in hex, not all zero (nbytes a multiple of 8). */
static void hex_id(char *out, size_t nbytes)
{
    static const char digits[] = "0123456789abcdef";
    if (!seeded) seed();
    uint64_t any;
    do {
        any = 0;
        for (size_t w = 0; w < nbytes / 8; w++) {
            uint64_t v = next();
            any |= v;
            for (int i = 15; i >= 0; i--, v >>= 4) out[16 * w + i] = digits[v & 15];
        }
    } while (!any);
}

/* span_id() -> 16 hex digits; trace_id() -> 32 */
static int l_span_id(lua_State *L)
{
    char id[16];
    hex_id(id, 8);
    lua_pushlstring(L, id, sizeof id);
    return 1;
}

static int l_trace_id(lua_State *L)
{
    char id[32];
    hex_id(id, 16);
    lua_pushlstring(L, id, sizeof id);
    return 1;
}

MG_API int luaopen_moongate__trace_id(lua_State *L)
{
    static const luaL_Reg fns[] = { { "span_id", l_span_id }, { "trace_id", l_trace_id }, { NULL, NULL } };
    lua_createtable(L, 0, 2);
    luaL_register(L, NULL, fns);
    return 1;
}
