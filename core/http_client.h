/* http_client.h: moongate.http's engine, libcurl's multi interface driven by the worker's libev
 * loop. Requests and stream reads are waits of the calling task (see scheduler.h). */
#ifndef MG_HTTP_CLIENT_H
#define MG_HTTP_CLIENT_H

#include "mg.h"

/* Counters of the worker's HTTP client, for leak checks and metrics. */
typedef struct mg_http_stats {
    int active;          /* transfers running in the curl multi */
    int handles;         /* curl easy handles alive */
    int streams;         /* stream responses not yet closed or collected */
    int sockets;         /* connections open now (in use or kept alive for reuse) */
    int paused;          /* streams paused because their reader is behind */
    int64_t buffered;    /* body bytes buffered for stream readers */
    int64_t connects;    /* connections opened since the start */
    int64_t requests;    /* requests started since the start */
} mg_http_stats;

MG_API void mg_http_stats_get(mg_http_stats *out);

/* Connection limits of this worker's client; 0 = libcurl's default (no limit; an idle cache
 * of 4 connections per transfer). Transfers over a limit wait in a queue (their timeouts
 * still run). Applies to the running client and to one created later. Returns MG_OK, or
 * MG_ERROR for a negative value. */
MG_API int mg_http_configure(long max_host_connections, long max_connections, long max_idle);

#endif
