/* runtime.c: creates a worker's LuaJIT state and libev loop, finds moongate's Lua modules,
 * and runs a CLI command as the main task until it returns. */
#define _GNU_SOURCE
#include "runtime.h"
#include "crypto.h"
#include "log.h"
#include "mg_config.h"
#include "scheduler.h"

#include <dlfcn.h>
#include <ev.h>
#include <lauxlib.h>
#include <limits.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

MG_API int mg_abi_version(void) { return MG_ABI_VERSION; }
MG_API const char *mg_version(void) { return MG_VERSION; }

MG_API const char *mg_home(void)
{
    static char home[PATH_MAX];
    if (home[0]) return home;
    const char *env = getenv("MOONGATE_HOME");
    if (env && *env) {
        snprintf(home, sizeof home, "%s", env);
        return home;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        size_t bl = strlen(MG_INSTALL_BINDIR);
        if (!strncmp(exe, MG_INSTALL_BINDIR "/", bl + 1) && !strchr(exe + bl + 1, '/')) {
            snprintf(home, sizeof home, "%s", MG_INSTALL_HOME);
            return home;
        }
    }
    snprintf(home, sizeof home, "%s", MG_SOURCE_HOME);
    return home;
}

/* package.loaders entry: `require "moongate._x"` finds luaopen_moongate__x exported by the
 * binary itself (or libmoongate), so C modules need no separate .so.   [-1, +1, -] */
static int search_exported(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    char sym[256] = "luaopen_";
    size_t n = strlen(sym);
    for (const char *p = name; *p && n < sizeof sym - 1; p++) sym[n++] = *p == '.' ? '_' : *p;
    sym[n] = 0;
    lua_CFunction f = (lua_CFunction)(uintptr_t)dlsym(RTLD_DEFAULT, sym);
    if (!f) {
        lua_pushfstring(L, "\n\tno symbol '%s' in the moongate binary", sym);
        return 1;
    }
    lua_pushcfunction(L, f);
    return 1;
}

static void set_paths(lua_State *L)
{
    const char *home = mg_home();
    lua_getglobal(L, "package");
    lua_pushfstring(L,
        "%s/lua/?.lua;%s/lua/?/init.lua;/usr/share/lua/5.1/?.lua;/usr/share/lua/5.1/?/init.lua;"
        "/usr/local/share/lua/5.1/?.lua;/usr/local/share/lua/5.1/?/init.lua;" MG_LUAJIT_SHARE "/?.lua",
        home, home);
    lua_setfield(L, -2, "path");
    lua_pushliteral(L, "/usr/lib/x86_64-linux-gnu/lua/5.1/?.so;/usr/local/lib/lua/5.1/?.so");
    lua_setfield(L, -2, "cpath");
    /* insert our searcher right after the preload one */
    lua_getfield(L, -1, "loaders");
    int n = (int)lua_objlen(L, -1);
    for (int i = n; i >= 2; i--) {
        lua_rawgeti(L, -1, i);
        lua_rawseti(L, -2, i + 1);
    }
    lua_pushcfunction(L, search_exported);
    lua_rawseti(L, -2, 2);
    lua_pop(L, 2);
}

/* math.random starts from this process's own seed: each worker opens its state after the fork,
 * so retry jitter, weighted routing, shadow and trace sampling do not draw in step across
 * workers or repeat from one start to the next. */
static void seed_random(lua_State *L)
{
    uint32_t s;
    if (mg_crypto_random(&s, sizeof s, NULL) != MG_OK) s = (uint32_t)time(NULL) ^ ((uint32_t)getpid() << 16);
    lua_getglobal(L, "math");
    lua_getfield(L, -1, "randomseed");
    lua_pushnumber(L, (lua_Number)s);
    lua_call(L, 1, 0);
    lua_pop(L, 1);
}

lua_State *mg_runtime_open(void)
{
    struct ev_loop *loop = ev_default_loop(EVFLAG_AUTO);
    lua_State *L = luaL_newstate();
    if (!loop || !L) {
        fprintf(stderr, "moongate: cannot create the event loop or the Lua state\n");
        exit(1);
    }
    luaL_openlibs(L);
    seed_random(L);
    set_paths(L);
    mg_sched_init(loop, L);
    lua_pushstring(L, mg_home());
    lua_setglobal(L, "MOONGATE_HOME");
    return L;
}

void mg_runtime_close(lua_State *L)
{
    lua_close(L);
}

static int exit_code;

void mg_runtime_exit(int code)
{
    exit_code = code;
    mg_sched_cancel_all();
    ev_break(mg_loop, EVBREAK_ALL);
}

static void main_exit(mg_task *t, int ok, const char *err, void *ud)
{
    int code = 1;
    if (ok) {
        lua_State *L = mg_L;
        mg_task_push(L, t);
        lua_getfield(L, -1, "wait");
        lua_pushvalue(L, -2);
        lua_call(L, 1, 1);
        code = lua_isnumber(L, -1) ? (int)lua_tointeger(L, -1) : (lua_toboolean(L, -1) || lua_isnil(L, -1) ? 0 : 1);
        lua_pop(L, 2);
    }
    mg_runtime_exit(code);
}

int mg_runtime_run_command(lua_State *L, const char *cmd, int argc, char **argv)
{
    /* main task: require("moongate.cli").main(cmd, {args...}) */
    lua_getglobal(L, "require");
    lua_pushliteral(L, "moongate.cli");
    if (lua_pcall(L, 1, 1, 0)) {
        fprintf(stderr, "moongate: %s\n", lua_tostring(L, -1));
        return 1;
    }
    lua_getfield(L, -1, "main");
    lua_remove(L, -2);
    lua_pushstring(L, cmd);
    lua_createtable(L, argc, 0);
    for (int i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i + 1);
    }
    mg_task *t = mg_task_spawn(L, 2);
    lua_pop(L, 1);
    mg_task_on_exit(t, main_exit, NULL);
    exit_code = 0;
    ev_run(mg_loop, 0);
    return exit_code;
}
