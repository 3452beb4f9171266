/* master.c: the supervisor of `moongate serve --workers N`. Workers bind the port themselves
 * (SO_REUSEPORT); the master only forks, restarts and forwards signals. */
#define _GNU_SOURCE
#include "master.h"
#include "log.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t got_term, got_hup;
static void on_term(int sig) { got_term = 1; }
static void on_hup(int sig) { got_hup = 1; }

static pid_t spawn_worker(int i, int (*worker_main)(int, void *), void *ud)
{
    pid_t pid = fork();
    if (pid == 0) {
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        _exit(worker_main(i, ud));
    }
    return pid;
}

int mg_master_run(int n, int (*worker_main)(int, void *), void *ud)
{
    pid_t *pids = calloc(n, sizeof *pids);
    time_t *started = calloc(n, sizeof *started);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_hup;
    sigaction(SIGHUP, &sa, NULL);

    for (int i = 0; i < n; i++) {
        pids[i] = spawn_worker(i, worker_main, ud);
        started[i] = time(NULL);
    }
    int alive = n, code = 0, forwarded_term = 0;
    while (alive > 0) {
        if (got_term && !forwarded_term) {
            forwarded_term = 1;
            for (int i = 0; i < n; i++) if (pids[i] > 0) kill(pids[i], SIGTERM);
        }
        if (got_hup) {
            got_hup = 0;
            for (int i = 0; i < n; i++) if (pids[i] > 0) kill(pids[i], SIGHUP);
        }
        int status;
        pid_t pid = waitpid(-1, &status, 0);
        if (pid < 0) {
            if (errno == EINTR) continue;
            break;
        }
        int i = 0;
        while (i < n && pids[i] != pid) i++;
        if (i == n) continue;
        pids[i] = 0;
        alive--;
        int failed = !WIFEXITED(status) || WEXITSTATUS(status) != 0;
        if (!failed || got_term) {
            if (failed) code = 1;
            continue;
        }
        /* A worker that dies within a second of starting is failing to start (bad config,
         * port taken): restarting it would spin. Stop the server instead. */
        if (time(NULL) - started[i] < 1) {
            mg_log("error", "worker %d failed at start (status %d); stopping", i, status);
            code = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
            got_term = 1;
            continue;
        }
        mg_log("error", "worker %d (pid %d) died (status %d); restarting", i, (int)pid, status);
        pids[i] = spawn_worker(i, worker_main, ud);
        started[i] = time(NULL);
        alive++;
    }
    free(pids);
    free(started);
    return code;
}
