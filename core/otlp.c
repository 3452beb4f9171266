/* otlp.c: moongate.trace spans in OTLP's JSON encoding (opentelemetry-proto's
 * ExportTraceServiceRequest as the protobuf JSON mapping writes it: hex ids, times as decimal
 * strings of nanoseconds, attributes as {key, value = {stringValue | intValue | doubleValue |
 * boolValue | arrayValue}}). Exposed as the lua_CFunction module moongate._otlp.
 *
 * Every span the worker exports passes through here, read straight from the Lua tables
 * moongate.trace records (no intermediate table for a generic encoder), into one reusable
 * buffer: encoding a request's trace is one C call, not a few hundred Lua string operations.
 * Each call returns the length of what it wrote; mg_otlp_text() (FFI) is where it is. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "json.h"
#include "mg.h"

#define MAX_DEPTH 16 /* nested array attribute values; deeper ones print as their tostring */

/* The span fields read, interned once as upvalues of every function here. */
enum { K_SID = 1, K_NAME, K_KIND, K_T0, K_T1, K_ATTRS, K_EVENTS, K_STATUS, K_MSG, K_STATE, K_PARENT, K_T, K_N, K_COUNT };
static const char *const key_names[] = { NULL, "sid", "name", "kind", "t0", "t1", "attrs", "events", "status",
                                         "msg", "state", "parent", "t", "n" };

/* ---- output buffer: one per process (a worker has one Lua state) --------------------------- */

static struct {
    char *p;
    size_t n, cap;
} out;

static void need(lua_State *L, size_t extra) {
    if (out.cap - out.n >= extra) return;
    size_t cap = out.cap ? out.cap : 4096;
    while (cap - out.n < extra) cap *= 2;
    char *p = realloc(out.p, cap);
    if (!p) luaL_error(L, "otlp: out of memory");
    out.p = p;
    out.cap = cap;
}

static void put(lua_State *L, const char *s, size_t n) {
    need(L, n);
    memcpy(out.p + out.n, s, n);
    out.n += n;
}
#define PUT(L, lit) put(L, lit, sizeof lit - 1)

/* A new text: the last one was read (through mg_otlp_text); a buffer grown by a huge trace is
 * given back. */
static void reset(void) {
    out.n = 0;
    if (out.cap > (1u << 20)) {
        free(out.p);
        out.p = NULL;
        out.cap = 0;
    }
}

/* The text the last span/spans/attributes call wrote (its length is what the call returned):
 * copied by the Lua side straight into its string.buffer, so no Lua string is made of it. */
MG_API const char *mg_otlp_text(void) { return out.p; }

static void put_string(lua_State *L, const char *s, size_t n) {
    need(L, n * 6 + 2);
    out.p[out.n++] = '"';
    out.n = (size_t)(mg_json_escape(out.p + out.n, s, n) - out.p);
    out.p[out.n++] = '"';
}

/* the value at idx as a JSON string, whatever its type (tostring's text) */
static void put_tostring(lua_State *L, int idx) {
    size_t n;
    lua_getglobal(L, "tostring");
    lua_pushvalue(L, idx);
    lua_call(L, 1, 1);
    const char *s = lua_tolstring(L, -1, &n);
    if (s) put_string(L, s, n);
    else PUT(L, "\"\"");
    lua_pop(L, 1);
}

/* v's decimal digits (snprintf's %lld and %.0f are a few hundred ns each: too slow for the
 * half dozen numbers of every span) */
static void put_int(lua_State *L, long long v) {
    char tmp[24], *end = tmp + sizeof tmp, *p = end;
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) *--p = '-';
    put(L, p, (size_t)(end - p));
}

/* Unix seconds -> "<nanoseconds>", to the microsecond */
static void put_nanos(lua_State *L, double t) {
    PUT(L, "\"");
    put_int(L, (long long)floor(t * 1e6 + 0.5));
    PUT(L, "000\"");
}

static void put_value(lua_State *L, int idx, int depth) {
    switch (lua_type(L, idx)) {
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        PUT(L, "{\"stringValue\":");
        put_string(L, s, n);
        PUT(L, "}");
        return;
    }
    case LUA_TNUMBER: {
        char tmp[64];
        int n;
        double v = lua_tonumber(L, idx);
        /* int64 in JSON is a string; integers a double holds exactly are ints, others doubles */
        if (v == floor(v) && v > -9007199254740992.0 && v < 9007199254740992.0) {
            PUT(L, "{\"intValue\":\"");
            put_int(L, (long long)v);
            PUT(L, "\"}");
            return;
        }
        if (isfinite(v))
            n = snprintf(tmp, sizeof tmp, "{\"doubleValue\":%.17g}", v);
        else /* JSON has no NaN or infinity */
            n = snprintf(tmp, sizeof tmp, "{\"stringValue\":\"%s\"}", isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
        put(L, tmp, (size_t)n);
        return;
    }
    case LUA_TBOOLEAN:
        if (lua_toboolean(L, idx)) PUT(L, "{\"boolValue\":true}");
        else PUT(L, "{\"boolValue\":false}");
        return;
    case LUA_TTABLE:
        if (depth < MAX_DEPTH && lua_checkstack(L, 2)) {
            size_t len = lua_objlen(L, idx);
            PUT(L, "{\"arrayValue\":{\"values\":[");
            for (size_t i = 1; i <= len; i++) {
                if (i > 1) PUT(L, ",");
                lua_rawgeti(L, idx, (int)i);
                put_value(L, lua_gettop(L), depth + 1);
                lua_pop(L, 1);
            }
            PUT(L, "]}}");
            return;
        }
        break;
    default: break;
    }
    PUT(L, "{\"stringValue\":");
    put_tostring(L, idx);
    PUT(L, "}");
}

/* The KeyValue list of the table at idx (nil: []). */
static void put_attributes(lua_State *L, int idx) {
    PUT(L, "[");
    if (lua_type(L, idx) == LUA_TTABLE) {
        int first = 1;
        luaL_checkstack(L, 4, "otlp");
        lua_pushnil(L);
        while (lua_next(L, idx)) {
            int k = lua_gettop(L) - 1;
            if (!first) PUT(L, ",");
            first = 0;
            PUT(L, "{\"key\":");
            if (lua_type(L, k) == LUA_TSTRING) {
                size_t n;
                const char *s = lua_tolstring(L, k, &n);
                put_string(L, s, n);
            } else {
                put_tostring(L, k); /* a copy: tolstring on the key itself would break lua_next */
            }
            PUT(L, ",\"value\":");
            put_value(L, k + 1, 0);
            PUT(L, "}");
            lua_pop(L, 1);
        }
    }
    PUT(L, "]");
}

/* pushes span[key] */
static int field(lua_State *L, int sp, int key) {
    lua_pushvalue(L, lua_upvalueindex(key));
    lua_rawget(L, sp);
    return lua_type(L, -1);
}

static double num_field(lua_State *L, int sp, int key, double dflt) {
    double v = field(L, sp, key) == LUA_TNUMBER ? lua_tonumber(L, -1) : dflt;
    lua_pop(L, 1);
    return v;
}

/* a hex id, written as it is (ids are drawn by moongate.trace or checked from a traceparent) */
static void put_id(lua_State *L, const char *s, size_t n) {
    PUT(L, "\"");
    put(L, s, n);
    PUT(L, "\"");
}

/* One Span object: the span table at sp, its trace id, its parent's span id (or NULL). */
static void put_span(lua_State *L, int sp, const char *tid, size_t tid_n, const char *pid, size_t pid_n) {
    size_t n;
    luaL_checkstack(L, 8, "otlp");
    if (field(L, sp, K_SID) != LUA_TSTRING) luaL_error(L, "otlp: a span without an id");
    const char *sid = lua_tolstring(L, -1, &n);
    PUT(L, "{\"traceId\":");
    put_id(L, tid, tid_n);
    PUT(L, ",\"spanId\":");
    put_id(L, sid, n);
    lua_pop(L, 1);
    if (pid) {
        PUT(L, ",\"parentSpanId\":");
        put_id(L, pid, pid_n);
    }
    if (field(L, sp, K_STATE) == LUA_TSTRING) {
        const char *s = lua_tolstring(L, -1, &n);
        PUT(L, ",\"traceState\":");
        put_string(L, s, n);
    }
    lua_pop(L, 1);
    PUT(L, ",\"name\":");
    if (field(L, sp, K_NAME) == LUA_TSTRING) {
        const char *s = lua_tolstring(L, -1, &n);
        put_string(L, s, n);
    } else {
        put_tostring(L, lua_gettop(L));
    }
    lua_pop(L, 1);
    PUT(L, ",\"kind\":");
    put_int(L, (long long)num_field(L, sp, K_KIND, 1));
    double t0 = num_field(L, sp, K_T0, 0);
    PUT(L, ",\"startTimeUnixNano\":");
    put_nanos(L, t0);
    PUT(L, ",\"endTimeUnixNano\":");
    put_nanos(L, num_field(L, sp, K_T1, t0));
    PUT(L, ",\"attributes\":");
    field(L, sp, K_ATTRS);
    put_attributes(L, lua_gettop(L));
    lua_pop(L, 1);
    if (field(L, sp, K_EVENTS) == LUA_TTABLE) {
        int evs = lua_gettop(L);
        size_t count = lua_objlen(L, evs);
        PUT(L, ",\"events\":[");
        for (size_t i = 1; i <= count; i++) {
            lua_rawgeti(L, evs, (int)i);
            int e = lua_gettop(L);
            if (i > 1) PUT(L, ",");
            PUT(L, "{\"timeUnixNano\":");
            put_nanos(L, lua_type(L, e) == LUA_TTABLE ? num_field(L, e, K_T, t0) : t0);
            PUT(L, ",\"name\":");
            if (lua_type(L, e) == LUA_TTABLE && field(L, e, K_NAME) == LUA_TSTRING) {
                const char *s = lua_tolstring(L, -1, &n);
                put_string(L, s, n);
            } else {
                PUT(L, "\"\"");
            }
            lua_pop(L, 1);
            PUT(L, ",\"attributes\":");
            if (lua_type(L, e) == LUA_TTABLE) {
                field(L, e, K_ATTRS);
                put_attributes(L, lua_gettop(L));
                lua_pop(L, 1);
            } else {
                PUT(L, "[]");
            }
            PUT(L, "}");
            lua_pop(L, 1);
        }
        PUT(L, "]");
    }
    lua_pop(L, 1);
    int failed = 0;
    if (field(L, sp, K_STATUS) == LUA_TSTRING) failed = strcmp(lua_tostring(L, -1), "error") == 0;
    lua_pop(L, 1);
    if (failed) {
        PUT(L, ",\"status\":{\"code\":2,\"message\":");
        if (field(L, sp, K_MSG) == LUA_TSTRING) {
            const char *s = lua_tolstring(L, -1, &n);
            put_string(L, s, n);
        } else {
            PUT(L, "\"\"");
        }
        lua_pop(L, 1);
        PUT(L, "}}");
    } else {
        PUT(L, ",\"status\":{}}");
    }
}

/* span(span, trace_id, parent_id?) -> length of one Span object   [-3, +1, e] */
static int l_span(lua_State *L) {
    size_t tn, pn = 0;
    luaL_checktype(L, 1, LUA_TTABLE);
    const char *tid = luaL_checklstring(L, 2, &tn);
    const char *pid = luaL_optlstring(L, 3, NULL, &pn);
    reset();
    put_span(L, 1, tid, tn, pid, pn);
    lua_pushinteger(L, (lua_Integer)out.n);
    return 1;
}

/* spans(trace, trace_id, remote_parent?) -> length of the trace's spans trace[1..trace.n], comma-separated
 * Span objects; each span's parent is its parent span's id, the root's the caller's span id.
 * [-3, +1, e] */
static int l_spans(lua_State *L) {
    size_t tn, rn = 0;
    luaL_checktype(L, 1, LUA_TTABLE);
    const char *tid = luaL_checklstring(L, 2, &tn);
    const char *remote = luaL_optlstring(L, 3, NULL, &rn);
    int count = (int)num_field(L, 1, K_N, 0);
    reset();
    for (int i = 1; i <= count; i++) {
        lua_rawgeti(L, 1, i);
        int sp = lua_gettop(L);
        if (lua_type(L, sp) != LUA_TTABLE) luaL_error(L, "otlp: span %d of %d is missing", i, count);
        const char *pid = NULL;
        size_t pn = 0;
        if (field(L, sp, K_PARENT) == LUA_TTABLE) {
            if (field(L, sp + 1, K_SID) == LUA_TSTRING) pid = lua_tolstring(L, -1, &pn);
        } else {
            lua_pushnil(L);
            if (i == 1) pid = remote, pn = rn;
        }
        if (i > 1) PUT(L, ",");
        put_span(L, sp, tid, tn, pid, pn); /* the parent's id stays on the stack while it is used */
        lua_settop(L, sp - 1);
    }
    lua_pushinteger(L, (lua_Integer)out.n);
    return 1;
}

/* attributes(t) -> length of the KeyValue list of a table of attributes   [-1, +1, e] */
static int l_attributes(lua_State *L) {
    reset();
    put_attributes(L, 1);
    lua_pushinteger(L, (lua_Integer)out.n);
    return 1;
}

MG_API int luaopen_moongate__otlp(lua_State *L) {
    static const luaL_Reg fns[] = { { "span", l_span }, { "spans", l_spans }, { "attributes", l_attributes },
                                    { NULL, NULL } };
    lua_createtable(L, 0, 3);
    for (const luaL_Reg *f = fns; f->name; f++) {
        for (int k = 1; k < K_COUNT; k++) lua_pushstring(L, key_names[k]);
        lua_pushcclosure(L, f->func, K_COUNT - 1);
        lua_setfield(L, -2, f->name);
    }
    return 1;
}
