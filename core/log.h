/* log.h: JSON-lines logging to stderr, one object per line. The Lua logger
 * (lua/moongate/log.lua) writes the same shape. */
#ifndef MG_LOG_H
#define MG_LOG_H

#include "mg.h"

/* {"time":..., "level":level, "pid":..., "msg":formatted} */
void mg_log(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* An error with its traceback; request_id is read from the task's context table (ctx_ref). */
void mg_log_error_tb(const char *msg, const char *traceback, int ctx_ref);
/* Write one already-serialized JSON line (newline added), atomically w.r.t. other workers. */
MG_API void mg_log_write(const char *line, size_t len);

#endif
