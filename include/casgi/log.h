#ifndef CASGI_LOG_H
#define CASGI_LOG_H

#include "version.h"

/* Uvicorn's levels, in increasing severity. */
typedef enum {
    CASGI_LOG_TRACE = 0,
    CASGI_LOG_DEBUG,
    CASGI_LOG_INFO,
    CASGI_LOG_WARNING,
    CASGI_LOG_ERROR,
    CASGI_LOG_CRITICAL,
} casgi_log_level_t;

/*
 * A log sink. `line` is one complete line without the trailing newline, borrowed until the sink
 * returns. `access` is 1 for access-log lines (one per request) and 0 for everything else, so a
 * sink can route the two apart. The default sink writes Uvicorn's format to stderr:
 * "INFO:     message".
 */
typedef void (*casgi_log_fn)(void *data, casgi_log_level_t level, int access, const char *line);

/* "TRACE", "DEBUG", ... for a level; "?" for anything else. */
CASGI_EXTERN const char *casgi_log_level_name(casgi_log_level_t level);
/* Parses "trace", "debug", "info", "warning", "error", "critical" (any case). 0 or CASGI_ECONFIG.
 */
CASGI_EXTERN int casgi_log_level_parse(const char *name, casgi_log_level_t *out);

#endif
