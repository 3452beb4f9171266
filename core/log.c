/* log.c: JSON-lines logging to stderr. One write(2) per line so lines from several worker
 * processes never interleave. */
#define _GNU_SOURCE
#include "log.h"
#include "scheduler.h"

#include <cjson/cJSON.h>
#include <lauxlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

MG_API void mg_log_write(const char *line, size_t len)
{
    char stackbuf[4096];
    char *buf = len + 1 <= sizeof stackbuf ? stackbuf : malloc(len + 1);
    if (!buf) return;
    memcpy(buf, line, len);
    buf[len] = '\n';
    ssize_t off = 0;
    while ((size_t)off < len + 1) {
        ssize_t w = write(2, buf + off, len + 1 - off);
        if (w <= 0) break;
        off += w;
    }
    if (buf != stackbuf) free(buf);
}

static cJSON *base_entry(const char *level)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "time", (double)tv.tv_sec + tv.tv_usec / 1e6);
    cJSON_AddStringToObject(o, "level", level);
    cJSON_AddNumberToObject(o, "pid", getpid());
    return o;
}

static void emit(cJSON *o)
{
    char *s = cJSON_PrintUnformatted(o);
    if (s) {
        mg_log_write(s, strlen(s));
        free(s);
    }
    cJSON_Delete(o);
}

void mg_log(const char *level, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *o = base_entry(level);
    cJSON_AddStringToObject(o, "msg", msg);
    emit(o);
}

void mg_log_error_tb(const char *msg, const char *traceback, int ctx_ref)
{
    cJSON *o = base_entry("error");
    if (ctx_ref != LUA_NOREF && mg_L) {
        lua_rawgeti(mg_L, LUA_REGISTRYINDEX, ctx_ref);
        lua_getfield(mg_L, -1, "request_id");
        if (lua_type(mg_L, -1) == LUA_TSTRING)
            cJSON_AddStringToObject(o, "request_id", lua_tostring(mg_L, -1));
        lua_pop(mg_L, 2);
    }
    cJSON_AddStringToObject(o, "msg", msg);
    if (traceback) cJSON_AddStringToObject(o, "traceback", traceback);
    emit(o);
}
