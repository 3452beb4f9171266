/* scheduler.h: the coroutine scheduler. Every request, timer task and background job is a task: a
 * Lua coroutine resumed from C by the libev loop when what it waits for happens. */
#ifndef MG_SCHEDULER_H
#define MG_SCHEDULER_H

#include <ev.h>
#include <lua.h>
#include "mg.h"

typedef struct mg_task mg_task;

/* What a task waits on. Embed it in your own struct; the scheduler calls cancel() when the
 * wait ends without your wake-up (timeout, deadline, task cancelled): after it returns, the
 * watcher must never call mg_task_wake for this wait. cancel may be NULL. */
typedef struct mg_wait {
    void (*cancel)(struct mg_wait *w);
    int sleep;   /* a plain sleep: reaching its own timeout is success (resumes with true) */
} mg_wait;

/* The worker's loop and main Lua state (one of each per process). */
extern struct ev_loop *mg_loop;
extern lua_State *mg_L;

void mg_sched_init(struct ev_loop *loop, lua_State *L);

/* The task whose coroutine is L, or NULL when L is not a task's thread. */
mg_task *mg_task_current(lua_State *L);
lua_State *mg_task_thread(mg_task *t);

/* Suspend the running task on w. Use as the tail of a lua_CFunction:
 *     return mg_task_wait(L, &my->wait, timeout);
 * timeout < 0 means none; the task's deadline applies either way. When the time runs out,
 * w->cancel(w) runs and the Lua caller gets nil, "timeout". If the deadline has already
 * passed it returns at once without yielding. */
int mg_task_wait(lua_State *L, mg_wait *w, double timeout);

/* Resume the task waiting on a wait with the nvals values the caller pushed onto
 * mg_task_thread(t); they become the results of the waiting Lua call. */
void mg_task_wake(mg_task *t, int nvals);

/* Create a task from the function and nargs arguments on top of L (popped). It starts on the
 * next loop iteration. Pushes the task handle (a userdata) onto L. Inherits the deadline and
 * context table of the task running in L, if any. */
mg_task *mg_task_spawn(lua_State *L, int nargs);

/* Called once when the task ends: ok = 1 returned (results on the handle), 0 raised or was
 * cancelled (err set). */
typedef void (*mg_task_exit_fn)(mg_task *t, int ok, const char *err, void *ud);
void mg_task_on_exit(mg_task *t, mg_task_exit_fn fn, void *ud);

void mg_task_cancel(mg_task *t);
void mg_task_set_deadline(mg_task *t, double at);  /* absolute, ev_time() clock; 0 = none */
double mg_task_deadline(mg_task *t);
/* Push the handle userdata of t onto L. */
void mg_task_push(lua_State *L, mg_task *t);
/* Cancel every live task (used when `moongate run`'s main chunk returns). */
void mg_sched_cancel_all(void);
int mg_sched_live_tasks(void);

#endif
