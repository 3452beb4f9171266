/* test_shdict.c: the cross-worker store: values and TTLs, LRU eviction and the buddy allocator's
 * merging, and 4 forked processes incrementing one counter concurrently without losing updates. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shdict.h"

static int failures;

#define CHECK(cond, ...)                                                                                    \
    do {                                                                                                    \
        if (!(cond)) {                                                                                      \
            fprintf(stderr, "%s:%d: FAIL %s: ", __FILE__, __LINE__, #cond);                               \
            fprintf(stderr, __VA_ARGS__);                                                                   \
            fputc('\n', stderr);                                                                            \
            failures++;                                                                                     \
        }                                                                                                   \
    } while (0)

static int set_num(int d, const char *k, double v, double ttl) {
    return mg_shdict_set(d, k, strlen(k), MG_SHDICT_NUMBER, v, NULL, 0, ttl, MG_SHDICT_SET, NULL);
}

static int set_str(int d, const char *k, const char *v, size_t vlen, double ttl, int mode, const char **err) {
    return mg_shdict_set(d, k, strlen(k), MG_SHDICT_STRING, 0, v, vlen, ttl, mode, err);
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void test_basics(void) {
    int d = mg_shdict_open("t", 1), other = mg_shdict_open("other", 5);
    CHECK(d >= 0 && other >= 0 && d != other, "ids %d %d", d, other);
    CHECK(mg_shdict_open("t", 1) == d, "same name, same id");
    CHECK(mg_shdict_open("", 0) == MG_ERROR, "empty name");

    mg_shdict_value v;
    char buf[64];
    CHECK(mg_shdict_get(d, "x", 1, &v, buf, sizeof buf) == MG_DECLINED, "absent");
    CHECK(set_num(d, "x", 1.5, 0) == MG_OK, "set");
    CHECK(mg_shdict_get(d, "x", 1, &v, buf, sizeof buf) == MG_OK && v.type == MG_SHDICT_NUMBER && v.num == 1.5,
          "get number");
    CHECK(mg_shdict_get(other, "x", 1, &v, buf, sizeof buf) == MG_DECLINED, "dicts are separate");

    const char *err = NULL;
    CHECK(set_str(d, "s", "a\0b", 3, 0, MG_SHDICT_SET, &err) == MG_OK, "set string");
    CHECK(mg_shdict_get(d, "s", 1, &v, buf, sizeof buf) == MG_OK && v.type == MG_SHDICT_STRING && v.len == 3 &&
              memcmp(buf, "a\0b", 3) == 0,
          "get string with a zero byte");
    CHECK(mg_shdict_get(d, "s", 1, &v, buf, 2) == MG_AGAIN && v.len == 3, "small buffer asks again");
    CHECK(set_str(d, "s", "zz", 2, 0, MG_SHDICT_ADD, &err) == MG_DECLINED && !strcmp(err, "exists"), "add existing");
    CHECK(set_str(d, "new", "zz", 2, 0, MG_SHDICT_REPLACE, &err) == MG_DECLINED && !strcmp(err, "not found"),
          "replace absent");

    double out = 0;
    CHECK(mg_shdict_incr(d, "c", 1, 1, 0, 0, 0, &out, &err) == MG_DECLINED, "incr absent without init");
    CHECK(mg_shdict_incr(d, "c", 1, 2, 1, 10, 0, &out, &err) == MG_OK && out == 12, "incr with init: %g", out);
    CHECK(mg_shdict_incr(d, "c", 1, -0.5, 1, 10, 0, &out, &err) == MG_OK && out == 11.5, "incr: %g", out);
    CHECK(mg_shdict_incr(d, "s", 1, 1, 1, 0, 0, &out, &err) == MG_ERROR && !strcmp(err, "not a number"),
          "incr a string");

    CHECK(mg_shdict_delete(d, "c", 1) == MG_OK, "delete");
    CHECK(mg_shdict_delete(d, "c", 1) == MG_DECLINED, "delete twice");

    size_t used, count;
    char kb[256];
    set_num(d, "user:1", 1, 0);
    set_num(d, "user:2", 2, 0);
    set_num(other, "user:3", 3, 0);
    CHECK(mg_shdict_keys(d, "user:", 5, kb, sizeof kb, &used, &count) == MG_OK && count == 2 && used == 2 * (4 + 6),
          "keys by prefix: %zu %zu", count, used);
    CHECK(mg_shdict_keys(d, "user:", 5, kb, 5, &used, &count) == MG_AGAIN && used == 20, "keys: small buffer");
    CHECK(mg_shdict_flush(other) == MG_OK, "flush");
    CHECK(mg_shdict_keys(other, "", 0, kb, sizeof kb, &used, &count) == MG_OK && count == 0, "flushed");
    CHECK(mg_shdict_keys(d, "", 0, kb, sizeof kb, &used, &count) == MG_OK && count == 4, "other dict untouched: %zu",
          count);
}

static void test_ttl(void) {
    int d = mg_shdict_open("ttl", 3);
    mg_shdict_value v;
    char buf[8];
    double ttl = -1;
    set_num(d, "k", 7, 0.05);
    set_num(d, "forever", 1, 0);
    CHECK(mg_shdict_ttl(d, "k", 1, &ttl) == MG_OK && ttl > 0.03 && ttl <= 0.05, "ttl %g", ttl);
    CHECK(mg_shdict_ttl(d, "forever", 7, &ttl) == MG_OK && ttl == 0, "no expiry: %g", ttl);
    CHECK(mg_shdict_get(d, "k", 1, &v, buf, sizeof buf) == MG_OK, "alive");
    sleep_ms(70);
    CHECK(mg_shdict_get(d, "k", 1, &v, buf, sizeof buf) == MG_DECLINED, "expired");
    CHECK(mg_shdict_ttl(d, "k", 1, &ttl) == MG_DECLINED, "expired ttl");
    CHECK(mg_shdict_expire(d, "forever", 7, 0.02) == MG_OK, "expire");
    sleep_ms(40);
    CHECK(mg_shdict_get(d, "forever", 7, &v, buf, sizeof buf) == MG_DECLINED, "expired after expire()");
    /* add succeeds over an expired key */
    set_num(d, "a", 1, 0.01);
    sleep_ms(20);
    CHECK(mg_shdict_set(d, "a", 1, MG_SHDICT_NUMBER, 2, NULL, 0, 0, MG_SHDICT_ADD, NULL) == MG_OK, "add over expired");
}

static void test_eviction(void) {
    int d = mg_shdict_open("lru", 3);
    size_t cap, free0, free1, entries;
    uint64_t ev0, ev1;
    mg_shdict_stats(&cap, &free0, &entries, &ev0);
    /* Write 4x the capacity in 1 KiB values: old keys are evicted, recent ones stay. */
    char val[1000];
    memset(val, 'v', sizeof val);
    int n = (int)(cap / 1000) * 4;
    char key[32];
    for (int i = 0; i < n; i++) {
        snprintf(key, sizeof key, "k%d", i);
        const char *err = NULL;
        if (set_str(d, key, val, sizeof val, 0, MG_SHDICT_SET, &err) != MG_OK) {
            CHECK(0, "set %d failed: %s", i, err);
            break;
        }
        if (i % 50 == 0) { /* keep k0 hot: touched every so often, it survives */
            mg_shdict_value v;
            char b[1000];
            mg_shdict_get(d, "k0", 2, &v, b, sizeof b);
        }
    }
    mg_shdict_stats(&cap, &free1, &entries, &ev1);
    CHECK(ev1 > ev0, "evicted some");
    mg_shdict_value v;
    char b[1000];
    CHECK(mg_shdict_get(d, "k1", 2, &v, b, sizeof b) == MG_DECLINED, "cold key evicted");
    CHECK(mg_shdict_get(d, "k0", 2, &v, b, sizeof b) == MG_OK, "hot key kept");
    snprintf(key, sizeof key, "k%d", n - 1);
    CHECK(mg_shdict_get(d, key, strlen(key), &v, b, sizeof b) == MG_OK, "newest kept");

    /* After a flush every block merges back: one value of half the arena fits. */
    mg_shdict_flush(d);
    mg_shdict_flush(mg_shdict_open("t", 1));
    mg_shdict_flush(mg_shdict_open("ttl", 3));
    mg_shdict_stats(&cap, &free1, &entries, &ev1);
    CHECK(entries == 0 && free1 == cap, "all free again: %zu of %zu, %zu entries", free1, cap, entries);
    size_t big = cap / 2 - 4096;
    char *bv = malloc(big);
    memset(bv, 'b', big);
    const char *err = NULL;
    CHECK(set_str(d, "big", bv, big, 0, MG_SHDICT_SET, &err) == MG_OK, "big value after merge: %s", err ? err : "");
    free(bv);
    bv = malloc(cap + 1);
    memset(bv, 'h', cap + 1);
    CHECK(set_str(d, "toolarge", bv, cap + 1, 0, MG_SHDICT_SET, &err) == MG_ERROR && !strcmp(err, "value too large"),
          "too large");
    free(bv);
    mg_shdict_flush(d);
}

/* 4 processes x 20000 increments of one key, plus a per-process key each: no update lost. */
static void test_fork_incr(void) {
    enum { PROCS = 4, ITERS = 20000 };
    int d = mg_shdict_open("counters", 8);
    pid_t pids[PROCS];
    for (int p = 0; p < PROCS; p++) {
        pids[p] = fork();
        if (pids[p] == 0) {
            int dd = mg_shdict_open("counters", 8); /* same id in the child */
            char own[16];
            snprintf(own, sizeof own, "p%d", p);
            double out;
            for (int i = 0; i < ITERS; i++) {
                if (mg_shdict_incr(dd, "hits", 4, 1, 1, 0, 0, &out, NULL) != MG_OK) _exit(2);
                if (mg_shdict_incr(dd, own, strlen(own), 1, 1, 0, 0, &out, NULL) != MG_OK) _exit(3);
            }
            _exit(dd == d ? 0 : 4);
        }
    }
    for (int p = 0; p < PROCS; p++) {
        int status = 0;
        waitpid(pids[p], &status, 0);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d status %d", p, status);
    }
    mg_shdict_value v;
    char b[8];
    CHECK(mg_shdict_get(d, "hits", 4, &v, b, sizeof b) == MG_OK && v.num == PROCS * ITERS, "hits = %g, want %d",
          v.num, PROCS * ITERS);
    for (int p = 0; p < PROCS; p++) {
        char own[16];
        snprintf(own, sizeof own, "p%d", p);
        CHECK(mg_shdict_get(d, own, strlen(own), &v, b, sizeof b) == MG_OK && v.num == ITERS, "%s = %g", own, v.num);
    }
}

/* A process killed while holding the lock must not wedge the others (robust mutex). */
static void test_dead_owner(void) {
    int d = mg_shdict_open("counters", 8);
    int pipefd[2];
    if (pipe(pipefd) != 0) return;
    pid_t pid = fork();
    if (pid == 0) {
        /* Hammer the store until killed: sooner or later SIGKILL lands inside the lock. */
        double out;
        if (write(pipefd[1], "x", 1) != 1) _exit(1);
        for (;;) mg_shdict_incr(d, "victim", 6, 1, 1, 0, 0, &out, NULL);
    }
    char c;
    if (read(pipefd[0], &c, 1) != 1) return;
    sleep_ms(20);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    double out = 0;
    CHECK(mg_shdict_incr(d, "after", 5, 1, 1, 0, 0, &out, NULL) == MG_OK && out == 1, "store usable after a kill");
    close(pipefd[0]);
    close(pipefd[1]);
}


/* Random operations against a model (no eviction: the data stays well below capacity), then
 * 3 processes doing random operations with eviction; afterwards every block must merge back. */
static unsigned rnd_state = 12345;
static unsigned rnd(void) {
    rnd_state = rnd_state * 1103515245u + 12345u;
    return (rnd_state >> 8) & 0xffffff;
}

static void test_random_model(void) {
    enum { KEYS = 200 };
    int d = mg_shdict_open("model", 5);
    static char model[KEYS][600];
    static int mlen[KEYS]; /* -1 absent */
    for (int i = 0; i < KEYS; i++) mlen[i] = -1;
    uint64_t ev0, ev1;
    size_t cap, fr, ent;
    mg_shdict_stats(&cap, &fr, &ent, &ev0);
    char key[16], val[600], out[600];
    for (int it = 0; it < 100000; it++) {
        int k = (int)(rnd() % KEYS), op = (int)(rnd() % 4);
        snprintf(key, sizeof key, "m%d", k);
        if (op == 0) {
            int len = (int)(rnd() % 600);
            for (int i = 0; i < len; i++) val[i] = (char)('a' + (it + i) % 26);
            if (set_str(d, key, val, (size_t)len, 0, MG_SHDICT_SET, NULL) == MG_OK) {
                memcpy(model[k], val, (size_t)len);
                mlen[k] = len;
            }
        } else if (op == 1) {
            mg_shdict_delete(d, key, strlen(key));
            mlen[k] = -1;
        } else {
            mg_shdict_value v;
            int rc = mg_shdict_get(d, key, strlen(key), &v, out, sizeof out);
            if (mlen[k] < 0) CHECK(rc == MG_DECLINED, "key %s should be absent", key);
            else
                CHECK(rc == MG_OK && (int)v.len == mlen[k] && memcmp(out, model[k], v.len) == 0, "key %s differs",
                      key);
        }
    }
    mg_shdict_stats(&cap, &fr, &ent, &ev1);
    CHECK(ev1 == ev0, "no eviction expected in the model test");
    mg_shdict_flush(d);
}

static void test_random_procs(void) {
    int d = mg_shdict_open("chaos", 5);
    pid_t pids[3];
    for (int p = 0; p < 3; p++) {
        pids[p] = fork();
        if (pids[p] == 0) {
            rnd_state = 777u + (unsigned)p;
            char key[16], val[9000], out[9000];
            memset(val, 'x', sizeof val);
            for (int it = 0; it < 30000; it++) {
                snprintf(key, sizeof key, "c%u", rnd() % 500);
                unsigned op = rnd() % 6;
                if (op < 2) set_str(d, key, val, rnd() % (op ? 9000 : 100), (rnd() % 3) ? 0 : 0.001, MG_SHDICT_SET, NULL);
                else if (op == 2) mg_shdict_delete(d, key, strlen(key));
                else if (op == 3) {
                    double o;
                    mg_shdict_incr(d, key, strlen(key), 1, 1, 0, 0, &o, NULL);
                } else {
                    mg_shdict_value v;
                    mg_shdict_get(d, key, strlen(key), &v, out, sizeof out);
                }
            }
            _exit(0);
        }
    }
    for (int p = 0; p < 3; p++) {
        int status = 0;
        waitpid(pids[p], &status, 0);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "chaos child %d status %d", p, status);
    }
    for (int i = 0; i < MG_SHDICT_MAX_DICTS; i++) mg_shdict_flush(i);
    size_t cap, fr, ent;
    mg_shdict_stats(&cap, &fr, &ent, NULL);
    CHECK(ent == 0 && fr == cap, "after chaos every block merged back: free %zu of %zu, %zu entries", fr, cap, ent);
}

int main(void) {
    CHECK(mg_shdict_init(1u << 20) == MG_OK, "init");
    CHECK(mg_shdict_init(1u << 20) == MG_DECLINED, "init twice");
    test_basics();
    test_ttl();
    test_eviction();
    test_fork_incr();
    test_dead_owner();
    test_random_model();
    test_random_procs();
    if (failures) {
        fprintf(stderr, "test_shdict: %d failure(s)\n", failures);
        return 1;
    }
    printf("test_shdict: ok\n");
    return 0;
}
