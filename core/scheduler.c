/* scheduler.c: tasks as Lua coroutines resumed from C by libev (OpenResty's cosocket model).
 * A waiting primitive arms its watcher and yields; its callback resumes the task. */
#define _GNU_SOURCE
#include "scheduler.h"
#include "log.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>

#define TASK_MT "moongate.task"

enum { T_READY, T_RUNNING, T_WAITING, T_DONE };

struct mg_task {
    int state;
    lua_State *co;
    int co_ref;       /* anchors the coroutine while the task lives */
    int self_ref;     /* anchors the handle while the task lives */
    int res_ref;      /* results table {n=, ...} once done */
    int ctx_ref;      /* the task's context table (request id, ...) shared with children */
    int defer_ref;    /* functions to call when the task ends, however it ends (moongate.defer) */
    int nresume;      /* values pushed on co for the next resume */
    double deadline;
    mg_wait *wait;
    int wait_sleep_ok;   /* the armed timer is the sleep's own end, not the deadline */
    ev_timer timer;
    mg_task *next_ready;
    mg_task *prev_live, *next_live;
    /* joining: this task waits for `target`; linked into target->joiners */
    struct { mg_wait w; mg_task *target; mg_task *next; } join;
    mg_task *joiners;
    mg_task_exit_fn on_exit;
    void *on_exit_ud;
    int ok;
    char *err;
};

struct ev_loop *mg_loop;
lua_State *mg_L;

static mg_task *ready_head, *ready_tail;
static mg_task *live_head;
static int live_count;
static mg_task *running;
static ev_prepare prepare_w;
static ev_check check_w;
static ev_idle idle_w;
static int threads_ref = LUA_NOREF;   /* weak table: coroutine -> handle */

static void task_resume(mg_task *t);

static void enqueue(mg_task *t)
{
    t->state = T_READY;
    t->next_ready = NULL;
    if (ready_tail) ready_tail->next_ready = t; else ready_head = t;
    ready_tail = t;
    ev_idle_start(mg_loop, &idle_w);   /* keeps the loop alive and its poll from blocking */
}

static void dequeue(mg_task *t)
{
    mg_task **p = &ready_head, *prev = NULL;
    while (*p && *p != t) { prev = *p; p = &(*p)->next_ready; }
    if (!*p) return;
    *p = t->next_ready;
    if (ready_tail == t) ready_tail = prev;
}

static void run_ready(void)
{
    /* Only the tasks queued so far: ones queued while draining wait for the next turn,
     * so a task that yields in a loop cannot starve I/O. */
    mg_task *last = ready_tail;
    while (ready_head) {
        mg_task *t = ready_head;
        ready_head = t->next_ready;
        if (!ready_head) ready_tail = NULL;
        task_resume(t);
        if (t == last) break;
    }
}

static void prepare_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
    if (!ready_head) ev_idle_stop(loop, &idle_w);
}

static void check_cb(struct ev_loop *loop, ev_check *w, int revents) { run_ready(); }
static void idle_cb(struct ev_loop *loop, ev_idle *w, int revents) {}   /* prepare_cb stops it */

static void unlink_live(mg_task *t)
{
    if (t->prev_live) t->prev_live->next_live = t->next_live; else live_head = t->next_live;
    if (t->next_live) t->next_live->prev_live = t->prev_live;
    t->prev_live = t->next_live = NULL;
    live_count--;
}

static void join_cancel(mg_wait *w)
{
    mg_task *self = (mg_task *)((char *)w - offsetof(mg_task, join.w));
    mg_task **p = &self->join.target->joiners;
    while (*p && *p != self) p = &(*p)->join.next;
    if (*p) *p = self->join.next;
    self->join.target = NULL;
}

/* Push a finished task's results onto L: its return values, or nil, err. */
static int push_results(lua_State *L, mg_task *t)
{
    if (!t->ok) {
        lua_pushnil(L);
        lua_pushstring(L, t->err ? t->err : "failed");
        return 2;
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->res_ref);
    lua_getfield(L, -1, "n");
    int n = (int)lua_tointeger(L, -1);
    lua_pop(L, 1);
    luaL_checkstack(L, n + 1, "too many results");
    for (int i = 1; i <= n; i++) lua_rawgeti(L, -i, i);
    lua_remove(L, -n - 1);
    return n;
}

/* The task's deferred functions, last registered first, each called as fn(ok, err), or
 * fn(arg, ok, err) when registered with an argument, on a fresh thread (the task's own coroutine
 * may be dead or mid-cancel); an error is logged, not raised. The list holds fn, arg pairs; NO_ARG
 * marks a function registered without one. */
static char no_arg_key, nil_arg_key;
#define NO_ARG ((void *)&no_arg_key)
#define NIL_ARG ((void *)&nil_arg_key)   /* a nil argument: nil cannot sit in the list */

static void run_deferred(mg_task *t)
{
    lua_State *L = mg_L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->defer_ref);     /* list */
    luaL_unref(L, LUA_REGISTRYINDEX, t->defer_ref);
    t->defer_ref = LUA_NOREF;
    int n = (int)lua_objlen(L, -1);
    lua_State *th = lua_newthread(L);                    /* list th */
    for (int i = n - 1; i >= 1; i -= 2) {
        lua_rawgeti(L, -2, i);
        lua_rawgeti(L, -3, i + 1);
        void *mark = lua_islightuserdata(L, -1) ? lua_touserdata(L, -1) : NULL;
        int with_arg = mark != NO_ARG;
        if (mark == NO_ARG || mark == NIL_ARG) lua_pop(L, 1);
        if (mark == NIL_ARG) lua_pushnil(L);
        lua_xmove(L, th, 1 + with_arg);
        lua_pushboolean(th, t->ok);
        if (t->err) lua_pushstring(th, t->err); else lua_pushnil(th);
        if (lua_pcall(th, 2 + with_arg, 0, 0) != 0) {
            const char *msg = lua_tostring(th, -1);
            mg_log_error_tb("deferred function raised", msg ? msg : "error", t->ctx_ref);
            lua_settop(th, 0);
        }
    }
    lua_pop(L, 2);
}

static void finish(mg_task *t, int ok, const char *err)
{
    lua_State *L = mg_L;
    ev_timer_stop(mg_loop, &t->timer);
    if (t->state == T_READY) dequeue(t);
    t->state = T_DONE;
    t->ok = ok;
    if (!ok) t->err = strdup(err ? err : "failed");
    if (ok) {
        /* results v1..vn on the coroutine's stack -> {n = n, v1, ..., vn} */
        lua_State *co = t->co;
        int n = lua_gettop(co);
        lua_createtable(co, n, 1);
        lua_insert(co, 1);
        for (int i = n; i >= 1; i--) lua_rawseti(co, 1, i);
        lua_pushinteger(co, n);
        lua_setfield(co, 1, "n");
        lua_xmove(co, L, 1);
        t->res_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, threads_ref);
    lua_pushthread(t->co);
    lua_xmove(t->co, L, 1);
    lua_pushnil(L);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    luaL_unref(L, LUA_REGISTRYINDEX, t->co_ref);
    t->co_ref = LUA_NOREF;
    t->co = NULL;
    unlink_live(t);
    if (t->defer_ref != LUA_NOREF) run_deferred(t);

    if (t->on_exit) t->on_exit(t, ok, t->err, t->on_exit_ud);

    mg_task *j = t->joiners;
    t->joiners = NULL;
    while (j) {
        mg_task *next = j->join.next;
        j->join.target = NULL;
        j->nresume = push_results(j->co, t);
        j->wait = NULL;
        ev_timer_stop(mg_loop, &j->timer);
        enqueue(j);
        j = next;
    }
    int self = t->self_ref;
    t->self_ref = LUA_NOREF;
    luaL_unref(L, LUA_REGISTRYINDEX, self);   /* may make the handle collectable */
}

static void task_resume(mg_task *t)
{
    lua_State *co = t->co;
    int nargs = t->nresume;
    t->nresume = 0;
    t->state = T_RUNNING;
    t->wait = NULL;
    mg_task *prev = running;
    running = t;
    int rc = lua_resume(co, nargs);
    running = prev;
    if (rc == LUA_YIELD) {
        if (t->state == T_RUNNING) {
            /* A bare coroutine.yield() from the task body: run again on the next turn. */
            lua_settop(co, 0);
            enqueue(t);
        }
        return;
    }
    if (rc == 0) {
        finish(t, 1, NULL);
        return;
    }
    const char *msg = lua_tostring(co, -1);
    luaL_traceback(mg_L, co, msg ? msg : "(error object is not a string)", 0);
    const char *tb = lua_tostring(mg_L, -1);
    /* The message alone goes to joiners; the traceback to the log. */
    mg_log_error_tb(msg ? msg : "error", tb, t->ctx_ref);
    lua_pop(mg_L, 1);
    finish(t, 0, msg ? msg : "error");
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    mg_task *t = (mg_task *)((char *)w - offsetof(mg_task, timer));
    if (t->state != T_WAITING) return;
    mg_wait *wait = t->wait;
    int slept = t->wait_sleep_ok;
    t->wait = NULL;
    if (wait && wait->cancel) wait->cancel(wait);
    if (slept) {
        lua_pushboolean(t->co, 1);
        t->nresume = 1;
    } else {
        lua_pushnil(t->co);
        lua_pushliteral(t->co, "timeout");
        t->nresume = 2;
    }
    if (running) enqueue(t); else task_resume(t);
}

mg_task *mg_task_current(lua_State *L)
{
    if (running && running->co == L) return running;
    lua_rawgeti(L, LUA_REGISTRYINDEX, threads_ref);
    lua_pushthread(L);
    lua_rawget(L, -2);
    mg_task *t = lua_touserdata(L, -1);
    lua_pop(L, 2);
    return t;
}

lua_State *mg_task_thread(mg_task *t) { return t->co; }

int mg_task_wait(lua_State *L, mg_wait *w, double timeout)
{
    mg_task *t = mg_task_current(L);
    if (!t) return luaL_error(L, "not in a task: waiting works only inside moongate tasks");
    double left = -1;
    int sleep_ok = w->sleep;
    if (t->deadline > 0) {
        left = t->deadline - ev_time();
        if (timeout >= 0 && timeout <= left) left = timeout;
        else sleep_ok = 0;
    } else {
        left = timeout;
    }
    if (left >= 0 && left <= 0 && !(w->sleep && sleep_ok)) {
        if (w->cancel) w->cancel(w);
        lua_pushnil(L);
        lua_pushliteral(L, "timeout");
        return 2;
    }
    t->wait = w;
    t->wait_sleep_ok = sleep_ok;
    t->state = T_WAITING;
    if (left >= 0) {
        /* The loop's cached time is stale after a stretch of CPU work in Lua: refresh it, or
         * the timer would fire early by that stretch. */
        ev_now_update(mg_loop);
        ev_timer_set(&t->timer, left, 0.);
        ev_timer_start(mg_loop, &t->timer);
    }
    return lua_yield(L, 0);
}

void mg_task_wake(mg_task *t, int nvals)
{
    if (t->state != T_WAITING) { lua_pop(t->co, nvals); return; }
    ev_timer_stop(mg_loop, &t->timer);
    t->wait = NULL;
    t->nresume = nvals;
    if (running) enqueue(t); else task_resume(t);
}

static mg_task *check_task(lua_State *L, int idx)
{
    return luaL_checkudata(L, idx, TASK_MT);
}

mg_task *mg_task_spawn(lua_State *L, int nargs)
{
    luaL_checktype(L, -nargs - 1, LUA_TFUNCTION);
    mg_task *parent = mg_task_current(L);
    lua_State *co = lua_newthread(L);                 /* fn args... co */
    int co_ref = luaL_ref(L, LUA_REGISTRYINDEX);       /* fn args... */
    lua_xmove(L, co, nargs + 1);

    mg_task *t = lua_newuserdata(L, sizeof *t);
    memset(t, 0, sizeof *t);
    luaL_getmetatable(L, TASK_MT);
    lua_setmetatable(L, -2);
    t->co = co;
    t->co_ref = co_ref;
    t->res_ref = LUA_NOREF;
    t->ctx_ref = LUA_NOREF;
    t->defer_ref = LUA_NOREF;
    t->nresume = nargs;
    ev_init(&t->timer, timer_cb);
    lua_pushvalue(L, -1);
    t->self_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    if (parent) {
        t->deadline = parent->deadline;
        if (parent->ctx_ref != LUA_NOREF) {
            lua_rawgeti(L, LUA_REGISTRYINDEX, parent->ctx_ref);
            t->ctx_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        }
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, threads_ref);
    lua_pushthread(co);
    lua_xmove(co, L, 1);
    lua_pushlightuserdata(L, t);
    lua_rawset(L, -3);
    lua_pop(L, 1);

    t->next_live = live_head;
    if (live_head) live_head->prev_live = t;
    live_head = t;
    live_count++;
    enqueue(t);
    return t;
}

void mg_task_on_exit(mg_task *t, mg_task_exit_fn fn, void *ud) { t->on_exit = fn; t->on_exit_ud = ud; }

void mg_task_cancel(mg_task *t)
{
    if (t->state == T_DONE || t->state == T_RUNNING) return;
    if (t->state == T_WAITING && t->wait) {
        mg_wait *w = t->wait;
        t->wait = NULL;
        if (w->cancel) w->cancel(w);
    }
    if (t->co) lua_settop(t->co, 0);
    finish(t, 0, "cancelled");
}

void mg_task_set_deadline(mg_task *t, double at) { t->deadline = at; }
double mg_task_deadline(mg_task *t) { return t->deadline; }

void mg_task_push(lua_State *L, mg_task *t)
{
    if (t->self_ref != LUA_NOREF) lua_rawgeti(L, LUA_REGISTRYINDEX, t->self_ref);
    else lua_pushnil(L);
}

void mg_sched_cancel_all(void)
{
    for (;;) {
        mg_task *t = live_head;
        while (t && t->state == T_RUNNING) t = t->next_live;   /* the caller cannot cancel itself */
        if (!t) break;
        mg_task_cancel(t);
    }
}

int mg_sched_live_tasks(void) { return live_count; }

/* ---- Lua API --------------------------------------------------------------------------- */

/* moongate.spawn(fn, ...) -> handle   [-(n), +1, e] */
static int l_spawn(lua_State *L)
{
    int n = lua_gettop(L);
    luaL_checktype(L, 1, LUA_TFUNCTION);
    mg_task_spawn(L, n - 1);
    return 1;
}

/* handle:wait([timeout]) -> results... | nil, "timeout" | nil, err   [-0, +n, e] */
static int l_task_wait(lua_State *L)
{
    mg_task *t = check_task(L, 1);
    double timeout = luaL_optnumber(L, 2, -1);
    mg_task *self = mg_task_current(L);
    if (t->state == T_DONE) return push_results(L, t);
    if (!self) return luaL_error(L, "not in a task");
    if (self == t) return luaL_error(L, "a task cannot wait for itself");
    self->join.w.cancel = join_cancel;
    self->join.w.sleep = 0;
    self->join.target = t;
    self->join.next = t->joiners;
    t->joiners = self;
    return mg_task_wait(L, &self->join.w, timeout);
}

/* handle:cancel() -> true | nil, "running" | nil, "done"   [-0, +1..2, -] */
static int l_task_cancel(lua_State *L)
{
    mg_task *t = check_task(L, 1);
    if (t->state == T_DONE) { lua_pushnil(L); lua_pushliteral(L, "done"); return 2; }
    if (t->state == T_RUNNING) { lua_pushnil(L); lua_pushliteral(L, "running"); return 2; }
    mg_task_cancel(t);
    lua_pushboolean(L, 1);
    return 1;
}

/* handle:status() -> "ready" | "running" | "waiting" | "done"   [-0, +1, -] */
static int l_task_status(lua_State *L)
{
    static const char *names[] = {"ready", "running", "waiting", "done"};
    lua_pushstring(L, names[check_task(L, 1)->state]);
    return 1;
}

static int l_task_gc(lua_State *L)
{
    mg_task *t = check_task(L, 1);
    if (t->res_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, t->res_ref);
    if (t->ctx_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, t->ctx_ref);
    t->res_ref = t->ctx_ref = LUA_NOREF;
    free(t->err);
    t->err = NULL;
    return 0;
}

/* moongate.sleep(seconds) -> true | nil, "timeout" (the deadline came first)   [-0, +1..2, y] */
static int l_sleep(lua_State *L)
{
    double s = luaL_checknumber(L, 1);
    if (s < 0) s = 0;
    mg_task *t = mg_task_current(L);
    if (!t) return luaL_error(L, "not in a task: waiting works only inside moongate tasks");
    /* The wait lives in the task's join slot: a task waits on one thing at a time. */
    t->join.w.cancel = NULL;
    t->join.w.sleep = 1;
    return mg_task_wait(L, &t->join.w, s);
}

/* moongate.yield(): let other ready tasks and I/O run, then continue   [-0, +0, y] */
static int l_yield(lua_State *L)
{
    if (!mg_task_current(L)) return luaL_error(L, "not in a task");
    return lua_yield(L, 0);
}

/* moongate.now() -> seconds since the epoch, sub-microsecond float   [-0, +1, -] */
static int l_now(lua_State *L) { lua_pushnumber(L, ev_time()); return 1; }

/* moongate.deadline() -> absolute deadline of the running task, or nil   [-0, +1, -] */
static int l_deadline(lua_State *L)
{
    mg_task *t = mg_task_current(L);
    if (!t || t->deadline <= 0) lua_pushnil(L); else lua_pushnumber(L, t->deadline);
    return 1;
}

/* moongate.set_deadline(at | nil): at is absolute (moongate.now() + budget); a task may only
 * shorten its deadline, never extend a deadline it inherited.   [-0, +1, e] */
static int l_set_deadline(lua_State *L)
{
    mg_task *t = mg_task_current(L);
    if (!t) return luaL_error(L, "not in a task");
    double at = luaL_optnumber(L, 1, 0);
    if (at > 0 && (t->deadline <= 0 || at < t->deadline)) t->deadline = at;
    lua_pushnumber(L, t->deadline);
    return 1;
}

/* moongate.current() -> handle of the running task, or nil   [-0, +1, -] */
static int l_current(lua_State *L)
{
    mg_task *t = mg_task_current(L);
    if (t) mg_task_push(L, t); else lua_pushnil(L);
    return 1;
}

/* moongate.context() -> the running task's context table (created on first use, shared with
 * the tasks it spawns afterwards), or nil outside a task   [-0, +1, -] */
static int l_context(lua_State *L)
{
    mg_task *t = mg_task_current(L);
    if (!t) { lua_pushnil(L); return 1; }
    if (t->ctx_ref == LUA_NOREF) {
        lua_newtable(L);
        lua_pushvalue(L, -1);
        t->ctx_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        return 1;
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, t->ctx_ref);
    return 1;
}

/* moongate.defer(fn [, arg]): fn(ok, err), or fn(arg, ok, err) when arg is given, runs when the
 * running task ends, however it ends (returned, raised, cancelled at its deadline or because the
 * client left). It must not yield: to wait for something, spawn a task from it. The argument
 * spares a hot path the closure it would otherwise create per task.   [-0, +0, e] */
static int l_defer(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    int with_arg = lua_gettop(L) >= 2;
    mg_task *t = mg_task_current(L);
    if (!t) return luaL_error(L, "not in a task");
    if (t->defer_ref == LUA_NOREF) {
        lua_newtable(L);
        lua_pushvalue(L, -1);
        t->defer_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    } else {
        lua_rawgeti(L, LUA_REGISTRYINDEX, t->defer_ref);
    }
    int n = (int)lua_objlen(L, -1);
    lua_pushvalue(L, 1);
    lua_rawseti(L, -2, n + 1);
    if (!with_arg) lua_pushlightuserdata(L, NO_ARG);
    else if (lua_isnil(L, 2)) lua_pushlightuserdata(L, NIL_ARG);
    else lua_pushvalue(L, 2);
    lua_rawseti(L, -2, n + 2);
    return 0;
}

/* moongate.live_tasks() -> count, for leak checks in tests   [-0, +1, -] */
static int l_live_tasks(lua_State *L) { lua_pushinteger(L, live_count); return 1; }

MG_API int luaopen_moongate__sched(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        {"spawn", l_spawn}, {"sleep", l_sleep}, {"yield", l_yield}, {"now", l_now},
        {"deadline", l_deadline}, {"set_deadline", l_set_deadline}, {"current", l_current},
        {"context", l_context}, {"defer", l_defer}, {"live_tasks", l_live_tasks}, {NULL, NULL}};
    lua_newtable(L);
    luaL_register(L, NULL, funcs);
    return 1;
}

void mg_sched_init(struct ev_loop *loop, lua_State *L)
{
    mg_loop = loop;
    mg_L = L;
    luaL_newmetatable(L, TASK_MT);
    lua_pushvalue(L, -1);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_task_gc);
    lua_setfield(L, -2, "__gc");
    static const luaL_Reg task_methods[] = {
        {"wait", l_task_wait}, {"cancel", l_task_cancel}, {"status", l_task_status}, {NULL, NULL}};
    luaL_register(L, NULL, task_methods);
    lua_pop(L, 1);

    lua_newtable(L);
    lua_newtable(L);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    threads_ref = luaL_ref(L, LUA_REGISTRYINDEX);

    ev_prepare_init(&prepare_w, prepare_cb);
    ev_prepare_start(loop, &prepare_w);
    ev_unref(loop);
    ev_check_init(&check_w, check_cb);
    ev_check_start(loop, &check_w);
    ev_unref(loop);
    ev_idle_init(&idle_w, idle_cb);
}
