/* process.c: what a Lua task needs to know of its process: signals (SIGTERM drains, SIGHUP
 * reloads), the pid and the worker index. */
#define _GNU_SOURCE
#include "scheduler.h"

#include <lauxlib.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    ev_signal w;
    int fn_ref;
} sig_watch;

static const struct { const char *name; int sig; } signals[] = {
    {"TERM", SIGTERM}, {"INT", SIGINT}, {"HUP", SIGHUP}, {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {NULL, 0}};

static void signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    sig_watch *s = (sig_watch *)w;
    lua_rawgeti(mg_L, LUA_REGISTRYINDEX, s->fn_ref);
    lua_pushinteger(mg_L, w->signum);
    mg_task_spawn(mg_L, 1);
    lua_pop(mg_L, 1);
}

/* _process.on_signal(name, fn): run fn(signum) in a new task each time the signal arrives.
 * The watcher does not keep the loop alive.   [-0, +0, e] */
static int l_on_signal(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    int sig = 0;
    for (int i = 0; signals[i].name; i++)
        if (!strcmp(signals[i].name, name)) sig = signals[i].sig;
    if (!sig) return luaL_argerror(L, 1, "unknown signal (TERM, INT, HUP, USR1, USR2)");
    sig_watch *s = malloc(sizeof *s);   /* lives as long as the process */
    lua_pushvalue(L, 2);
    s->fn_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    ev_signal_init(&s->w, signal_cb, sig);
    ev_signal_start(mg_loop, &s->w);
    ev_unref(mg_loop);
    return 0;
}

/* _process.pid() -> integer   [-0, +1, -] */
static int l_pid(lua_State *L) { lua_pushinteger(L, getpid()); return 1; }

/* _process.worker() -> index of this worker (0-based)   [-0, +1, -] */
static int l_worker(lua_State *L)
{
    const char *w = getenv("MOONGATE_WORKER");
    lua_pushinteger(L, w ? atoi(w) : 0);
    return 1;
}

MG_API int luaopen_moongate__process(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        {"on_signal", l_on_signal}, {"pid", l_pid}, {"worker", l_worker}, {NULL, NULL}};
    lua_newtable(L);
    luaL_register(L, NULL, funcs);
    return 1;
}
