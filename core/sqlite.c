/* sqlite.c: sqlite3 for Lua (module moongate._sqlite): connections, prepared statements with
 * bound parameters, rows as tables. A lua_CFunction module because it builds tables.
 *
 * Ownership: a db userdata keeps a list of its statement userdatas; db:close() (or its __gc)
 * finalizes them all, then closes the connection, so a statement never outlives its
 * connection's handle. Statement userdatas keep their db userdata alive (fenv), so a reachable
 * statement keeps its connection open. Statements prepared inside query()/first() are
 * finalized before the call returns. Calls are synchronous: they block the event loop for the
 * duration of the statement (local disk, short statements); bulk work belongs off the
 * request path. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <sqlite3.h>

#include "mg.h"

#define SQL_CDATA 10 /* lua_type() of an FFI cdata in LuaJIT */
#define DB_MT "moongate.sqlite.db"
#define STMT_MT "moongate.sqlite.stmt"
#define SQL_CACHE 32 /* prepared statements kept per connection for query()/first() */

typedef struct mg_stmt mg_stmt;

typedef struct {
    sqlite3 *db;
    mg_stmt *stmts;        /* statements prepared through db:prepare(), still open */
    sqlite3_stmt *pending; /* query()/first()'s statement while it runs, in case a raise skips its reset */
    sqlite3_stmt *cache[SQL_CACHE]; /* query()/first() statements by SQL text, reused */
    size_t cache_len[SQL_CACHE];    /* strlen(sqlite3_sql(cache[i])) */
    unsigned cache_next;            /* round-robin replacement */
} mg_db;

struct mg_stmt {
    sqlite3_stmt *st;
    mg_db *owner;
    mg_stmt *prev, *next;
    int ncols;
};

/* Registry keys of the FFI hooks set by lua/moongate/sqlite.lua. */
static char key_i64_from_string, key_cdata_to_string;

/* Live objects, for leak checks in tests (one Lua state per process). */
static long live_connections, live_statements;

/* ---- helpers ---------------------------------------------------------------------------- */

static const char *code_name(int rc) {
    switch (rc & 0xff) {
    case SQLITE_BUSY: return "busy";
    case SQLITE_LOCKED: return "locked";
    case SQLITE_CONSTRAINT: return "constraint";
    case SQLITE_READONLY: return "readonly";
    case SQLITE_FULL: return "full";
    case SQLITE_CANTOPEN: return "cantopen";
    case SQLITE_NOTADB: return "notadb";
    case SQLITE_CORRUPT: return "corrupt";
    case SQLITE_MISMATCH: return "mismatch";
    case SQLITE_TOOBIG: return "toobig";
    case SQLITE_INTERRUPT: return "interrupt";
    case SQLITE_IOERR: return "ioerr";
    default: return "error";
    }
}

/* nil, message, code   [-0, +3, m] */
static int push_error(lua_State *L, sqlite3 *db, int rc) {
    lua_pushnil(L);
    lua_pushstring(L, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    lua_pushstring(L, code_name(rc));
    return 3;
}

static mg_db *check_db(lua_State *L, int idx) {
    mg_db *d = luaL_checkudata(L, idx, DB_MT);
    if (!d->db) luaL_error(L, "sqlite: database is closed");
    return d;
}

static mg_stmt *check_stmt(lua_State *L, int idx) {
    mg_stmt *s = luaL_checkudata(L, idx, STMT_MT);
    if (!s->st) luaL_error(L, "sqlite: statement is finalized");
    return s;
}

static void push_int64(lua_State *L, sqlite3_int64 v) {
    if (v >= -(1LL << 53) && v <= (1LL << 53)) {
        lua_pushnumber(L, (lua_Number)v);
        return;
    }
    char tmp[24];
    snprintf(tmp, sizeof tmp, "%lld", (long long)v);
    lua_pushlightuserdata(L, &key_i64_from_string);
    lua_rawget(L, LUA_REGISTRYINDEX);
    lua_pushstring(L, tmp);
    lua_call(L, 1, 1);
}

static void push_column(lua_State *L, sqlite3_stmt *st, int i) {
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_INTEGER: push_int64(L, sqlite3_column_int64(st, i)); break;
    case SQLITE_FLOAT: lua_pushnumber(L, sqlite3_column_double(st, i)); break;
    case SQLITE_TEXT:
        lua_pushlstring(L, (const char *)sqlite3_column_text(st, i), (size_t)sqlite3_column_bytes(st, i));
        break;
    case SQLITE_BLOB: {
        const void *p = sqlite3_column_blob(st, i);
        lua_pushlstring(L, p ? p : "", (size_t)sqlite3_column_bytes(st, i));
        break;
    }
    default: lua_pushnil(L); break;
    }
}

/* Current row as {column = value}; NULL columns are absent.   [-0, +1, m] */
static void push_row(lua_State *L, sqlite3_stmt *st) {
    int n = sqlite3_column_count(st);
    lua_createtable(L, 0, n);
    for (int i = 0; i < n; i++) {
        if (sqlite3_column_type(st, i) == SQLITE_NULL) continue;
        lua_pushstring(L, sqlite3_column_name(st, i));
        push_column(L, st, i);
        lua_rawset(L, -3);
    }
}

/* Binds the Lua value at idx to parameter i. Returns an sqlite rc; raises for values that
 * cannot be bound (a caller bug). */
static int bind_value(lua_State *L, sqlite3_stmt *st, int i, int idx, sqlite3_destructor_type how) {
    switch (lua_type(L, idx)) {
    case LUA_TNIL: return sqlite3_bind_null(st, i);
    case LUA_TBOOLEAN: return sqlite3_bind_int(st, i, lua_toboolean(L, idx));
    case LUA_TNUMBER: {
        double d = lua_tonumber(L, idx);
        if (d == floor(d) && fabs(d) < 9223372036854775808.0) return sqlite3_bind_int64(st, i, (sqlite3_int64)d);
        return sqlite3_bind_double(st, i, d);
    }
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        return sqlite3_bind_text64(st, i, s, n, how, SQLITE_UTF8);
    }
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL) return sqlite3_bind_null(st, i); /* json.null */
        break;
    case LUA_TTABLE: {
        /* sqlite.blob(s): {s} with the blob mark */
        if (lua_getmetatable(L, idx)) {
            lua_getfield(L, LUA_REGISTRYINDEX, "moongate.sqlite.blob");
            int is_blob = lua_rawequal(L, -1, -2);
            lua_pop(L, 2);
            if (is_blob) {
                lua_rawgeti(L, idx, 1);
                size_t n;
                const char *s = lua_tolstring(L, -1, &n);
                int rc = s ? sqlite3_bind_blob64(st, i, s, n, SQLITE_TRANSIENT) : sqlite3_bind_null(st, i);
                lua_pop(L, 1);
                return rc;
            }
        }
        break;
    }
    case SQL_CDATA: {
        lua_pushlightuserdata(L, &key_cdata_to_string);
        lua_rawget(L, LUA_REGISTRYINDEX);
        lua_pushvalue(L, idx);
        lua_call(L, 1, 1);
        if (lua_type(L, -1) == LUA_TNUMBER) { /* int32_t, double, ... cdata: by value */
            int rc = bind_value(L, st, i, lua_gettop(L), how);
            lua_pop(L, 1);
            return rc;
        }
        if (lua_type(L, -1) == LUA_TSTRING) {
            const char *s = lua_tostring(L, -1);
            char *end;
            int neg = s[0] == '-';
            unsigned long long u = strtoull(neg ? s + 1 : s, &end, 10);
            lua_pop(L, 1);
            if (neg ? u > (1ULL << 63) : u > (unsigned long long)INT64_MAX)
                return luaL_error(L, "sqlite: parameter %d: integer out of range", i);
            sqlite3_int64 v = neg ? (sqlite3_int64)(0 - u) : (sqlite3_int64)u;
            return sqlite3_bind_int64(st, i, v);
        }
        lua_pop(L, 1);
        break;
    }
    default: break;
    }
    return luaL_error(L, "sqlite: parameter %d: cannot bind a %s", i, luaL_typename(L, idx));
}

/* Binds arguments first..top: one table binds by name (":name", "@name", "$name"; plain
 * "?" parameters take t[i]); otherwise positionally. Returns an sqlite rc. */
static int bind_args(lua_State *L, sqlite3_stmt *st, int first, sqlite3_destructor_type how) {
    int top = lua_gettop(L), nparams = sqlite3_bind_parameter_count(st);
    sqlite3_clear_bindings(st);
    int named = 0;
    if (top == first && lua_type(L, first) == LUA_TTABLE) {
        named = 1;
        if (lua_getmetatable(L, first)) {
            lua_getfield(L, LUA_REGISTRYINDEX, "moongate.sqlite.blob");
            named = !lua_rawequal(L, -1, -2);
            lua_pop(L, 2);
        }
    }
    if (named) {
        for (int i = 1; i <= nparams; i++) {
            const char *name = sqlite3_bind_parameter_name(st, i);
            if (name && name[0] != '?') lua_getfield(L, first, name + 1);
            else lua_rawgeti(L, first, i);
            int rc = bind_value(L, st, i, lua_gettop(L), SQLITE_TRANSIENT);
            lua_pop(L, 1);
            if (rc != SQLITE_OK) return rc;
        }
        return SQLITE_OK;
    }
    int nargs = top - first + 1;
    if (nargs > nparams)
        return luaL_error(L, "sqlite: %d values for %d parameters", nargs, nparams);
    for (int i = 1; i <= nargs; i++) {
        int rc = bind_value(L, st, i, first + i - 1, how);
        if (rc != SQLITE_OK) return rc;
    }
    return SQLITE_OK;
}

/* ---- connection ---------------------------------------------------------------------------- */

static void db_close(mg_db *d) {
    if (!d->db) return;
    d->pending = NULL;
    for (int i = 0; i < SQL_CACHE; i++) {
        sqlite3_finalize(d->cache[i]);
        d->cache[i] = NULL;
    }
    for (mg_stmt *s = d->stmts; s; s = s->next) {
        sqlite3_finalize(s->st);
        s->st = NULL;
        s->owner = NULL;
        live_statements--;
    }
    d->stmts = NULL;
    /* Only our own statements: extensions such as FTS5 prepare statements of their own and
     * finalize them in their destructors; close_v2 defers the close until they have. */
    sqlite3_close_v2(d->db);
    d->db = NULL;
    live_connections--;
}

/* _sqlite.open(path, readonly, busy_ms) -> db | nil, err, code   [-0, +1|3, m] */
static int l_open(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    int readonly = lua_toboolean(L, 2);
    int busy_ms = (int)luaL_optinteger(L, 3, 5000);
    mg_db *d = lua_newuserdata(L, sizeof *d);
    memset(d, 0, sizeof *d);
    luaL_getmetatable(L, DB_MT);
    lua_setmetatable(L, -2);
    int flags = (readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
                SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX;
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, flags, NULL);
    if (rc != SQLITE_OK) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s: %s", db ? sqlite3_errmsg(db) : sqlite3_errstr(rc), path);
        lua_pushstring(L, code_name(rc));
        sqlite3_close_v2(db);
        return 3;
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, busy_ms);
    d->db = db;
    live_connections++;
    return 1;
}

/* db:exec(sql) -> true | nil, err, code   [-0, +1|3, m] */
static int l_db_exec(lua_State *L) {
    mg_db *d = check_db(L, 1);
    const char *sql = luaL_checkstring(L, 2);
    int rc = sqlite3_exec(d->db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK) return push_error(L, d->db, rc);
    lua_pushboolean(L, 1);
    return 1;
}

/* Prepares sql (one statement; trailing whitespace/semicolons allowed). */
static int prepare_one(lua_State *L, sqlite3 *db, int sqlidx, sqlite3_stmt **out) {
    size_t len;
    const char *sql = luaL_checklstring(L, sqlidx, &len), *tail = NULL;
    int rc = sqlite3_prepare_v2(db, sql, (int)len, out, &tail);
    if (rc != SQLITE_OK) return rc;
    if (!*out) {
        lua_pushnil(L);
        lua_pushstring(L, "empty statement");
        return -1;
    }
    while (tail && tail < sql + len && (*tail == ' ' || *tail == '\n' || *tail == '\t' || *tail == '\r' || *tail == ';'))
        tail++;
    if (tail && tail < sql + len) {
        sqlite3_finalize(*out);
        *out = NULL;
        return luaL_error(L, "sqlite: one statement at a time (use db:exec for scripts): %s", tail);
    }
    return SQLITE_OK;
}

/* query()/first() statement for the SQL at sqlidx: from the connection's cache (same text),
 * else prepared and cached in place of the oldest entry. */
static int cached_prepare(lua_State *L, mg_db *d, int sqlidx, sqlite3_stmt **out) {
    size_t len;
    const char *sql = luaL_checklstring(L, sqlidx, &len);
    for (int i = 0; i < SQL_CACHE; i++) {
        sqlite3_stmt *st = d->cache[i];
        if (!st) break;
        if (d->cache_len[i] == len && memcmp(sqlite3_sql(st), sql, len) == 0) {
            *out = st;
            return SQLITE_OK;
        }
    }
    int rc = prepare_one(L, d->db, sqlidx, out);
    if (rc != SQLITE_OK) return rc;
    unsigned slot = d->cache_next++ % SQL_CACHE;
    sqlite3_finalize(d->cache[slot]);
    d->cache[slot] = *out;
    d->cache_len[slot] = strlen(sqlite3_sql(*out));
    return SQLITE_OK;
}

/* db:query(sql, ...) -> {row, ...} | nil, err, code   [-0, +1|3, m]
 * db:first(sql, ...) -> row | nil | nil, err, code    (upvalue 1: true for first) */
static int l_db_query(lua_State *L) {
    mg_db *d = check_db(L, 1);
    int first_only = lua_toboolean(L, lua_upvalueindex(1));
    if (d->pending) { /* a raise left the last one mid-way: release it */
        sqlite3_reset(d->pending);
        sqlite3_clear_bindings(d->pending);
        d->pending = NULL;
    }
    sqlite3_stmt *st = NULL;
    int rc = cached_prepare(L, d, 2, &st);
    if (rc == -1) return 2;
    if (rc != SQLITE_OK) return push_error(L, d->db, rc);
    d->pending = st;
    /* Arguments stay on the stack while the statement runs: bind without copying, and clear
     * the bindings before returning so no pointer outlives the call. */
    rc = lua_gettop(L) >= 3 ? bind_args(L, st, 3, SQLITE_STATIC) : SQLITE_OK;
    int n = 0;
    if (rc == SQLITE_OK) {
        if (!first_only) lua_newtable(L);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            push_row(L, st);
            if (first_only) {
                n = 1;
                break;
            }
            lua_rawseti(L, -2, ++n);
        }
    }
    int ret = 1;
    if (rc != SQLITE_OK && rc != SQLITE_ROW && rc != SQLITE_DONE) ret = push_error(L, d->db, rc);
    else if (first_only && n == 0) lua_pushnil(L);
    sqlite3_reset(st); /* also ends the statement's read transaction */
    sqlite3_clear_bindings(st);
    d->pending = NULL;
    return ret;
}

/* db:prepare(sql) -> stmt | nil, err, code   [-0, +1|3, m] */
static int l_db_prepare(lua_State *L) {
    mg_db *d = check_db(L, 1);
    mg_stmt *s = lua_newuserdata(L, sizeof *s);
    memset(s, 0, sizeof *s);
    luaL_getmetatable(L, STMT_MT);
    lua_setmetatable(L, -2);
    /* The statement keeps its connection alive. */
    lua_createtable(L, 1, 0);
    lua_pushvalue(L, 1);
    lua_rawseti(L, -2, 1);
    lua_setfenv(L, -2);
    sqlite3_stmt *st = NULL;
    int rc = prepare_one(L, d->db, 2, &st);
    if (rc == -1) return 2;
    if (rc != SQLITE_OK) return push_error(L, d->db, rc);
    s->st = st;
    s->owner = d;
    live_statements++;
    s->ncols = sqlite3_column_count(st);
    s->next = d->stmts;
    if (d->stmts) d->stmts->prev = s;
    d->stmts = s;
    return 1;
}

/* [-0, +1, -] */
static int l_db_changes(lua_State *L) {
    mg_db *d = check_db(L, 1);
    lua_pushnumber(L, (lua_Number)sqlite3_changes64(d->db));
    return 1;
}

static int l_db_last_insert_rowid(lua_State *L) {
    mg_db *d = check_db(L, 1);
    push_int64(L, sqlite3_last_insert_rowid(d->db));
    return 1;
}

/* db:autocommit() -> true when no transaction is open   [-0, +1, -] */
static int l_db_autocommit(lua_State *L) {
    mg_db *d = check_db(L, 1);
    lua_pushboolean(L, sqlite3_get_autocommit(d->db));
    return 1;
}

/* db:close(), idempotent; also __gc   [-0, +0, -] */
static int l_db_close(lua_State *L) {
    mg_db *d = luaL_checkudata(L, 1, DB_MT);
    db_close(d);
    return 0;
}

static int l_db_is_open(lua_State *L) {
    mg_db *d = luaL_checkudata(L, 1, DB_MT);
    lua_pushboolean(L, d->db != NULL);
    return 1;
}

static int l_db_tostring(lua_State *L) {
    mg_db *d = luaL_checkudata(L, 1, DB_MT);
    if (d->db) lua_pushfstring(L, "sqlite.db (%s)", sqlite3_db_filename(d->db, "main"));
    else lua_pushstring(L, "sqlite.db (closed)");
    return 1;
}

/* ---- statements ---------------------------------------------------------------------------- */

static void stmt_finalize(mg_stmt *s) {
    if (!s->st) return;
    sqlite3_finalize(s->st);
    s->st = NULL;
    live_statements--;
    mg_db *d = s->owner;
    if (d) {
        if (s->prev) s->prev->next = s->next;
        else d->stmts = s->next;
        if (s->next) s->next->prev = s->prev;
    }
    s->owner = NULL;
    s->prev = s->next = NULL;
}

/* stmt:bind(...) -> stmt | nil, err, code   [-0, +1|3, m] */
static int l_stmt_bind(lua_State *L) {
    mg_stmt *s = check_stmt(L, 1);
    sqlite3_reset(s->st);
    int rc = bind_args(L, s->st, 2, SQLITE_TRANSIENT);
    if (rc != SQLITE_OK) return push_error(L, s->owner->db, rc);
    lua_settop(L, 1);
    return 1;
}

/* stmt:step() -> row | nil (done) | nil, err, code   [-0, +1|3, m] */
static int l_stmt_step(lua_State *L) {
    mg_stmt *s = check_stmt(L, 1);
    int rc = sqlite3_step(s->st);
    if (rc == SQLITE_ROW) {
        push_row(L, s->st);
        return 1;
    }
    if (rc == SQLITE_DONE) {
        lua_pushnil(L);
        return 1;
    }
    int ret = push_error(L, s->owner->db, rc);
    sqlite3_reset(s->st);
    return ret;
}

/* stmt:reset() -> stmt: ready to step again; bindings kept.   [-0, +1, -] */
static int l_stmt_reset(lua_State *L) {
    mg_stmt *s = check_stmt(L, 1);
    sqlite3_reset(s->st);
    lua_settop(L, 1);
    return 1;
}

/* stmt:finalize(), idempotent; also __gc   [-0, +0, -] */
static int l_stmt_finalize(lua_State *L) {
    mg_stmt *s = luaL_checkudata(L, 1, STMT_MT);
    stmt_finalize(s);
    return 0;
}

/* stmt:columns() -> {name, ...}   [-0, +1, m] */
static int l_stmt_columns(lua_State *L) {
    mg_stmt *s = check_stmt(L, 1);
    lua_createtable(L, s->ncols, 0);
    for (int i = 0; i < s->ncols; i++) {
        lua_pushstring(L, sqlite3_column_name(s->st, i));
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int l_stmt_sql(lua_State *L) {
    mg_stmt *s = check_stmt(L, 1);
    lua_pushstring(L, sqlite3_sql(s->st));
    return 1;
}

/* ---- module ---------------------------------------------------------------------------------- */

/* _sqlite.set_hooks(int64_from_string, cdata_to_string, blob_mt)   [-0, +0, -] */
static int l_set_hooks(lua_State *L) {
    luaL_checktype(L, 1, LUA_TFUNCTION);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_pushlightuserdata(L, &key_i64_from_string);
    lua_pushvalue(L, 1);
    lua_rawset(L, LUA_REGISTRYINDEX);
    lua_pushlightuserdata(L, &key_cdata_to_string);
    lua_pushvalue(L, 2);
    lua_rawset(L, LUA_REGISTRYINDEX);
    lua_pushvalue(L, 3);
    lua_setfield(L, LUA_REGISTRYINDEX, "moongate.sqlite.blob");
    return 0;
}

/* _sqlite.stats() -> {connections = n, statements = n}: open connections and open statements
 * from db:prepare() in this process.   [-0, +1, m] */
static int l_stats(lua_State *L) {
    lua_createtable(L, 0, 2);
    lua_pushnumber(L, (lua_Number)live_connections);
    lua_setfield(L, -2, "connections");
    lua_pushnumber(L, (lua_Number)live_statements);
    lua_setfield(L, -2, "statements");
    return 1;
}

static int l_version(lua_State *L) {
    lua_pushstring(L, sqlite3_libversion());
    return 1;
}

static const luaL_Reg db_methods[] = {
    {"exec", l_db_exec},
    {"prepare", l_db_prepare},
    {"changes", l_db_changes},
    {"last_insert_rowid", l_db_last_insert_rowid},
    {"autocommit", l_db_autocommit},
    {"close", l_db_close},
    {"is_open", l_db_is_open},
    {NULL, NULL},
};

static const luaL_Reg stmt_methods[] = {
    {"bind", l_stmt_bind},
    {"step", l_stmt_step},
    {"reset", l_stmt_reset},
    {"finalize", l_stmt_finalize},
    {"columns", l_stmt_columns},
    {"sql", l_stmt_sql},
    {NULL, NULL},
};

MG_API int luaopen_moongate__sqlite(lua_State *L) {
    if (luaL_newmetatable(L, DB_MT)) {
        lua_newtable(L);
        luaL_register(L, NULL, db_methods);
        lua_pushboolean(L, 0);
        lua_pushcclosure(L, l_db_query, 1);
        lua_setfield(L, -2, "query");
        lua_pushboolean(L, 1);
        lua_pushcclosure(L, l_db_query, 1);
        lua_setfield(L, -2, "first");
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, l_db_close);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, l_db_tostring);
        lua_setfield(L, -2, "__tostring");
    }
    lua_pop(L, 1);
    if (luaL_newmetatable(L, STMT_MT)) {
        lua_newtable(L);
        luaL_register(L, NULL, stmt_methods);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, l_stmt_finalize);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    lua_createtable(L, 0, 4);
    lua_pushcfunction(L, l_open);
    lua_setfield(L, -2, "open");
    lua_pushcfunction(L, l_set_hooks);
    lua_setfield(L, -2, "set_hooks");
    lua_pushcfunction(L, l_version);
    lua_setfield(L, -2, "version");
    lua_pushcfunction(L, l_stats);
    lua_setfield(L, -2, "stats");
    luaL_getmetatable(L, DB_MT);
    lua_setfield(L, -2, "db_mt");
    luaL_getmetatable(L, STMT_MT);
    lua_setfield(L, -2, "stmt_mt");
    return 1;
}
