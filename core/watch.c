/* watch.c: folder watches with inotify read through an ev_io, for hot reload. ev_stat is not
 * enough: it compares whole-second mtimes and sizes, so a same-size edit within a second
 * goes unseen. Also the content hash used as a unit's version id. */
#define _GNU_SOURCE
#include "scheduler.h"

#include <errno.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>
#include <xxhash.h>

#define WATCH_MT "moongate.watch"

typedef struct {
    int fd;
    ev_io io;
    mg_wait wait;
    mg_task *waiter;
} watch;

static watch *check_watch(lua_State *L)
{
    watch *w = luaL_checkudata(L, 1, WATCH_MT);
    if (w->fd < 0) luaL_error(L, "watch is closed");
    return w;
}

/* _watch.new() -> watch | nil, err   [-0, +1..2, -] */
static int l_new(lua_State *L)
{
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) {
        lua_pushnil(L);
        lua_pushstring(L, strerror(errno));
        return 2;
    }
    watch *w = lua_newuserdata(L, sizeof *w);
    memset(w, 0, sizeof *w);
    w->fd = fd;
    luaL_getmetatable(L, WATCH_MT);
    lua_setmetatable(L, -2);
    return 1;
}

/* w:add(dir) -> true | nil, err   [-0, +1..2, -] */
static int l_add(lua_State *L)
{
    watch *w = check_watch(L);
    const char *dir = luaL_checkstring(L, 2);
    int wd = inotify_add_watch(w->fd, dir, IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_MOVED_FROM);
    if (wd < 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "%s: %s", dir, strerror(errno));
        return 2;
    }
    lua_pushinteger(L, wd);
    return 1;
}

/* Read what is queued: push {{wd=, name=, gone=bool}, ...} onto L. */
static int drain(lua_State *L, watch *w)
{
    char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    lua_newtable(L);
    int n = 0;
    for (;;) {
        ssize_t len = read(w->fd, buf, sizeof buf);
        if (len <= 0) break;
        for (char *p = buf; p < buf + len;) {
            struct inotify_event *ev = (struct inotify_event *)p;
            if (ev->len) {
                lua_createtable(L, 0, 3);
                lua_pushinteger(L, ev->wd);
                lua_setfield(L, -2, "wd");
                lua_pushstring(L, ev->name);
                lua_setfield(L, -2, "name");
                lua_pushboolean(L, (ev->mask & (IN_DELETE | IN_MOVED_FROM)) != 0);
                lua_setfield(L, -2, "gone");
                lua_rawseti(L, -2, ++n);
            }
            p += sizeof *ev + ev->len;
        }
    }
    return n;
}

static void io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    watch *w = (watch *)((char *)io - offsetof(watch, io));
    ev_io_stop(loop, io);
    mg_task *t = w->waiter;
    w->waiter = NULL;
    if (!t) return;
    drain(mg_task_thread(t), w);
    mg_task_wake(t, 1);
}

static void wait_cancel(mg_wait *mw)
{
    watch *w = (watch *)((char *)mw - offsetof(watch, wait));
    ev_io_stop(mg_loop, &w->io);
    w->waiter = NULL;
}

/* w:next([timeout]) -> events | nil, "timeout"; waits until a file in a watched folder is
 * written, moved in, created or removed.   [-0, +1..2, y] */
static int l_next(lua_State *L)
{
    watch *w = check_watch(L);
    double timeout = luaL_optnumber(L, 2, -1);
    if (w->waiter) return luaL_error(L, "another task is already waiting on this watch");
    if (drain(L, w) > 0) return 1;
    lua_pop(L, 1);
    mg_task *t = mg_task_current(L);
    if (!t) return luaL_error(L, "not in a task");
    w->waiter = t;
    w->wait.cancel = wait_cancel;
    w->wait.sleep = 0;
    ev_io_init(&w->io, io_cb, w->fd, EV_READ);
    ev_io_start(mg_loop, &w->io);
    return mg_task_wait(L, &w->wait, timeout);
}

/* w:close()   [-0, +0, -] */
static int l_close(lua_State *L)
{
    watch *w = luaL_checkudata(L, 1, WATCH_MT);
    if (w->fd < 0) return 0;
    if (w->waiter) {   /* the waiting task gets nil, "closed" */
        mg_task *t = w->waiter;
        ev_io_stop(mg_loop, &w->io);
        w->waiter = NULL;
        lua_State *co = mg_task_thread(t);
        lua_pushnil(co);
        lua_pushliteral(co, "closed");
        mg_task_wake(t, 2);
    }
    close(w->fd);
    w->fd = -1;
    return 0;
}

/* _watch.hash(s) -> 16 hex digits (XXH3-64 of the bytes), a content version id  [-0, +1, -] */
static int l_hash(lua_State *L)
{
    size_t n;
    const char *s = luaL_checklstring(L, 1, &n);
    char hex[17];
    static const char digits[] = "0123456789abcdef";
    unsigned long long h = XXH3_64bits(s, n);
    for (int i = 15; i >= 0; i--, h >>= 4) hex[i] = digits[h & 15];
    lua_pushlstring(L, hex, 16);
    return 1;
}

MG_API int luaopen_moongate__watch(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"add", l_add}, {"next", l_next}, {"close", l_close}, {"__gc", l_close}, {NULL, NULL}};
    static const luaL_Reg funcs[] = {{"new", l_new}, {"hash", l_hash}, {NULL, NULL}};
    if (luaL_newmetatable(L, WATCH_MT)) {
        luaL_register(L, NULL, methods);
        lua_pushvalue(L, -1);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    lua_newtable(L);
    luaL_register(L, NULL, funcs);
    return 1;
}
