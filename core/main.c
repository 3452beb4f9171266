/* main.c: the moongate command line. `version` and the process model of `serve` are C;
 * every other command is lua/moongate/cli/<cmd>.lua run as the main task. */
#define _GNU_SOURCE
#include "master.h"
#include "mg.h"
#include "mg_config.h"
#include "runtime.h"

#include <curl/curl.h>
#include <luajit.h>
#include <malloc.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Provided by core/shdict.c: maps the cross-worker store before the fork. */
extern int mg_shdict_init(size_t bytes) __attribute__((weak));

static const char *usage =
    "usage: moongate <command> [options]\n"
    "\n"
    "commands:\n"
    "  serve [--listen HOST:PORT] [--workers N] [CONFIG.lua]   run the HTTP server\n"
    "  run SCRIPT.lua [ARGS]        run a Lua script inside the runtime\n"
    "  test [PATHS]                 run busted specs inside the runtime\n"
    "  mock [--listen HOST:PORT]    an OpenAI-compatible fake LLM for offline work and tests\n"
    "  tokens [--encoding E] [FILE...]   count tokens like tiktoken\n"
    "  index [--index DIR] PATH...  build a retrieval index\n"
    "  search --index DIR QUERY     query a retrieval index\n"
    "  tenants | keys | flags       manage tenants, API keys; show a flags file\n"
    "  traces [show ID]             recent requests and their span waterfalls\n"
    "  stats [--since 1h]           p50/p95/p99 per step and per model\n"
    "  eval GOLDEN.jsonl [--pipeline P] [--against B]   score a pipeline on a golden set, gate on regressions\n"
    "  goldens | feedback           propose golden cases from an index; export rated answers\n"
    "  releases status CONFIG       canary releases: what is live, at what share, since when\n"
    "  version                      print the version\n"
    "\n"
    "`moongate <command> --help` tells more.\n";

struct serve_args { int argc; char **argv; };

static int worker_main(int index, void *ud)
{
    struct serve_args *a = ud;
    char idx[16];
    snprintf(idx, sizeof idx, "%d", index);
    setenv("MOONGATE_WORKER", idx, 1);
    lua_State *L = mg_runtime_open();
    int code = mg_runtime_run_command(L, "serve", a->argc, a->argv);
    mg_runtime_close(L);
    return code;
}

static int serve(int argc, char **argv)
{
    int workers = 1;
    size_t shared_mb = 64;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--workers") && i + 1 < argc) workers = atoi(argv[i + 1]);
        else if (!strncmp(argv[i], "--workers=", 10)) workers = atoi(argv[i] + 10);
        else if (!strcmp(argv[i], "--shared-mb") && i + 1 < argc) shared_mb = (size_t)atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) workers = 1;
    }
    if (workers < 1 || workers > 256) {
        fprintf(stderr, "moongate serve: --workers must be between 1 and 256\n");
        return 2;
    }
    if (mg_shdict_init && mg_shdict_init(shared_mb << 20) != MG_OK) {
        fprintf(stderr, "moongate serve: cannot map the shared store (%zu MiB)\n", shared_mb);
        return 1;
    }
    struct serve_args a = {argc, argv};
    if (workers == 1) return worker_main(0, &a);
    return mg_master_run(workers, worker_main, &a);
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        if (argc > 2 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
            puts("usage: moongate version\nPrints moongate's version and those of its libraries.");
            return 0;
        }
        printf("moongate %s (%s, libcurl %s, sqlite %s)\n", MG_VERSION, LUAJIT_VERSION,
               curl_version_info(CURLVERSION_NOW)->version, sqlite3_libversion());
        return 0;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
#ifdef M_TRIM_THRESHOLD
    /* Each proxied request frees as much as it took (curl's buffers, bodies): with glibc's
     * default threshold the heap's top is given back and taken again with brk() and page faults
     * on every call. Keep up to 4 MB of free top instead (a bounded cost in resident memory). */
    mallopt(M_TRIM_THRESHOLD, 4 << 20);
    mallopt(M_TOP_PAD, 512 << 10);
#endif
    if (!strcmp(cmd, "serve")) return serve(argc - 2, argv + 2);
    lua_State *L = mg_runtime_open();
    int code = mg_runtime_run_command(L, cmd, argc - 2, argv + 2);
    mg_runtime_close(L);
    return code;
}
