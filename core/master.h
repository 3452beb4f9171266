/* master.h: `--workers N`: a master process that forks N workers, restarts crashed ones,
 * and passes SIGTERM (drain) and SIGHUP (reload) on to them. */
#ifndef MG_MASTER_H
#define MG_MASTER_H

/* Fork n workers, each running worker_main(index, ud) and exiting with its return code.
 * Returns in the master only, with the exit code for the whole server. */
int mg_master_run(int n, int (*worker_main)(int index, void *ud), void *ud);

#endif
