/* redis_client.c: the non-blocking Redis client behind moongate.redis: hiredis's async API on the
 * worker's libev loop (hiredis's own adapters/libev.h: it takes the struct ev_loop * moongate
 * runs, mg_loop). A call is a wait of the calling task (scheduler.h); replies are converted in
 * hiredis's callback and handed to the task on the next loop turn, so no Lua runs inside hiredis.
 * A client connects on its first call and again on the first call after its connection dropped. */
#define _GNU_SOURCE
#include "scheduler.h"

#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libev.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CLIENT_MT "moongate.redis.client"
#define MAX_ARGS 4096

typedef struct client client;

/* One command in flight. */
typedef struct req {
    mg_wait wait;          /* first: the scheduler hands it back to req_cancel */
    mg_task *task;         /* the waiting task; NULL once it gave up (the reply is then dropped) */
    int nvals;             /* values pushed onto the task's thread, waiting to be delivered */
    int replied;
    struct req *next_pending;
} req;

struct client {
    char *host, *path, *user, *password;
    int port, db;
    double connect_timeout;
    redisAsyncContext *ac;   /* NULL: not connected */
    pid_t pid;               /* the process that opened ac (a forked worker opens its own) */
    int connected;
    int timed_out;           /* the connect timer closed ac */
    ev_timer connect_timer;
    char err[128];           /* why the last connection ended */
    int64_t connects;
};

static req *pending_head, *pending_tail;
static int live_reqs;   /* commands allocated and not yet freed, for leak checks */
static ev_timer deliver_timer;
static int deliver_ready;

static void req_free(req *r)
{
    live_reqs--;
    free(r);
}

static void pending_add(req *r)
{
    r->next_pending = NULL;
    if (pending_tail) pending_tail->next_pending = r; else pending_head = r;
    pending_tail = r;
    if (!ev_is_active(&deliver_timer)) {
        ev_timer_set(&deliver_timer, 0., 0.);
        ev_timer_start(mg_loop, &deliver_timer);
    }
}

static void pending_remove(req *r)
{
    req **pp = &pending_head, *prev = NULL;
    while (*pp && *pp != r) { prev = *pp; pp = &(*pp)->next_pending; }
    if (!*pp) return;
    *pp = r->next_pending;
    if (pending_tail == r) pending_tail = prev;
}

/* Wake every task whose reply arrived (outside hiredis: the woken Lua may call or close). */
static void deliver_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    while (pending_head) {
        req *r = pending_head;
        pending_head = r->next_pending;
        if (!pending_head) pending_tail = NULL;
        mg_task *t = r->task;
        int n = r->nvals;
        req_free(r);
        if (t) mg_task_wake(t, n);
    }
}

/* The scheduler ends the wait (timeout, deadline, task cancelled): a reply already converted is
 * popped; one still to come is dropped by reply_cb. */
static void req_cancel(mg_wait *w)
{
    req *r = (req *)w;
    mg_task *t = r->task;
    r->task = NULL;
    if (r->replied) {
        pending_remove(r);
        if (t && r->nvals) lua_pop(mg_task_thread(t), r->nvals);
        req_free(r);
    }
}

static void push_reply(lua_State *L, redisReply *rp, int depth)
{
    lua_checkstack(L, 4);
    switch (rp->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
        lua_pushlstring(L, rp->str, rp->len);
        break;
    case REDIS_REPLY_INTEGER:
        lua_pushnumber(L, (lua_Number)rp->integer);
        break;
    case REDIS_REPLY_NIL:
        lua_pushboolean(L, 0);   /* as Redis's own Lua scripts see a nil bulk */
        break;
    case REDIS_REPLY_ERROR:      /* inside an array: { err = "..." } */
        lua_createtable(L, 0, 1);
        lua_pushlstring(L, rp->str, rp->len);
        lua_setfield(L, -2, "err");
        break;
    case REDIS_REPLY_ARRAY:
        lua_createtable(L, (int)rp->elements, 0);
        for (size_t i = 0; i < rp->elements; i++) {
            if (depth > 16) lua_pushboolean(L, 0);
            else push_reply(L, rp->element[i], depth + 1);
            lua_rawseti(L, -2, (int)i + 1);
        }
        break;
    default:
        lua_pushboolean(L, 0);
    }
}

static const char *conn_error(client *c, redisAsyncContext *ac)
{
    if (c && c->timed_out) return "connect timeout";
    if (ac && ac->errstr[0]) return ac->errstr;
    if (c && c->err[0]) return c->err;
    return "connection lost";
}

static void reply_cb(redisAsyncContext *ac, void *reply, void *priv)
{
    req *r = priv;
    redisReply *rp = reply;
    r->replied = 1;
    mg_task *t = r->task;
    if (!t) {
        req_free(r);
        return;
    }
    lua_State *co = mg_task_thread(t);
    lua_checkstack(co, 4);
    if (!rp) {
        lua_pushnil(co);
        lua_pushfstring(co, "redis: %s", conn_error(ac->data, ac));
        r->nvals = 2;
    } else if (rp->type == REDIS_REPLY_ERROR) {
        lua_pushnil(co);
        lua_pushlstring(co, rp->str, rp->len);
        r->nvals = 2;
    } else {
        push_reply(co, rp, 0);
        r->nvals = 1;
    }
    pending_add(r);
}

static void forget(client *c, redisAsyncContext *ac, const char *why)
{
    if (!c || c->ac != ac) return;
    ev_timer_stop(mg_loop, &c->connect_timer);
    if (why && why[0] && !c->err[0]) snprintf(c->err, sizeof c->err, "%s", why);
    c->ac = NULL;
    c->connected = 0;
}

/* The handshake's replies (AUTH, SELECT): a refusal closes the connection, so the command queued
 * behind it fails rather than running unauthenticated or in the wrong database. */
static void handshake_cb(redisAsyncContext *ac, void *reply, void *priv)
{
    client *c = ac->data;
    redisReply *rp = reply;
    if (rp && rp->type == REDIS_REPLY_ERROR && c) {
        snprintf(c->err, sizeof c->err, "%.*s", (int)(rp->len < 100 ? rp->len : 100), rp->str);
        forget(c, ac, NULL);
        redisAsyncFree(ac);   /* inside a callback hiredis frees it once the callback returns */
    }
}

static void connect_cb(const redisAsyncContext *ac, int status)
{
    client *c = ac->data;
    if (!c || c->ac != ac) return;
    ev_timer_stop(mg_loop, &c->connect_timer);
    if (status == REDIS_OK) c->connected = 1;
    else forget(c, (redisAsyncContext *)ac, ac->errstr);   /* hiredis frees ac itself */
}

static void disconnect_cb(const redisAsyncContext *ac, int status)
{
    client *c = ac->data;
    forget(c, (redisAsyncContext *)ac, status == REDIS_OK ? "connection closed" : ac->errstr);
}

static void connect_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    client *c = (client *)((char *)w - offsetof(client, connect_timer));
    redisAsyncContext *ac = c->ac;
    if (!ac || c->connected) return;
    forget(c, ac, "connect timeout");
    c->timed_out = 1;
    redisAsyncFree(ac);   /* the commands queued on it fail with "connect timeout" */
    c->timed_out = 0;
}

/* Open the connection and queue the handshake; commands queued next go out once it is up. */
static int open_conn(client *c, const char **err)
{
    if (c->ac && c->pid != getpid()) c->ac = NULL;   /* the parent's, inherited through fork */
    if (c->ac) return 0;
    c->err[0] = 0;
    redisAsyncContext *ac = c->path ? redisAsyncConnectUnix(c->path) : redisAsyncConnect(c->host, c->port);
    if (!ac) { *err = "out of memory"; return -1; }
    if (ac->err) {
        snprintf(c->err, sizeof c->err, "%s", ac->errstr);
        redisAsyncFree(ac);
        *err = c->err;
        return -1;
    }
    ac->data = c;
    redisLibevAttach(mg_loop, ac);
    redisAsyncSetConnectCallback(ac, connect_cb);
    redisAsyncSetDisconnectCallback(ac, disconnect_cb);
    c->ac = ac;
    c->pid = getpid();
    c->connected = 0;
    c->connects++;
    if (c->password) {
        if (c->user) redisAsyncCommand(ac, handshake_cb, NULL, "AUTH %s %s", c->user, c->password);
        else redisAsyncCommand(ac, handshake_cb, NULL, "AUTH %s", c->password);
    }
    if (c->db) redisAsyncCommand(ac, handshake_cb, NULL, "SELECT %d", c->db);
    if (c->connect_timeout > 0) {
        ev_now_update(mg_loop);   /* the loop's cached time is stale after CPU work in Lua */
        ev_timer_set(&c->connect_timer, c->connect_timeout, 0.);
        ev_timer_start(mg_loop, &c->connect_timer);
    }
    return 0;
}

static client *check_client(lua_State *L)
{
    client **box = luaL_checkudata(L, 1, CLIENT_MT);
    if (!*box) luaL_argerror(L, 1, "closed redis client");
    return *box;
}

static char *opt_dup(lua_State *L, int idx)
{
    const char *s = luaL_optstring(L, idx, NULL);
    return s ? strdup(s) : NULL;
}

/* _redis.new(host|nil, port, unix_path|nil, user|nil, password|nil, db, connect_timeout) -> client
 * [-0, +1, -]. Arguments are validated by lua/moongate/redis.lua. */
static int l_new(lua_State *L)
{
    client **box = lua_newuserdata(L, sizeof *box);
    *box = NULL;
    luaL_getmetatable(L, CLIENT_MT);
    lua_setmetatable(L, -2);
    client *c = calloc(1, sizeof *c);
    if (!c) return luaL_error(L, "out of memory");
    c->host = opt_dup(L, 1);
    c->port = (int)luaL_optinteger(L, 2, 6379);
    c->path = opt_dup(L, 3);
    c->user = opt_dup(L, 4);
    c->password = opt_dup(L, 5);
    c->db = (int)luaL_optinteger(L, 6, 0);
    c->connect_timeout = luaL_optnumber(L, 7, 1.0);
    ev_timer_init(&c->connect_timer, connect_timer_cb, 0., 0.);
    *box = c;
    return 1;
}

/* _redis.call(client, timeout|nil, arg1, ...) -> reply | nil, err   [-0, +1..2, y]
 * Strings and numbers only; the timeout and the task's deadline, whichever ends first. */
static int l_call(lua_State *L)
{
    client *c = check_client(L);
    double timeout = lua_isnoneornil(L, 2) ? -1 : luaL_checknumber(L, 2);
    int argc = lua_gettop(L) - 2;
    if (argc < 1) return luaL_error(L, "redis call: no command");
    if (argc > MAX_ARGS) return luaL_error(L, "redis call: more than %d arguments", MAX_ARGS);
    mg_task *t = mg_task_current(L);
    if (!t) return luaL_error(L, "redis call: not in a task (use moongate.spawn or moongate run)");
    const char *argv[64], **av = argv;
    size_t lens[64], *al = lens;
    if (argc > 64) {
        av = lua_newuserdata(L, sizeof(char *) * argc);
        al = lua_newuserdata(L, sizeof(size_t) * argc);
    }
    for (int i = 0; i < argc; i++) {
        int idx = i + 3, ty = lua_type(L, idx);
        if (ty != LUA_TSTRING && ty != LUA_TNUMBER)
            return luaL_argerror(L, idx, "redis arguments must be strings or numbers");
        av[i] = lua_tolstring(L, idx, &al[i]);
    }
    double deadline = mg_task_deadline(t);
    if (timeout == 0 || (deadline > 0 && deadline <= ev_time())) {
        lua_pushnil(L);
        lua_pushliteral(L, "timeout");
        return 2;
    }
    const char *err = NULL;
    if (!deliver_ready) {
        ev_timer_init(&deliver_timer, deliver_cb, 0., 0.);
        deliver_ready = 1;
    }
    if (open_conn(c, &err) != 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "redis: %s", err);
        return 2;
    }
    req *r = calloc(1, sizeof *r);
    if (!r) return luaL_error(L, "out of memory");
    live_reqs++;
    r->wait.cancel = req_cancel;
    r->task = t;
    if (redisAsyncCommandArgv(c->ac, reply_cb, r, argc, av, al) != REDIS_OK) {
        req_free(r);
        lua_pushnil(L);
        lua_pushfstring(L, "redis: %s", conn_error(c, c->ac));
        return 2;
    }
    return mg_task_wait(L, &r->wait, timeout);
}

/* _redis.live() -> commands in flight in this worker (sent or waiting for delivery)   [-0, +1, -] */
static int l_live(lua_State *L)
{
    lua_pushinteger(L, live_reqs);
    return 1;
}

/* _redis.close(client): drops the connection; commands in flight fail. The client can call again
 * (it reconnects).   [-0, +0, -] */
static int l_close(lua_State *L)
{
    client *c = check_client(L);
    if (c->ac && c->pid == getpid()) {
        redisAsyncContext *ac = c->ac;
        forget(c, ac, "closed");
        redisAsyncFree(ac);
    }
    c->ac = NULL;
    return 0;
}

/* _redis.stats(client) -> { connected = bool, connects = n, error = "..." | nil }   [-0, +1, -] */
static int l_stats(lua_State *L)
{
    client *c = check_client(L);
    lua_createtable(L, 0, 3);
    lua_pushboolean(L, c->ac && c->connected && c->pid == getpid());
    lua_setfield(L, -2, "connected");
    lua_pushnumber(L, (lua_Number)c->connects);
    lua_setfield(L, -2, "connects");
    if (c->err[0]) {
        lua_pushstring(L, c->err);
        lua_setfield(L, -2, "error");
    }
    return 1;
}

static int l_gc(lua_State *L)
{
    client **box = luaL_checkudata(L, 1, CLIENT_MT);
    client *c = *box;
    if (!c) return 0;
    *box = NULL;
    if (c->ac && c->pid == getpid()) {
        redisAsyncContext *ac = c->ac;
        ac->data = NULL;   /* its callbacks must not reach c again */
        c->ac = NULL;
        redisAsyncFree(ac);
    }
    ev_timer_stop(mg_loop, &c->connect_timer);
    free(c->host);
    free(c->path);
    free(c->user);
    free(c->password);
    free(c);
    return 0;
}

MG_API int luaopen_moongate__redis(lua_State *L)
{
    if (luaL_newmetatable(L, CLIENT_MT)) {
        lua_pushcfunction(L, l_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    static const luaL_Reg funcs[] = {
        {"new", l_new}, {"call", l_call}, {"close", l_close}, {"stats", l_stats}, {"live", l_live}, {NULL, NULL}};
    lua_newtable(L);
    luaL_register(L, NULL, funcs);
    return 1;
}
