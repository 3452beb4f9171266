/* json.c: JSON <-> Lua values, parsed straight onto the Lua stack and printed into one
 * reusable buffer (no intermediate tree). Exposed as the lua_CFunction module moongate._json.
 *
 * Why not cJSON: it stores every number as a double (integers past 2^53 are rounded),
 * keeps strings NUL-terminated (a "\u0000" cuts the string), prints floats with %.15g/%.17g
 * (0.1+0.2 becomes 0.3 or an ugly 17-digit form) and copies invalid UTF-8 through. Each of
 * these hurts a gateway relaying user content, and building a cJSON tree only to convert it
 * into Lua tables is a second copy of every document. So this file does the one pass itself:
 *   - integers are read exactly; beyond 2^53 they become int64 cdata (through a Lua hook),
 *     beyond int64 "number out of range";
 *   - floats print in the shortest of %.15g/%.16g/%.17g that reads back to the same double;
 *   - strings are byte strings with their length: \u0000 survives both ways;
 *   - invalid UTF-8 prints as \ufffd (one per maximal ill-formed subsequence), so the output
 *     is always valid JSON;
 *   - arrays carry a metatable mark (array_mt) so that [] round-trips, and json.array /
 *     json.object marks decide how an empty table prints. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "json.h"
#include "mg.h"

#define JSON_MAX_DEPTH 1000
#define JSON_CDATA 10 /* lua_type() of an FFI cdata in LuaJIT (LUA_TCDATA, not in lua.h) */

/* ---- growable byte buffer, kept in a userdata so a raised error never leaks it ---------- */

typedef struct {
    char *p;
    size_t n, cap;
} jbuf;

static int jbuf_gc(lua_State *L) {
    jbuf *b = lua_touserdata(L, 1);
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
    return 0;
}

static int jbuf_reserve_slow(jbuf *b, size_t extra) {
    size_t need = b->n + extra, cap = b->cap ? b->cap : 256;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) return -1;
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (!p) return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

static inline int jbuf_reserve(jbuf *b, size_t extra) {
    return (b->cap - b->n >= extra) ? 0 : jbuf_reserve_slow(b, extra);
}

/* After a huge document, give the memory back rather than pin it for the process's life. */
static void jbuf_trim(jbuf *b) {
    if (b->cap > (4u << 20)) {
        free(b->p);
        b->p = NULL;
        b->cap = 0;
    }
    b->n = 0;
}

/* ---- encoder ----------------------------------------------------------------------------- */

typedef struct {
    lua_State *L;
    jbuf *b;
    const char *err; /* static message, or ebuf */
    char ebuf[128];
} jenc;

/* Upvalues of encode: 1 array_mt, 2 object_mt, 3 cdata_to_string, 4 buffer. */
#define ENC_ARRAY_MT lua_upvalueindex(1)
#define ENC_OBJECT_MT lua_upvalueindex(2)
#define ENC_CDATA_HOOK lua_upvalueindex(3)
#define ENC_BUF lua_upvalueindex(4)

/* 0: copy as is; 1: escape; 2: start of a multi-byte (or invalid) UTF-8 sequence. */
static const unsigned char enc_class[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
};

static const char hexdig[] = "0123456789abcdef";

/* Length of the well-formed UTF-8 sequence at s (Unicode 15, table 3-7), or, when it is
 * ill-formed, minus the length of its maximal ill-formed prefix (at least 1). */
static int utf8_seq(const unsigned char *s, size_t avail) {
    unsigned c = s[0];
    unsigned lo = 0x80, hi = 0xBF;
    int len;
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;
        else if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90;
        else if (c == 0xF4) hi = 0x8F;
    } else
        return -1;
    for (int i = 1; i < len; i++) {
        if ((size_t)i >= avail) return -i;
        unsigned d = s[i];
        if (d < lo || d > hi) return -i;
        lo = 0x80, hi = 0xBF;
    }
    return len;
}

/* Escapes the bytes from s up to seg_end as JSON string text at o and returns the end of what
 * it wrote; *next is where it stopped (a UTF-8 sequence begun before seg_end is finished, up to
 * end). o has room for (seg_end - s + 3) * 6 bytes. */
static char *esc_run(char *o, const unsigned char *s, const unsigned char *seg_end, const unsigned char *end,
                     const unsigned char **next) {
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    while (s < seg_end) {
        const unsigned char *run = s;
        /* eight bytes at a time while none needs a look: no quote, backslash, control or
         * non-ASCII byte (the has-zero-byte and has-byte-below tests, as dec_run) */
        while (seg_end - s >= 8) {
            uint64_t v;
            memcpy(&v, s, 8);
            uint64_t q = v ^ (ones * '"'), b = v ^ (ones * '\\');
            if ((((q - ones) & ~q) | ((b - ones) & ~b) | ((v - ones * 0x20) & ~v) | v) & highs) break;
            s += 8;
        }
        while (s < seg_end && enc_class[*s] == 0) s++;
        if (s > run) {
            memcpy(o, run, (size_t)(s - run));
            o += s - run;
            if (s == seg_end) break;
        }
        unsigned c = *s;
        if (enc_class[c] == 1) {
            *o++ = '\\';
            switch (c) {
            case '"': *o++ = '"'; break;
            case '\\': *o++ = '\\'; break;
            case '\n': *o++ = 'n'; break;
            case '\r': *o++ = 'r'; break;
            case '\t': *o++ = 't'; break;
            case '\b': *o++ = 'b'; break;
            case '\f': *o++ = 'f'; break;
            default:
                *o++ = 'u', *o++ = '0', *o++ = '0';
                *o++ = hexdig[c >> 4], *o++ = hexdig[c & 15];
            }
            s++;
        } else {
            int n = utf8_seq(s, (size_t)(end - s));
            if (n > 0) {
                memcpy(o, s, (size_t)n);
                o += n;
                s += n;
            } else {
                memcpy(o, "\\ufffd", 6);
                o += 6;
                s += -n;
            }
        }
    }
    *next = s;
    return o;
}

char *mg_json_escape(char *out, const char *s, size_t len) {
    const unsigned char *u = (const unsigned char *)s, *next;
    return esc_run(out, u, u + len, u + len, &next);
}

static int enc_string(jenc *e, const char *str, size_t len) {
    jbuf *b = e->b;
    const unsigned char *s = (const unsigned char *)str, *end = s + len;
    if (jbuf_reserve(b, 1)) goto oom;
    b->p[b->n++] = '"';
    while (s < end) {
        /* Reserve for the worst case (every byte becomes \u00XX or \ufffd: 6 bytes) one
         * segment at a time, so a 20 MB string does not ask for 120 MB up front. A UTF-8
         * sequence may run up to 3 bytes past the segment. */
        size_t chunk = (size_t)(end - s) < 65536 ? (size_t)(end - s) : 65536;
        if (jbuf_reserve(b, (chunk + 3) * 6 + 1)) goto oom;
        char *o = esc_run(b->p + b->n, s, s + chunk, end, &s);
        b->n = (size_t)(o - b->p);
    }
    if (jbuf_reserve(b, 1)) goto oom;
    b->p[b->n++] = '"';
    return 0;
oom:
    e->err = "out of memory";
    return -1;
}

static char *fmt_u64(char *end, uint64_t v) {
    char *p = end;
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return p;
}

static int enc_int64(jenc *e, int64_t v) {
    char tmp[24], *end = tmp + sizeof tmp;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    char *p = fmt_u64(end, u);
    if (v < 0) *--p = '-';
    if (jbuf_reserve(e->b, 24)) {
        e->err = "out of memory";
        return -1;
    }
    memcpy(e->b->p + e->b->n, p, (size_t)(end - p));
    e->b->n += (size_t)(end - p);
    return 0;
}

/* Writes the n significant digits dig (first digit's decimal exponent x) as printf's %.Pg
 * would: trailing zeros dropped, fixed notation when -4 <= x < P, else d.ddde+XX. */
static int fmt_digits(char *out, int neg, const char *dig, int n, int x, int P) {
    char *o = out;
    while (n > 1 && dig[n - 1] == '0') n--;
    if (neg) *o++ = '-';
    if (x < -4 || x >= P) {
        *o++ = dig[0];
        if (n > 1) {
            *o++ = '.';
            memcpy(o, dig + 1, (size_t)(n - 1));
            o += n - 1;
        }
        *o++ = 'e';
        *o++ = x < 0 ? '-' : '+';
        int ax = x < 0 ? -x : x;
        if (ax >= 100) *o++ = (char)('0' + ax / 100);
        *o++ = (char)('0' + ax / 10 % 10);
        *o++ = (char)('0' + ax % 10);
    } else if (x < 0) {
        *o++ = '0';
        *o++ = '.';
        for (int i = 0; i < -x - 1; i++) *o++ = '0';
        memcpy(o, dig, (size_t)n);
        o += n;
    } else if (n <= x + 1) {
        memcpy(o, dig, (size_t)n);
        o += n;
        for (int i = 0; i < x + 1 - n; i++) *o++ = '0';
    } else {
        memcpy(o, dig, (size_t)(x + 1));
        o += x + 1;
        *o++ = '.';
        memcpy(o, dig + x + 1, (size_t)(n - x - 1));
        o += n - x - 1;
    }
    *o = 0;
    return (int)(o - out);
}

/* Shortest of 15, 16 and 17 significant digits that strtod reads back as the same double,
 * printed as %.15g / %.16g / %.17g would. One printf gives the 17 digits; shorter candidates
 * are rounded from them and checked with strtod (a candidate double-rounded the wrong way
 * only costs a longer, still exact, output). Subnormals carry fewer significant digits, so
 * they search every precision from 1 (5e-324, not 4.94065645841247e-324). */
static int fmt_double(char *out, size_t cap, double d, int from) {
    if (fabs(d) < 2.2250738585072014e-308) {
        int n = 0;
        for (int prec = 1; prec <= 17; prec++) {
            n = snprintf(out, cap, "%.*g", prec, d);
            if (strtod(out, NULL) == d) break;
        }
        return n;
    }
    char tmp[40], dig[18];
    snprintf(tmp, sizeof tmp, "%.16e", fabs(d)); /* d.dddddddddddddddde+XX: 17 digits */
    dig[0] = tmp[0];
    memcpy(dig + 1, tmp + 2, 16);
    int x = atoi(tmp + 19), neg = signbit(d) != 0;
    for (int p = from; p < 17; p++) {
        char c[17];
        int cx = x, half = dig[p] == '5';
        for (int i = p + 1; i < 17 && half; i++) half = dig[i] == '0';
        if (half) {
            /* The 17 digits end in exactly 5: they were rounded, so which way the true value
             * lies is unknown. Let printf round this candidate from the exact value. */
            char t2[40];
            snprintf(t2, sizeof t2, "%.*e", p - 1, fabs(d));
            c[0] = t2[0];
            memcpy(c + 1, t2 + 2, (size_t)(p - 1));
            cx = atoi(t2 + p + 2);
        } else if (dig[p] >= '5') { /* round up, carrying */
            memcpy(c, dig, (size_t)p);
            int i = p - 1;
            while (i >= 0 && c[i] == '9') c[i--] = '0';
            if (i >= 0) c[i]++;
            else {
                c[0] = '1'; /* 999.. -> 1000.. */
                cx++;
            }
        } else
            memcpy(c, dig, (size_t)p);
        int n = fmt_digits(out, neg, c, p, cx, p);
        if (strtod(out, NULL) == d) return n;
    }
    return fmt_digits(out, neg, dig, 17, x, 17);
}

static const double pow10tab[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                  1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* Fast path for the common case: |d| in [1e-4, 1e15) with a form of at most 15 significant
 * digits (0.7, -0.0069292834, 123.45). m = d * 10^k rounded is an integer below 2^53 and 10^k
 * is exact, so m / 10^k is correctly rounded: it equals d exactly when the decimal m * 10^-k
 * reads back as d. No printf, no strtod. The result matches %.15g with its trailing zeros
 * dropped. Returns 0 when d is out of range, -1 when it needs more than 15 digits. */
static int fmt_double_fast(char *out, double d) {
    double a = fabs(d);
    if (!(a >= 1e-4 && a < 1e15)) return 0;
    int e10 = (int)floor(log10(a));
    int k = 14 - e10; /* fractional digits for 15 significant ones: 0..18 */
    if (k < 0 || k > 22) return 0;
    double m = nearbyint(a * pow10tab[k]);
    if (m >= 1e15) return 0;
    if (m / pow10tab[k] != a) return -1;
    uint64_t im = (uint64_t)m;
    while (k > 0 && im % 10 == 0) {
        im /= 10;
        k--;
    }
    char digits[24], *end = digits + sizeof digits, *p = fmt_u64(end, im);
    int nd = (int)(end - p);
    char *o = out;
    if (d < 0) *o++ = '-';
    if (nd <= k) { /* 0.000ddd */
        *o++ = '0';
        *o++ = '.';
        for (int i = 0; i < k - nd; i++) *o++ = '0';
        memcpy(o, p, (size_t)nd);
        o += nd;
    } else {
        memcpy(o, p, (size_t)(nd - k));
        o += nd - k;
        if (k) {
            *o++ = '.';
            memcpy(o, p + nd - k, (size_t)k);
            o += k;
        }
    }
    return (int)(o - out);
}

/* d (integral) fits int64: -2^63 does, 2^63 does not */
static inline int in_int64(double d) { return d >= -9223372036854775808.0 && d < 9223372036854775808.0; }

static int enc_number(jenc *e, double d) {
    if (!isfinite(d)) {
        e->err = isnan(d) ? "cannot encode nan" : "cannot encode inf";
        return -1;
    }
    /* Integral values in int64's range print as exact integers (2^53 is 9007199254740992, not
     * 9.00719925474099e+15); -0 keeps its sign so it reads back as -0. */
    if (d == floor(d) && in_int64(d)) {
        if (d == 0 && signbit(d)) {
            if (jbuf_reserve(e->b, 2)) goto oom;
            memcpy(e->b->p + e->b->n, "-0", 2);
            e->b->n += 2;
            return 0;
        }
        return enc_int64(e, (int64_t)d);
    }
    if (jbuf_reserve(e->b, 32)) goto oom;
    int n = fmt_double_fast(e->b->p + e->b->n, d);
    if (n <= 0) n = fmt_double(e->b->p + e->b->n, 32, d, n < 0 ? 16 : 15);
    e->b->n += (size_t)n;
    return 0;
oom:
    e->err = "out of memory";
    return -1;
}

static int enc_literal(jenc *e, const char *s, size_t n) {
    if (jbuf_reserve(e->b, n)) {
        e->err = "out of memory";
        return -1;
    }
    memcpy(e->b->p + e->b->n, s, n);
    e->b->n += n;
    return 0;
}

static inline int enc_char(jenc *e, char c) {
    if (jbuf_reserve(e->b, 1)) {
        e->err = "out of memory";
        return -1;
    }
    e->b->p[e->b->n++] = c;
    return 0;
}

/* An FFI cdata: the Lua hook gives an int64_t/uint64_t's exact digits, another number
 * cdata's value as a Lua number, or nil (rare path). */
static int enc_cdata(jenc *e, int idx) {
    lua_State *L = e->L;
    lua_pushvalue(L, ENC_CDATA_HOOK);
    lua_pushvalue(L, idx);
    if (lua_pcall(L, 1, 1, 0) == 0 && lua_type(L, -1) == LUA_TNUMBER) {
        int rc = enc_number(e, lua_tonumber(L, -1));
        lua_pop(L, 1);
        return rc;
    }
    if (lua_type(L, -1) != LUA_TSTRING) {
        lua_pop(L, 1);
        e->err = "cannot encode cdata";
        return -1;
    }
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    int rc = enc_literal(e, s, n);
    lua_pop(L, 1);
    return rc;
}

static int enc_value(jenc *e, int idx, int depth);

/* Keys: strings; in a json.object-marked table numbers too (printed as JSON would). */
static int enc_key(jenc *e, int kidx, int marked_object) {
    lua_State *L = e->L;
    int t = lua_type(L, kidx);
    if (t == LUA_TSTRING) {
        size_t n;
        const char *s = lua_tolstring(L, kidx, &n);
        return enc_string(e, s, n);
    }
    if (t == LUA_TNUMBER && marked_object) {
        char tmp[40];
        double d = lua_tonumber(L, kidx);
        int n;
        if (!isfinite(d)) {
            e->err = "cannot encode nan or inf key";
            return -1;
        }
        if (d == floor(d) && in_int64(d)) n = snprintf(tmp, sizeof tmp, "%lld", (long long)d);
        else n = fmt_double(tmp, sizeof tmp, d, 15);
        return enc_string(e, tmp, (size_t)n);
    }
    e->err = "cannot encode mixed table (keys must be all strings or 1..n)";
    return -1;
}

static int enc_table(jenc *e, int idx, int depth) {
    lua_State *L = e->L;
    if (depth > JSON_MAX_DEPTH) {
        e->err = "nesting too deep (over 1000 levels, or a cycle)";
        return -1;
    }
    if (!lua_checkstack(L, 6)) {
        e->err = "out of memory";
        return -1;
    }
    int mark = 0; /* 1 array, 2 object */
    if (lua_getmetatable(L, idx)) {
        if (lua_rawequal(L, -1, ENC_ARRAY_MT)) mark = 1;
        else if (lua_rawequal(L, -1, ENC_OBJECT_MT)) mark = 2;
        lua_pop(L, 1);
    }

    lua_pushnil(L);
    if (!lua_next(L, idx)) return enc_literal(e, mark == 1 ? "[]" : "{}", 2);

    if (mark == 2 || (mark == 0 && lua_type(L, -2) == LUA_TSTRING)) {
        /* Object: one pass, printing as lua_next goes. */
        if (enc_char(e, '{')) goto fail2;
        int first = 1;
        do {
            if (!first && enc_char(e, ',')) goto fail2;
            first = 0;
            if (enc_key(e, lua_gettop(L) - 1, mark == 2) || enc_char(e, ':') ||
                enc_value(e, lua_gettop(L), depth + 1))
                goto fail2;
            lua_pop(L, 1);
        } while (lua_next(L, idx));
        return enc_char(e, '}');
    }

    /* Array: check that the keys are exactly 1..n, then print in order. */
    size_t count = 0;
    double maxk = 0;
    do {
        if (lua_type(L, -2) != LUA_TNUMBER) {
            e->err = mark == 1 ? "cannot encode array with non-integer keys"
                               : "cannot encode mixed table (keys must be all strings or 1..n)";
            goto fail2;
        }
        double k = lua_tonumber(L, -2);
        if (!(k >= 1 && k == floor(k) && k < 9007199254740992.0)) {
            e->err = "cannot encode array with non-integer keys";
            goto fail2;
        }
        if (k > maxk) maxk = k;
        count++;
        lua_pop(L, 1);
    } while (lua_next(L, idx));
    if ((double)count != maxk) {
        e->err = "cannot encode sparse array";
        return -1;
    }
    if (enc_char(e, '[')) return -1;
    for (size_t i = 1; i <= count; i++) {
        if (i > 1 && enc_char(e, ',')) return -1;
        lua_rawgeti(L, idx, (int)i);
        if (enc_value(e, lua_gettop(L), depth + 1)) {
            lua_pop(L, 1);
            return -1;
        }
        lua_pop(L, 1);
    }
    return enc_char(e, ']');
fail2:
    lua_pop(L, 2);
    return -1;
}

static int enc_value(jenc *e, int idx, int depth) {
    lua_State *L = e->L;
    switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        return enc_string(e, s, n);
    }
    case LUA_TNUMBER: return enc_number(e, lua_tonumber(L, idx));
    case LUA_TBOOLEAN: return lua_toboolean(L, idx) ? enc_literal(e, "true", 4) : enc_literal(e, "false", 5);
    case LUA_TTABLE: return enc_table(e, idx, depth);
    case LUA_TNIL: return enc_literal(e, "null", 4);
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL) return enc_literal(e, "null", 4);
        break;
    case JSON_CDATA: return enc_cdata(e, idx);
    default: break;
    }
    snprintf(e->ebuf, sizeof e->ebuf, "cannot encode %s", luaL_typename(L, idx));
    e->err = e->ebuf;
    return -1;
}

/* encode(v) -> string | nil, err   [-0, +1|2, m] */
static int l_encode(lua_State *L) {
    jenc e;
    e.L = L;
    e.b = lua_touserdata(L, ENC_BUF);
    e.err = NULL;
    e.b->n = 0;
    lua_settop(L, 1);
    if (enc_value(&e, 1, 1)) {
        jbuf_trim(e.b);
        lua_pushnil(L);
        lua_pushstring(L, e.err ? e.err : "cannot encode");
        return 2;
    }
    lua_pushlstring(L, e.b->p, e.b->n);
    jbuf_trim(e.b);
    return 1;
}

/* ---- decoder ----------------------------------------------------------------------------- */

typedef struct {
    lua_State *L;
    const char *s, *p, *end;
    jbuf *b;
    const char *err;
    const char *errpos;
    int oor; /* number out of range: reported without the byte offset */
} jdec;

/* Upvalues of decode: 1 array_mt, 2 int64_from_string, 3 buffer. */
#define DEC_ARRAY_MT lua_upvalueindex(1)
#define DEC_I64_HOOK lua_upvalueindex(2)
#define DEC_BUF lua_upvalueindex(3)

/* 1 for bytes that end the fast string scan: '"', '\\' and control characters. */
static const unsigned char dec_stop[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
};

/* The first byte at or after p that ends a plain run of string text (a quote, a backslash, a
 * control character), or end. Eight bytes at a time: a word with none of them is skipped whole
 * (the has-zero-byte and has-byte-below tests), the word that has one is finished byte by byte. */
static const char *dec_run(const char *p, const char *end) {
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    while (end - p >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        uint64_t q = v ^ (ones * '"'), b = v ^ (ones * '\\');
        uint64_t hit = ((q - ones) & ~q) | ((b - ones) & ~b) | ((v - ones * 0x20) & ~v);
        if (hit & highs) break;
        p += 8;
    }
    while (p < end && !dec_stop[(unsigned char)*p]) p++;
    return p;
}

static int dec_fail(jdec *d, const char *p, const char *msg) {
    if (!d->err) {
        d->err = msg;
        d->errpos = p;
    }
    return -1;
}

static inline void skip_ws(jdec *d) {
    const char *p = d->p, *end = d->end;
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
    d->p = p;
}

static int hex4(const char *p, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = (unsigned char)p[i], h;
        if (c >= '0' && c <= '9') h = c - '0';
        else if (c >= 'a' && c <= 'f') h = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') h = c - 'A' + 10;
        else return -1;
        v = v << 4 | h;
    }
    *out = v;
    return 0;
}

static char *put_utf8(char *o, unsigned cp) {
    if (cp < 0x80) *o++ = (char)cp;
    else if (cp < 0x800) {
        *o++ = (char)(0xC0 | cp >> 6);
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xE0 | cp >> 12);
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (char)(0xF0 | cp >> 18);
        *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    }
    return o;
}

/* At '"'. Pushes the string. Strings without escapes are pushed straight from the input. */
static int dec_string(jdec *d) {
    const char *start = d->p + 1, *end = d->end, *p = dec_run(start, end);
    if (p < end && *p == '"') {
        lua_pushlstring(d->L, start, (size_t)(p - start));
        d->p = p + 1;
        return 0;
    }
    /* Slow path: unescape into the scratch buffer. The output is never longer than the
     * input (each escape shrinks or keeps its length), so one reservation suffices. */
    jbuf *b = d->b;
    b->n = 0;
    if (jbuf_reserve(b, (size_t)(end - start) + 1)) return dec_fail(d, start, "out of memory");
    char *o = b->p;
    memcpy(o, start, (size_t)(p - start));
    o += p - start;
    for (;;) {
        const char *run = p;
        p = dec_run(p, end);
        memcpy(o, run, (size_t)(p - run));
        o += p - run;
        if (p >= end) return dec_fail(d, p, "unterminated string");
        unsigned char c = (unsigned char)*p;
        if (c == '"') break;
        if (c < 0x20) return dec_fail(d, p, "control character in string");
        /* backslash */
        if (p + 1 >= end) return dec_fail(d, p + 1, "unterminated string");
        switch (p[1]) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if (end - p < 6 || hex4(p + 2, &cp)) return dec_fail(d, p, "invalid \\u escape");
            p += 6;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                /* A high surrogate must pair with a following \uDC00-\uDFFF. */
                if (end - p >= 6 && p[0] == '\\' && p[1] == 'u' && hex4(p + 2, &lo) == 0 && lo >= 0xDC00 &&
                    lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    p += 6;
                } else
                    cp = 0xFFFD;
            } else if (cp >= 0xDC00 && cp <= 0xDFFF)
                cp = 0xFFFD; /* lone low surrogate: not representable in UTF-8 */
            o = put_utf8(o, cp);
            continue;
        }
        default: return dec_fail(d, p, "invalid escape in string");
        }
        p += 2;
    }
    lua_pushlstring(d->L, b->p, (size_t)(o - b->p));
    d->p = p + 1;
    return 0;
}

static int dec_number(jdec *d) {
    const char *p = d->p, *end = d->end, *start = p;
    int neg = 0, isint = 1;
    if (*p == '-') {
        neg = 1;
        p++;
    }
    if (p >= end || !(*p >= '0' && *p <= '9')) return dec_fail(d, p, "invalid number");
    const char *digits = p;
    if (*p == '0') p++;
    else
        while (p < end && *p >= '0' && *p <= '9') p++;
    size_t ndig = (size_t)(p - digits);
    if (p < end && *p == '.') {
        isint = 0;
        p++;
        if (p >= end || !(*p >= '0' && *p <= '9')) return dec_fail(d, p, "invalid number");
        while (p < end && *p >= '0' && *p <= '9') p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        isint = 0;
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (p >= end || !(*p >= '0' && *p <= '9')) return dec_fail(d, p, "invalid number");
        while (p < end && *p >= '0' && *p <= '9') p++;
    }
    d->p = p;
    if (isint) {
        if (ndig <= 15) { /* < 10^15 < 2^53: exact as a double, the common case */
            int64_t v = 0;
            for (const char *q = digits; q < p; q++) v = v * 10 + (*q - '0');
            lua_pushnumber(d->L, neg ? -(double)v : (double)v);
            return 0;
        }
        uint64_t v = 0;
        int over = 0;
        for (const char *q = digits; q < p; q++) {
            unsigned dg = (unsigned)(*q - '0');
            if (v > (UINT64_MAX - dg) / 10) {
                over = 1;
                break;
            }
            v = v * 10 + dg;
        }
        if (!over && v <= (1ULL << 53)) {
            lua_pushnumber(d->L, neg ? -(double)v : (double)v);
            return 0;
        }
        if (over || v > (neg ? (1ULL << 63) : (uint64_t)INT64_MAX)) {
            d->oor = 1;
            return dec_fail(d, start, "number out of range");
        }
        /* Exact int64 cdata, built by the Lua hook from the digits. */
        lua_pushvalue(d->L, DEC_I64_HOOK);
        lua_pushlstring(d->L, start, (size_t)(p - start));
        lua_call(d->L, 1, 1);
        return 0;
    }
    /* Clinger's fast path: at most 15 significant digits and a decimal exponent within
     * +-22 make m and 10^k exact doubles, so one multiplication or division rounds once,
     * correctly: the same double strtod would give. */
    {
        uint64_t m = 0;
        int sig = 0, frac = 0, in_frac = 0, ok = 1;
        const char *q = digits;
        for (; q < p && *q != 'e' && *q != 'E'; q++) {
            if (*q == '.') {
                in_frac = 1;
                continue;
            }
            if (m == 0 && *q == '0') {
                if (in_frac) frac++;
                continue;
            }
            if (++sig > 15) {
                ok = 0;
                break;
            }
            m = m * 10 + (uint64_t)(*q - '0');
            if (in_frac) frac++;
        }
        if (ok) {
            int ex = 0, eneg = 0;
            if (q < p) { /* exponent */
                q++;
                if (*q == '+' || *q == '-') eneg = *q++ == '-';
                while (q < p && ex < 10000) ex = ex * 10 + (*q++ - '0');
                if (q < p) ok = 0; /* absurdly long exponent: leave it to strtod */
            }
            int e10 = (eneg ? -ex : ex) - frac;
            if (ok && e10 >= -22 && e10 <= 22) {
                double v = e10 < 0 ? (double)m / pow10tab[-e10] : (double)m * pow10tab[e10];
                lua_pushnumber(d->L, neg ? -v : v);
                return 0;
            }
        }
    }
    /* strtod wants a terminated string; numbers are short, copy to the stack. */
    char tmp[64];
    size_t n = (size_t)(p - start);
    char *s = tmp;
    if (n >= sizeof tmp) {
        d->b->n = 0;
        if (jbuf_reserve(d->b, n + 1)) return dec_fail(d, start, "out of memory");
        s = d->b->p;
    }
    memcpy(s, start, n);
    s[n] = 0;
    double v = strtod(s, NULL);
    if (isinf(v)) {
        d->oor = 1;
        return dec_fail(d, start, "number out of range");
    }
    lua_pushnumber(d->L, v);
    return 0;
}

static int dec_literal(jdec *d, const char *lit, size_t n) {
    if ((size_t)(d->end - d->p) < n || memcmp(d->p, lit, n) != 0) return dec_fail(d, d->p, "invalid literal");
    d->p += n;
    return 0;
}

static int dec_value(jdec *d, int depth);

static int dec_array(jdec *d, int depth) {
    lua_State *L = d->L;
    if (depth > JSON_MAX_DEPTH) return dec_fail(d, d->p, "nesting too deep (over 1000 levels)");
    if (!lua_checkstack(L, 4)) return dec_fail(d, d->p, "out of memory");
    lua_createtable(L, 4, 0); /* most arrays in API bodies are short: skip the first rehashes */
    lua_pushvalue(L, DEC_ARRAY_MT);
    lua_setmetatable(L, -2);
    d->p++;
    skip_ws(d);
    if (d->p < d->end && *d->p == ']') {
        d->p++;
        return 0;
    }
    for (int i = 1;; i++) {
        if (dec_value(d, depth + 1)) return -1;
        lua_rawseti(L, -2, i);
        skip_ws(d);
        if (d->p >= d->end) return dec_fail(d, d->p, "unexpected end of input");
        if (*d->p == ',') {
            d->p++;
            continue;
        }
        if (*d->p == ']') {
            d->p++;
            return 0;
        }
        return dec_fail(d, d->p, "expected ',' or ']'");
    }
}

static int dec_object(jdec *d, int depth) {
    lua_State *L = d->L;
    if (depth > JSON_MAX_DEPTH) return dec_fail(d, d->p, "nesting too deep (over 1000 levels)");
    if (!lua_checkstack(L, 4)) return dec_fail(d, d->p, "out of memory");
    lua_createtable(L, 0, 4); /* likewise for objects */
    d->p++;
    skip_ws(d);
    if (d->p < d->end && *d->p == '}') {
        d->p++;
        return 0;
    }
    for (;;) {
        skip_ws(d);
        if (d->p >= d->end) return dec_fail(d, d->p, "unexpected end of input");
        if (*d->p != '"') return dec_fail(d, d->p, "expected string key");
        if (dec_string(d)) return -1;
        skip_ws(d);
        if (d->p >= d->end) return dec_fail(d, d->p, "unexpected end of input");
        if (*d->p != ':') return dec_fail(d, d->p, "expected ':'");
        d->p++;
        if (dec_value(d, depth + 1)) return -1;
        lua_rawset(L, -3);
        skip_ws(d);
        if (d->p >= d->end) return dec_fail(d, d->p, "unexpected end of input");
        if (*d->p == ',') {
            d->p++;
            continue;
        }
        if (*d->p == '}') {
            d->p++;
            return 0;
        }
        return dec_fail(d, d->p, "expected ',' or '}'");
    }
}

static int dec_value(jdec *d, int depth) {
    skip_ws(d);
    if (d->p >= d->end) return dec_fail(d, d->p, "unexpected end of input");
    switch (*d->p) {
    case '{': return dec_object(d, depth);
    case '[': return dec_array(d, depth);
    case '"': return dec_string(d);
    case 't':
        if (dec_literal(d, "true", 4)) return -1;
        lua_pushboolean(d->L, 1);
        return 0;
    case 'f':
        if (dec_literal(d, "false", 5)) return -1;
        lua_pushboolean(d->L, 0);
        return 0;
    case 'n':
        if (dec_literal(d, "null", 4)) return -1;
        lua_pushlightuserdata(d->L, NULL);
        return 0;
    default:
        if (*d->p == '-' || (*d->p >= '0' && *d->p <= '9')) return dec_number(d);
        return dec_fail(d, d->p, "unexpected character");
    }
}

/* decode(s) -> value | nil, err   [-0, +1|2, m] */
static int l_decode(lua_State *L) {
    size_t len;
    if (lua_type(L, 1) != LUA_TSTRING) return luaL_typerror(L, 1, "string"); /* not a number turned into one */
    const char *s = lua_tolstring(L, 1, &len);
    jdec d = {L, s, s, s + len, lua_touserdata(L, DEC_BUF), NULL, NULL, 0};
    lua_settop(L, 1);
    int rc = dec_value(&d, 1);
    if (rc == 0) {
        skip_ws(&d);
        if (d.p < d.end) rc = dec_fail(&d, d.p, "trailing garbage after value");
    }
    jbuf_trim(d.b);
    if (rc == 0) return 1;
    lua_settop(L, 1);
    lua_pushnil(L);
    if (d.oor) {
        lua_pushstring(L, d.err);
        return 2;
    }
    size_t off = (size_t)(d.errpos - s) + 1; /* 1-based, as string.sub counts */
    char msg[160];
    if (d.errpos < d.end) {
        unsigned char c = (unsigned char)*d.errpos;
        if (c > 0x20 && c < 0x7f)
            snprintf(msg, sizeof msg, "invalid json at byte %zu: %s near '%c'", off, d.err, c);
        else
            snprintf(msg, sizeof msg, "invalid json at byte %zu: %s near byte 0x%02x", off, d.err, c);
    } else
        snprintf(msg, sizeof msg, "invalid json at byte %zu: %s", off, d.err);
    lua_pushstring(L, msg);
    return 2;
}

/* ---- module ------------------------------------------------------------------------------ */

static void push_buffer(lua_State *L) {
    jbuf *b = lua_newuserdata(L, sizeof *b);
    memset(b, 0, sizeof *b);
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, jbuf_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
}

/* _json.new(array_mt, object_mt, int64_from_string, cdata_to_string) -> encode, decode
 * [-4, +2, m]. The Lua wrapper owns the marks and the FFI hooks and passes them in once. */
static int l_new(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TTABLE);
    luaL_checktype(L, 3, LUA_TFUNCTION);
    luaL_checktype(L, 4, LUA_TFUNCTION);
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 4);
    push_buffer(L);
    lua_pushcclosure(L, l_encode, 4);
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 3);
    push_buffer(L);
    lua_pushcclosure(L, l_decode, 3);
    return 2;
}

MG_API int luaopen_moongate__json(lua_State *L) {
    lua_createtable(L, 0, 2);
    lua_pushcfunction(L, l_new);
    lua_setfield(L, -2, "new");
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "null");
    return 1;
}
